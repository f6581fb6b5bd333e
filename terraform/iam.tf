# The worker's instance role: least privilege, every statement on this stack's own resources.
# No wildcard actions; the only "*" resources are PutMetricData (fenced by a namespace condition) and
# DescribeAutoScalingGroups (by region), which take no resource ARNs. test/terraform.test.ts enforces these rules.

data "aws_partition" "current" {}
data "aws_caller_identity" "current" {}

locals {
  # Built from the name rather than read from the ASG so the role's policy exists before the first instance boots
  # (the ASG depends on it) without a dependency cycle.
  asg_arn = "arn:${data.aws_partition.current.partition}:autoscaling:${var.aws_region}:${data.aws_caller_identity.current.account_id}:autoScalingGroup:*:autoScalingGroupName/${local.asg_name}"

  artifact         = regex("^s3://([^/]+)/(.+)$", var.worker_artifact_s3_uri)
  artifact_obj_arn = "arn:${data.aws_partition.current.partition}:s3:::${local.artifact[0]}/${local.artifact[1]}"
  worker_secret_ids = concat(
    [aws_db_instance.main.master_user_secret[0].secret_arn, aws_secretsmanager_secret.redis_auth.arn],
    var.hf_token_secret_arn == null ? [] : [var.hf_token_secret_arn],
  )
}

data "aws_iam_policy_document" "worker_assume" {
  statement {
    sid     = "Ec2AssumesWorkerRole"
    effect  = "Allow"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

data "aws_iam_policy_document" "worker" {
  statement {
    sid    = "ConsumeJobsQueue"
    effect = "Allow"
    # Batch variants (DeleteMessageBatch, ChangeMessageVisibilityBatch) are authorised by these same actions.
    actions = [
      "sqs:ReceiveMessage",
      "sqs:DeleteMessage",
      "sqs:ChangeMessageVisibility",
      "sqs:GetQueueAttributes",
    ]
    resources = [aws_sqs_queue.jobs.arn]
  }

  statement {
    sid       = "ReadOwnSecrets"
    effect    = "Allow"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = local.worker_secret_ids
  }

  statement {
    sid       = "ReadWorkerSettings"
    effect    = "Allow"
    actions   = ["ssm:GetParameter"]
    resources = [aws_ssm_parameter.worker_env.arn]
  }

  statement {
    sid       = "FetchWorkerArtifact"
    effect    = "Allow"
    actions   = ["s3:GetObject"]
    resources = [local.artifact_obj_arn]
  }

  statement {
    sid       = "PublishOwnMetrics"
    effect    = "Allow"
    actions   = ["cloudwatch:PutMetricData"]
    resources = ["*"] # PutMetricData supports no resource ARNs; the namespace condition is the fence

    condition {
      test     = "StringEquals"
      variable = "cloudwatch:namespace"
      values   = [var.metrics_namespace]
    }
  }

  statement {
    sid       = "ShipOwnLogs"
    effect    = "Allow"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"]
    resources = ["${aws_cloudwatch_log_group.workers.arn}:*"]
  }

  statement {
    sid     = "ReadOwnGroup"
    effect  = "Allow"
    actions = ["autoscaling:DescribeAutoScalingGroups"]
    # Scale-in cooperation reads the group's desired capacity and in-service instances every minute. Describe
    # calls take no resource ARNs; the region is the only fence, and the call is read-only.
    resources = ["*"]

    condition {
      test     = "StringEquals"
      variable = "aws:RequestedRegion"
      values   = [var.aws_region]
    }
  }

  statement {
    sid    = "OwnLifecycleAndProtection"
    effect = "Allow"
    actions = [
      "autoscaling:CompleteLifecycleAction",
      "autoscaling:RecordLifecycleActionHeartbeat",
      "autoscaling:SetInstanceProtection",
    ]
    resources = [local.asg_arn]
  }
}

resource "aws_iam_role" "worker" {
  name               = "${var.name}-worker"
  assume_role_policy = data.aws_iam_policy_document.worker_assume.json
}

resource "aws_iam_role_policy" "worker" {
  name   = "${var.name}-worker"
  role   = aws_iam_role.worker.id
  policy = data.aws_iam_policy_document.worker.json
}

resource "aws_iam_instance_profile" "worker" {
  name = "${var.name}-worker"
  role = aws_iam_role.worker.name
}
