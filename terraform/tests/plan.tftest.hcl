# `terraform init && terraform test`: plans the whole stack against mocked providers (no AWS account, no
# credentials) in each scaling mode, so count/for_each/dynamic blocks and the types of every expression are
# evaluated, which `terraform validate` does not do.

mock_provider "aws" {
  mock_data "aws_availability_zones" {
    defaults = { names = ["us-east-1a", "us-east-1b", "us-east-1c", "us-east-1d"] }
  }
  mock_data "aws_caller_identity" {
    defaults = { account_id = "123456789012" }
  }
  mock_data "aws_partition" {
    defaults = { partition = "aws" }
  }
  mock_data "aws_iam_policy_document" {
    defaults = { json = "{}" }
  }
  mock_resource "aws_db_instance" {
    defaults = {
      master_user_secret = [{ secret_arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:rds", kms_key_id = "", secret_status = "active" }]
    }
  }
}

mock_provider "random" {
  mock_resource "random_password" {
    defaults = { result = "0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqr" }
  }
}

variables {
  worker_artifact_s3_uri = "s3://bucket/worker.tar.gz"
}

run "step_mode_by_default" {
  command = plan

  assert {
    condition     = length(aws_autoscaling_policy.scale_up) == 1 && length(aws_autoscaling_policy.backlog_per_instance) == 0
    error_message = "step mode must create the step policies only"
  }
  assert {
    condition     = length(aws_autoscaling_policy.scale_up[0].step_adjustment) == 1
    error_message = "one scale-up step unless scale_up_large_adjustment > 0"
  }
  assert {
    condition     = length(aws_autoscaling_policy.activate) == 0
    error_message = "no scale-from-zero activation with min_size 2"
  }
  assert {
    condition     = length(aws_cloudwatch_metric_alarm.scale_down[0].metric_query) == 3 && contains([for q in aws_cloudwatch_metric_alarm.scale_down[0].metric_query : q.expression if q.return_data == true], "visible + in_flight")
    error_message = "scale-down must watch visible + in flight by default"
  }
  assert {
    condition     = aws_autoscaling_lifecycle_hook.drain.heartbeat_timeout == 300
    error_message = "lifecycle hook timeout must default to 300 s"
  }
  assert {
    condition     = length(aws_autoscaling_lifecycle_hook.model_ready) == 1 && aws_autoscaling_lifecycle_hook.model_ready[0].lifecycle_transition == "autoscaling:EC2_INSTANCE_LAUNCHING" && aws_autoscaling_lifecycle_hook.model_ready[0].heartbeat_timeout == 1800
    error_message = "a launch hook must hold new instances until the model serves, 1800 s by default"
  }
  assert {
    condition     = local.worker_env.SQS_VISIBILITY_TIMEOUT_SECONDS == 120 && local.worker_env.DRAIN_DEADLINE_MS == 120000
    error_message = "worker env must carry the queue and drain defaults"
  }
  assert {
    condition     = length(aws_nat_gateway.main) == 3 && length(aws_subnet.private) == 3
    error_message = "three zones, one NAT gateway each"
  }
}

run "second_scale_up_step" {
  command = plan

  variables {
    scale_up_large_adjustment         = 3
    scale_up_large_threshold_multiple = 5
  }

  assert {
    condition     = length(aws_autoscaling_policy.scale_up[0].step_adjustment) == 2
    error_message = "a second step when scale_up_large_adjustment > 0"
  }
}

run "scale_down_on_visible_only" {
  command = plan

  variables {
    scale_down_metric = "visible"
  }

  assert {
    condition     = length(aws_cloudwatch_metric_alarm.scale_down[0].metric_query) == 1 && alltrue([for q in aws_cloudwatch_metric_alarm.scale_down[0].metric_query : q.return_data == true && q.metric[0].metric_name == "ApproximateNumberOfMessagesVisible"])
    error_message = "scale_down_metric = visible: one query, the visible depth, returned as is"
  }
}

run "target_tracking_from_zero" {
  command = plan

  variables {
    scaling_mode = "target_tracking"
    min_size     = 0
  }

  assert {
    condition     = length(aws_autoscaling_policy.backlog_per_instance) == 1 && length(aws_autoscaling_policy.scale_up) == 0
    error_message = "target tracking replaces the step policies"
  }
  assert {
    condition     = length(aws_autoscaling_policy.activate) == 1 && length(aws_cloudwatch_metric_alarm.activate) == 1
    error_message = "min_size 0 needs the activation alarm"
  }
  assert {
    condition     = aws_autoscaling_policy.activate[0].adjustment_type == "ChangeInCapacity"
    error_message = "the activation must not be able to lower capacity (ExactCapacity would undo scale-outs)"
  }
  assert {
    condition     = contains([for q in aws_cloudwatch_metric_alarm.activate[0].metric_query : q.metric[0].metric_name if length(q.metric) > 0], "GroupDesiredCapacity") && contains(aws_autoscaling_group.workers.enabled_metrics, "GroupDesiredCapacity")
    error_message = "the activation fires only at desired capacity 0, a metric the group must publish"
  }
  assert {
    condition     = length(aws_cloudwatch_metric_alarm.no_in_service_workers.metric_query) == 4
    error_message = "with min_size 0 the no-workers alarm also reads queue depth"
  }
}

run "target_tracking_on_the_published_metric" {
  command = plan

  variables {
    scaling_mode           = "target_tracking"
    target_tracking_metric = "published"
  }

  assert {
    condition     = length(aws_autoscaling_policy.published_backlog_per_instance) == 1 && length(aws_autoscaling_policy.backlog_per_instance) == 0
    error_message = "the published metric replaces the metric-math policy"
  }
  assert {
    condition     = local.worker_env.CLOUDWATCH_METRICS == "true" && local.worker_env.METRICS_NAMESPACE == var.metrics_namespace
    error_message = "the workers must publish into the namespace the policy reads"
  }
}

run "api_groups_reach_the_stores" {
  command = plan

  variables {
    api_security_group_ids = ["sg-0123456789abcdef0", "sg-0fedcba9876543210"]
    hf_token_secret_arn    = "arn:aws:secretsmanager:us-east-1:123456789012:secret:hf-token"
  }

  assert {
    condition     = length(aws_vpc_security_group_ingress_rule.database_from_api) == 2 && length(aws_vpc_security_group_ingress_rule.redis_from_api) == 2
    error_message = "each API group gets Postgres and Redis ingress"
  }
}
