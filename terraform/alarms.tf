# Operational alarms (notify people; they do not scale). Actions go to alarm_sns_topic_arns.

locals {
  queue_depth_metrics = {
    visible   = "ApproximateNumberOfMessagesVisible"
    in_flight = "ApproximateNumberOfMessagesNotVisible"
  }
}

resource "aws_cloudwatch_metric_alarm" "dlq_not_empty" {
  alarm_name          = "${var.name}-dlq-not-empty"
  alarm_description   = "Jobs were dead-lettered after max_receive_count deliveries. Inspect with `make dlq`; redrive once fixed."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = aws_sqs_queue.dlq.name }
  statistic           = "Maximum"
  period              = var.alarm_period_seconds
  evaluation_periods  = var.dlq_alarm_evaluation_periods
  threshold           = var.dlq_alarm_threshold
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_sns_topic_arns
  ok_actions          = var.alarm_sns_topic_arns
}

resource "aws_cloudwatch_metric_alarm" "oldest_message_age" {
  alarm_name          = "${var.name}-oldest-job-too-old"
  alarm_description   = "The oldest waiting job is older than oldest_message_age_alarm_seconds: the fleet is at max_size, stuck, or failing."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateAgeOfOldestMessage"
  dimensions          = { QueueName = aws_sqs_queue.jobs.name }
  statistic           = "Maximum"
  period              = var.alarm_period_seconds
  evaluation_periods  = var.oldest_message_age_evaluation_periods
  threshold           = var.oldest_message_age_alarm_seconds
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_sns_topic_arns
  ok_actions          = var.alarm_sns_topic_arns
}

resource "aws_cloudwatch_metric_alarm" "no_in_service_workers" {
  alarm_name        = "${var.name}-no-in-service-workers"
  alarm_description = "Fewer than no_workers_alarm_threshold workers in service (with min_size 0: while jobs wait). Check capacity (GPU quota, AZ supply) and instance boot logs."
  # With min_size 0 an empty fleet is normal while the queue is empty: report "enough" (the threshold) then.
  comparison_operator = "LessThanThreshold"
  threshold           = var.no_workers_alarm_threshold
  evaluation_periods  = var.no_workers_alarm_evaluation_periods
  treat_missing_data  = "breaching"
  alarm_actions       = var.alarm_sns_topic_arns
  ok_actions          = var.alarm_sns_topic_arns

  metric_query {
    id          = "workers"
    label       = "in-service workers"
    expression  = var.min_size > 0 ? "in_service" : "IF(visible + in_flight > 0, in_service, ${var.no_workers_alarm_threshold})"
    return_data = true
  }

  metric_query {
    id = "in_service"
    metric {
      namespace   = "AWS/AutoScaling"
      metric_name = "GroupInServiceInstances"
      dimensions  = { AutoScalingGroupName = aws_autoscaling_group.workers.name }
      stat        = "Minimum"
      period      = var.alarm_period_seconds
    }
  }

  # Queue depth only matters (and is only fetched) with min_size 0, where an empty fleet is fine while idle.
  dynamic "metric_query" {
    for_each = { for id, metric in local.queue_depth_metrics : id => metric if var.min_size == 0 }
    content {
      id = metric_query.key
      metric {
        namespace   = "AWS/SQS"
        metric_name = metric_query.value
        dimensions  = { QueueName = aws_sqs_queue.jobs.name }
        stat        = "Maximum"
        period      = var.alarm_period_seconds
      }
    }
  }
}
