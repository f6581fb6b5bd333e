# GPU workers: one vLLM server and one worker process per instance, in an ASG over the private subnets.
# Launch waits for the model: a launch lifecycle hook keeps a new instance out of InService until vLLM serves.
# Termination is graceful: every worker protects its instance from scale-in and, when the group has more in service
# than desired, the surplus workers finish their jobs before lifting it (worker/scale-in.ts); a lifecycle hook holds
# a terminating instance while the worker drains (stop polling, finish or release in-flight jobs).

locals {
  asg_name         = "${var.name}-workers"
  hook_name        = "${var.name}-drain"
  launch_hook_name = "${var.name}-model-ready"

  # Non-secret worker settings, stored in SSM and read at every service start. Keys are the worker's env
  # variables (shared/config.ts). DATABASE_URL, REDIS_URL and HF_TOKEN are built from Secrets Manager on the
  # instance (templates/user_data.sh.tftpl) and never stored here.
  worker_env = {
    QUEUE_URLS                     = aws_sqs_queue.jobs.url
    AWS_REGION                     = var.aws_region
    SQS_VISIBILITY_TIMEOUT_SECONDS = var.visibility_timeout_seconds
    SQS_WAIT_TIME_SECONDS          = var.receive_wait_time_seconds
    SQS_MAX_RECEIVE_COUNT          = var.max_receive_count
    DRAIN_DEADLINE_MS              = var.drain_deadline_ms
    VLLM_URL                       = "http://127.0.0.1:8000"
    VLLM_MODEL                     = var.vllm_model
    METRICS_NAMESPACE              = var.metrics_namespace
    CLOUDWATCH_METRICS             = "true" # target_tracking_metric = "published" reads these; IAM allows only this namespace
    OPS_PORT                       = var.ops_port
    ASG_NAME                       = local.asg_name
    LIFECYCLE_HOOK_NAME            = local.hook_name
  }

  vllm_serve_args = trimspace(join(" ", [
    "--tensor-parallel-size ${var.vllm_tensor_parallel_size}",
    "--data-parallel-size ${var.vllm_data_parallel_size}",
    var.vllm_extra_args,
  ]))
}

data "aws_ami" "gpu" {
  most_recent = true
  owners      = ["amazon"]

  filter {
    name   = "name"
    values = [var.gpu_ami_name_filter]
  }

  filter {
    name   = "architecture"
    values = ["x86_64"]
  }

  filter {
    name   = "state"
    values = ["available"]
  }
}

resource "aws_ssm_parameter" "worker_env" {
  name        = "/${var.name}/worker/env"
  description = "Non-secret environment of the ${var.name} worker (dotenv lines)"
  type        = "String"
  value       = join("\n", [for k in sort(keys(local.worker_env)) : "${k}=${local.worker_env[k]}"])
}

resource "aws_cloudwatch_log_group" "workers" {
  name              = "/${var.name}/workers"
  retention_in_days = var.worker_log_retention_days
}

resource "aws_launch_template" "worker" {
  name_prefix            = "${var.name}-worker-"
  image_id               = data.aws_ami.gpu.id
  instance_type          = var.gpu_instance_type
  vpc_security_group_ids = [aws_security_group.workers.id]
  update_default_version = true
  ebs_optimized          = true

  iam_instance_profile {
    arn = aws_iam_instance_profile.worker.arn
  }

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required" # IMDSv2 only
    http_put_response_hop_limit = 1          # no container on the host may reach the instance credentials
    instance_metadata_tags      = "disabled"
  }

  block_device_mappings {
    device_name = "/dev/sda1" # Ubuntu DLAMI root device

    ebs {
      volume_size           = var.root_volume_size_gb
      volume_type           = "gp3"
      encrypted             = true
      delete_on_termination = true
    }
  }

  monitoring {
    enabled = true
  }

  user_data = base64encode(templatefile("${path.module}/templates/user_data.sh.tftpl", {
    region             = var.aws_region
    env_parameter_name = aws_ssm_parameter.worker_env.name
    db_secret_arn      = aws_db_instance.main.master_user_secret[0].secret_arn
    db_host            = aws_db_instance.main.address
    db_port            = aws_db_instance.main.port
    db_name            = aws_db_instance.main.db_name
    redis_secret_arn   = aws_secretsmanager_secret.redis_auth.arn
    redis_host         = aws_elasticache_replication_group.main.primary_endpoint_address
    redis_port         = aws_elasticache_replication_group.main.port
    hf_token_secret    = var.hf_token_secret_arn == null ? "" : var.hf_token_secret_arn
    artifact_s3_uri    = var.worker_artifact_s3_uri
    node_version       = var.node_version
    vllm_version       = var.vllm_version
    vllm_serve_args    = local.vllm_serve_args
    log_group          = aws_cloudwatch_log_group.workers.name
    stop_timeout_sec   = ceil(var.drain_deadline_ms / 1000) + 30
    asg_name           = local.asg_name
    hook_name          = local.hook_name
    launch_hook_name   = var.launch_hook_timeout_seconds > 0 ? local.launch_hook_name : ""
  }))

  tag_specifications {
    resource_type = "instance"
    tags          = { Name = "${var.name}-worker" }
  }

  tag_specifications {
    resource_type = "volume"
    tags          = { Name = "${var.name}-worker" }
  }
}

resource "aws_autoscaling_group" "workers" {
  name                      = local.asg_name
  vpc_zone_identifier       = aws_subnet.private[*].id
  min_size                  = var.min_size
  max_size                  = var.max_size
  desired_capacity          = var.desired_capacity
  health_check_type         = "EC2"
  health_check_grace_period = var.instance_warmup_seconds
  default_instance_warmup   = var.instance_warmup_seconds
  protect_from_scale_in     = false # per instance: each worker protects its own at start; a booting one is fair game
  capacity_rebalance        = false
  wait_for_capacity_timeout = "0" # GPU capacity can take long to find; do not fail the apply on it

  # GroupInServiceInstances feeds the backlog-per-instance math and the no-workers alarm; GroupDesiredCapacity
  # gates the scale-from-zero activation (scaling.tf). Without collection these metrics are never published.
  enabled_metrics     = ["GroupInServiceInstances", "GroupDesiredCapacity", "GroupPendingInstances", "GroupTerminatingInstances"]
  metrics_granularity = "1Minute"

  launch_template {
    id      = aws_launch_template.worker.id
    version = aws_launch_template.worker.latest_version
  }

  instance_refresh {
    strategy = "Rolling"
    preferences {
      min_healthy_percentage = 50
      instance_warmup        = var.instance_warmup_seconds
      # Workers are scale-in protected; a refresh still replaces them, draining through the lifecycle hook.
      scale_in_protected_instances = "Refresh"
    }
  }

  tag {
    key                 = "Name"
    value               = "${var.name}-worker"
    propagate_at_launch = true
  }

  # Instances must never boot before they can read their secrets and the queue.
  depends_on = [aws_iam_role_policy.worker, aws_vpc_endpoint.interface, aws_route.private_nat]

  lifecycle {
    ignore_changes = [desired_capacity] # owned by the scaling policies after creation
  }
}

# Termination hook: a terminating instance waits in Terminating:Wait until the on-instance lifecycle watcher has
# stopped the worker (drained) and completed the action, or until the timeout, which must outlast the drain
# (validated against drain_deadline_ms; systemd allows the worker drain + 30 s to stop).
resource "aws_autoscaling_lifecycle_hook" "drain" {
  name                   = local.hook_name
  autoscaling_group_name = aws_autoscaling_group.workers.name
  lifecycle_transition   = "autoscaling:EC2_INSTANCE_TERMINATING"
  heartbeat_timeout      = var.lifecycle_hook_timeout_seconds
  default_result         = "CONTINUE"
}

# Launch hook: a new instance waits in Pending:Wait until vLLM answers /health; llm-fleet-ready (user data)
# then completes the action. AWS counts warm-up and GroupInServiceInstances from InService, so until the model
# serves the scaling policies neither count the instance as capacity nor divide the backlog by it, and the
# health-check grace starts when it serves. A boot that never gets there is abandoned and replaced at the timeout.
# Created after the group, so the instances of its first apply boot without it (the script then finds no action
# to complete and carries on).
resource "aws_autoscaling_lifecycle_hook" "model_ready" {
  count                  = var.launch_hook_timeout_seconds > 0 ? 1 : 0
  name                   = local.launch_hook_name
  autoscaling_group_name = aws_autoscaling_group.workers.name
  lifecycle_transition   = "autoscaling:EC2_INSTANCE_LAUNCHING"
  heartbeat_timeout      = var.launch_hook_timeout_seconds
  default_result         = "ABANDON"
}
