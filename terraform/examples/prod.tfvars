# Production: p5 workers, two always warm, a second scale-up step for bursts, alarms paged through SNS.
# terraform plan -var-file=examples/prod.tfvars

name                   = "llm-fleet"
aws_region             = "us-east-1"
worker_artifact_s3_uri = "s3://my-org-artifacts/llm-fleet/worker-1.0.0.tar.gz"

gpu_instance_type       = "p5.48xlarge"
vllm_data_parallel_size = 8

min_size = 2
max_size = 8

# Step mode (default) with a burst step: +1 above 100 visible, +2 at 500 or more.
scaling_mode                      = "step"
scale_up_threshold                = 100
scale_up_evaluation_periods       = 2
scale_up_adjustment               = 1
scale_up_large_adjustment         = 2
scale_up_large_threshold_multiple = 5
scale_up_cooldown_seconds         = 300
scale_down_metric                 = "backlog" # visible + in flight: shrink only when nearly idle, never flap
scale_down_threshold              = 10
scale_down_evaluation_periods     = 5
scale_down_cooldown_seconds       = 600

# To track backlog per instance instead:
# scaling_mode                   = "target_tracking"
# target_backlog_per_instance    = 768
# target_tracking_warmup_seconds = 600

alarm_sns_topic_arns             = ["arn:aws:sns:us-east-1:123456789012:llm-fleet-oncall"]
oldest_message_age_alarm_seconds = 600

db_instance_class        = "db.r6g.xlarge"
db_backup_retention_days = 14
redis_node_type          = "cache.r7g.large"

tags = { Environment = "prod" }
