# Development stack: one small GPU, scale to zero when idle, cheap data stores, easy teardown.
# terraform plan -var-file=examples/dev.tfvars

name                   = "llm-fleet-dev"
aws_region             = "us-east-1"
worker_artifact_s3_uri = "s3://my-org-artifacts/llm-fleet/worker-dev.tar.gz"

# 1 x L40S (48 GB) fits an 8B model in bf16.
gpu_instance_type       = "g6e.xlarge"
root_volume_size_gb     = 150
vllm_data_parallel_size = 1

# Scale to zero: the activation alarm starts the first worker when a job arrives. Expect a cold start of alarm +
# boot (~20 min), and up to 15 min more after a quiet night: SQS stops publishing metrics for a queue idle 6 h.
min_size                    = 0
max_size                    = 2
scale_up_threshold          = 20
scale_up_evaluation_periods = 1
scale_down_threshold        = 1
scale_down_cooldown_seconds = 300
instance_warmup_seconds     = 420

oldest_message_age_alarm_seconds    = 1800
no_workers_alarm_evaluation_periods = 40

db_instance_class             = "db.t4g.medium"
db_allocated_storage_gb       = 20
db_max_allocated_storage_gb   = 100
db_backup_retention_days      = 1
db_deletion_protection        = false
redis_node_type               = "cache.t4g.small"
redis_snapshot_retention_days = 0
worker_log_retention_days     = 7

tags = { Environment = "dev" }
