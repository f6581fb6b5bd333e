# Scaling on queue depth. scaling_mode picks one of two policies; every number is a variable (see README.md).
#
# step (default): CloudWatch alarms on ApproximateNumberOfMessagesVisible drive a step scale-up policy and a
#   simple scale-down policy. Scale-in only ever removes idle workers: a worker holding jobs protects its
#   instance from scale-in, and a terminating one drains through the lifecycle hook.
# target_tracking: keep (visible + in flight) / in-service workers at target_backlog_per_instance. In-flight
#   messages count, so a fleet busy on long generations never looks idle to scale-in.
# Either way, with min_size = 0 an activation alarm starts the first worker: backlog per instance is undefined with
#   no instance, so target tracking alone never scales from zero.

locals {
  step            = var.scaling_mode == "step"
  target_tracking = var.scaling_mode == "target_tracking"

  # Second scale-up step, relative to the alarm threshold: it starts at threshold x multiple.
  large_step        = var.scale_up_large_adjustment > 0
  large_step_offset = var.scale_up_threshold * (var.scale_up_large_threshold_multiple - 1)
  scale_up_steps = concat(
    [{ lower = 0, upper = local.large_step ? local.large_step_offset : null, adjustment = var.scale_up_adjustment }],
    local.large_step ? [{ lower = local.large_step_offset, upper = null, adjustment = var.scale_up_large_adjustment }] : [],
  )

  queue_dimensions = { QueueName = aws_sqs_queue.jobs.name }
  asg_dimensions   = { AutoScalingGroupName = aws_autoscaling_group.workers.name }
}

# --- step mode ---------------------------------------------------------------------------------------------

resource "aws_autoscaling_policy" "scale_up" {
  count                  = local.step ? 1 : 0
  name                   = "${var.name}-scale-up"
  autoscaling_group_name = aws_autoscaling_group.workers.name
  policy_type            = "StepScaling"
  adjustment_type        = "ChangeInCapacity"
  # Step policies have no cooldown: while added instances warm up they count as capacity, so a still-firing alarm
  # adds more only if it now matches a larger step.
  estimated_instance_warmup = var.scale_up_cooldown_seconds

  dynamic "step_adjustment" {
    for_each = local.scale_up_steps
    content {
      metric_interval_lower_bound = step_adjustment.value.lower
      metric_interval_upper_bound = step_adjustment.value.upper
      scaling_adjustment          = step_adjustment.value.adjustment
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "scale_up" {
  count               = local.step ? 1 : 0
  alarm_name          = "${var.name}-queue-depth-high"
  alarm_description   = "Jobs waiting above scale_up_threshold: add workers."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = local.queue_dimensions
  statistic           = "Maximum"
  period              = var.scale_up_period_seconds
  evaluation_periods  = var.scale_up_evaluation_periods
  threshold           = var.scale_up_threshold
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_autoscaling_policy.scale_up[0].arn]
}

resource "aws_autoscaling_policy" "scale_down" {
  count                  = local.step ? 1 : 0
  name                   = "${var.name}-scale-down"
  autoscaling_group_name = aws_autoscaling_group.workers.name
  policy_type            = "SimpleScaling"
  adjustment_type        = "ChangeInCapacity"
  scaling_adjustment     = -var.scale_down_adjustment
  cooldown               = var.scale_down_cooldown_seconds
}

resource "aws_cloudwatch_metric_alarm" "scale_down" {
  count               = local.step ? 1 : 0
  alarm_name          = "${var.name}-queue-depth-low"
  alarm_description   = "Jobs waiting below scale_down_threshold: remove idle workers (busy ones are scale-in protected)."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = local.queue_dimensions
  statistic           = "Maximum"
  period              = var.scale_down_period_seconds
  evaluation_periods  = var.scale_down_evaluation_periods
  threshold           = var.scale_down_threshold
  comparison_operator = "LessThanThreshold"
  # SQS stops publishing for a queue idle for hours; missing data then means "nothing to do".
  treat_missing_data = "breaching"
  alarm_actions      = [aws_autoscaling_policy.scale_down[0].arn]
}

# --- target tracking mode ----------------------------------------------------------------------------------

resource "aws_autoscaling_policy" "backlog_per_instance" {
  count                     = local.target_tracking ? 1 : 0
  name                      = "${var.name}-backlog-per-instance"
  autoscaling_group_name    = aws_autoscaling_group.workers.name
  policy_type               = "TargetTrackingScaling"
  estimated_instance_warmup = var.target_tracking_warmup_seconds

  target_tracking_configuration {
    target_value     = var.target_backlog_per_instance
    disable_scale_in = false

    customized_metric_specification {
      metrics {
        id          = "visible"
        return_data = false
        metric_stat {
          stat = "Sum"
          metric {
            namespace   = "AWS/SQS"
            metric_name = "ApproximateNumberOfMessagesVisible"
            dimensions {
              name  = "QueueName"
              value = aws_sqs_queue.jobs.name
            }
          }
        }
      }

      metrics {
        id          = "in_flight"
        return_data = false
        metric_stat {
          stat = "Sum"
          metric {
            namespace   = "AWS/SQS"
            metric_name = "ApproximateNumberOfMessagesNotVisible"
            dimensions {
              name  = "QueueName"
              value = aws_sqs_queue.jobs.name
            }
          }
        }
      }

      metrics {
        id          = "in_service"
        return_data = false
        metric_stat {
          stat = "Average"
          metric {
            namespace   = "AWS/AutoScaling"
            metric_name = "GroupInServiceInstances"
            dimensions {
              name  = "AutoScalingGroupName"
              value = aws_autoscaling_group.workers.name
            }
          }
        }
      }

      metrics {
        id          = "backlog_per_instance"
        label       = "(visible + in flight) / in-service workers"
        expression  = "(visible + in_flight) / in_service"
        return_data = true
      }
    }
  }
}

# --- scale from zero ---------------------------------------------------------------------------------------

resource "aws_autoscaling_policy" "activate" {
  count                  = var.min_size == 0 ? 1 : 0
  name                   = "${var.name}-activate-from-zero"
  autoscaling_group_name = aws_autoscaling_group.workers.name
  policy_type            = "StepScaling"
  # Exact capacity: re-firing while the first workers boot is a no-op, never a pile-up.
  adjustment_type           = "ExactCapacity"
  estimated_instance_warmup = var.instance_warmup_seconds

  step_adjustment {
    metric_interval_lower_bound = 0
    scaling_adjustment          = var.scale_up_adjustment
  }
}

resource "aws_cloudwatch_metric_alarm" "activate" {
  count               = var.min_size == 0 ? 1 : 0
  alarm_name          = "${var.name}-backlog-with-no-workers"
  alarm_description   = "Jobs are waiting and no worker is in service: start the first workers."
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.scale_from_zero_backlog_threshold
  evaluation_periods  = var.scale_up_evaluation_periods
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_autoscaling_policy.activate[0].arn]

  metric_query {
    id          = "backlog_without_workers"
    label       = "backlog while no worker is in service"
    expression  = "IF(in_service < 1, visible + in_flight, 0)"
    return_data = true
  }

  metric_query {
    id = "visible"
    metric {
      namespace   = "AWS/SQS"
      metric_name = "ApproximateNumberOfMessagesVisible"
      dimensions  = local.queue_dimensions
      stat        = "Maximum"
      period      = var.scale_up_period_seconds
    }
  }

  metric_query {
    id = "in_flight"
    metric {
      namespace   = "AWS/SQS"
      metric_name = "ApproximateNumberOfMessagesNotVisible"
      dimensions  = local.queue_dimensions
      stat        = "Maximum"
      period      = var.scale_up_period_seconds
    }
  }

  metric_query {
    id = "in_service"
    metric {
      namespace   = "AWS/AutoScaling"
      metric_name = "GroupInServiceInstances"
      dimensions  = local.asg_dimensions
      stat        = "Maximum"
      period      = var.scale_up_period_seconds
    }
  }
}
