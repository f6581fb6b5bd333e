# Scaling on queue depth. scaling_mode picks one of two policies; every number is a variable (see README.md).
#
# step (default): an alarm on ApproximateNumberOfMessagesVisible drives a step scale-up policy; an alarm on
#   visible + in flight (or visible only, scale_down_metric) drives a simple scale-down policy.
# target_tracking: keep (visible + in flight) / in-service workers at target_backlog_per_instance, computed either
#   with metric math over AWS/SQS and AWS/AutoScaling (target_tracking_metric = "metric_math", default) or from what
#   the workers publish (= "published"): BacklogPerInstance + InFlightPerInstance in var.metrics_namespace, each
#   worker counting the group's InService instances itself (shared/metrics/cloudwatch-sink.ts).
# Either way, scale-in never cuts a job: every worker keeps its instance protected from scale-in; when the group
#   has more in service than desired, the surplus workers stop taking jobs, finish what they hold, and lift their
#   protection (worker/scale-in.ts); the ASG terminates them and the lifecycle hook finds them idle.
# With min_size = 0 an activation alarm starts the first worker while desired capacity is 0: backlog per instance
#   is undefined with no instance, so target tracking alone never scales from zero.

locals {
  step              = var.scaling_mode == "step"
  target_tracking   = var.scaling_mode == "target_tracking"
  published_backlog = var.target_tracking_metric == "published"

  # Second scale-up step, relative to the alarm threshold: it starts at threshold x multiple.
  large_step        = var.scale_up_large_adjustment > 0
  large_step_offset = var.scale_up_threshold * (var.scale_up_large_threshold_multiple - 1)
  scale_up_steps = concat(
    [{ lower = 0, upper = local.large_step ? local.large_step_offset : null, adjustment = var.scale_up_adjustment }],
    local.large_step ? [{ lower = local.large_step_offset, upper = null, adjustment = var.scale_up_large_adjustment }] : [],
  )

  # Scale-down counts in-flight messages unless scale_down_metric = "visible" (see the variable for the trade-off).
  scale_down_on_backlog = var.scale_down_metric == "backlog"

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
  alarm_description   = "Jobs waiting${local.scale_down_on_backlog ? " or in flight" : ""} below scale_down_threshold: remove a worker (the surplus finishes its jobs before it goes)."
  evaluation_periods  = var.scale_down_evaluation_periods
  threshold           = var.scale_down_threshold
  comparison_operator = "LessThanThreshold"
  # SQS stops publishing for a queue idle for hours; missing data then means "nothing to do".
  treat_missing_data = "breaching"
  alarm_actions      = [aws_autoscaling_policy.scale_down[0].arn]

  dynamic "metric_query" {
    for_each = local.scale_down_on_backlog ? ["backlog"] : []
    content {
      id          = "backlog"
      label       = "jobs waiting + in flight"
      expression  = "visible + in_flight"
      return_data = true
    }
  }

  metric_query {
    id          = "visible"
    return_data = !local.scale_down_on_backlog
    metric {
      namespace   = "AWS/SQS"
      metric_name = "ApproximateNumberOfMessagesVisible"
      dimensions  = local.queue_dimensions
      stat        = "Maximum"
      period      = var.scale_down_period_seconds
    }
  }

  dynamic "metric_query" {
    for_each = local.scale_down_on_backlog ? ["in_flight"] : []
    content {
      id = "in_flight"
      metric {
        namespace   = "AWS/SQS"
        metric_name = "ApproximateNumberOfMessagesNotVisible"
        dimensions  = local.queue_dimensions
        stat        = "Maximum"
        period      = var.scale_down_period_seconds
      }
    }
  }
}

# --- target tracking mode ----------------------------------------------------------------------------------

resource "aws_autoscaling_policy" "backlog_per_instance" {
  count                     = local.target_tracking && !local.published_backlog ? 1 : 0
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

# The same target on the workers' own figures. Every worker publishes the same fleet-wide value (its view of the
# queue ÷ the group's InService count), so Average over the workers is that value; the sum of the two per-instance
# figures is the metric-math expression above, and target_backlog_per_instance keeps its meaning.
resource "aws_autoscaling_policy" "published_backlog_per_instance" {
  count                     = local.target_tracking && local.published_backlog ? 1 : 0
  name                      = "${var.name}-backlog-per-instance"
  autoscaling_group_name    = aws_autoscaling_group.workers.name
  policy_type               = "TargetTrackingScaling"
  estimated_instance_warmup = var.target_tracking_warmup_seconds

  target_tracking_configuration {
    target_value     = var.target_backlog_per_instance
    disable_scale_in = false

    customized_metric_specification {
      metrics {
        id          = "backlog"
        return_data = false
        metric_stat {
          stat = "Average"
          metric {
            namespace   = var.metrics_namespace
            metric_name = "BacklogPerInstance"
            dimensions {
              name  = "AutoScalingGroupName"
              value = aws_autoscaling_group.workers.name
            }
          }
        }
      }

      metrics {
        id          = "in_flight"
        return_data = false
        metric_stat {
          stat = "Average"
          metric {
            namespace   = var.metrics_namespace
            metric_name = "InFlightPerInstance"
            dimensions {
              name  = "AutoScalingGroupName"
              value = aws_autoscaling_group.workers.name
            }
          }
        }
      }

      metrics {
        id          = "backlog_per_instance"
        label       = "published (visible + in flight) / in-service workers"
        expression  = "backlog + in_flight"
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
  # ChangeInCapacity, not ExactCapacity: the alarm stays in ALARM a period or two after desired leaves 0 (metric
  # lag) and its action is invoked at every evaluation; ExactCapacity would then set desired back down, undoing
  # the scale-outs of the other policy. ChangeInCapacity only adds, and adds nothing while the first workers are
  # within their warmup (they count as capacity).
  adjustment_type           = "ChangeInCapacity"
  estimated_instance_warmup = var.instance_warmup_seconds

  step_adjustment {
    metric_interval_lower_bound = 0
    scaling_adjustment          = var.scale_up_adjustment
  }
}

resource "aws_cloudwatch_metric_alarm" "activate" {
  count               = var.min_size == 0 ? 1 : 0
  alarm_name          = "${var.name}-backlog-with-no-workers"
  alarm_description   = "Jobs are waiting and desired capacity is 0: start the first workers."
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.scale_from_zero_backlog_threshold
  evaluation_periods  = var.scale_up_evaluation_periods
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_autoscaling_policy.activate[0].arn]

  # Gated on desired capacity, not on in-service workers: once desired is above 0 the first workers are on their
  # way (booting takes minutes) and the other policy owns the size.
  metric_query {
    id          = "backlog_at_zero_desired"
    label       = "backlog while desired capacity is 0"
    expression  = "IF(desired < 1, visible + in_flight, 0)"
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

  # Published because the group enables metrics collection for GroupDesiredCapacity (workers.tf).
  metric_query {
    id = "desired"
    metric {
      namespace   = "AWS/AutoScaling"
      metric_name = "GroupDesiredCapacity"
      dimensions  = local.asg_dimensions
      stat        = "Maximum"
      period      = var.scale_up_period_seconds
    }
  }
}
