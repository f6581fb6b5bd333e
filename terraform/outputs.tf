output "queue_url" {
  description = "Jobs queue URL: producers send here; the worker's QUEUE_URLS."
  value       = aws_sqs_queue.jobs.url
}

output "queue_arn" {
  description = "Jobs queue ARN (grant producers sqs:SendMessage on it)."
  value       = aws_sqs_queue.jobs.arn
}

output "dlq_url" {
  description = "Dead-letter queue URL (for `make dlq`)."
  value       = aws_sqs_queue.dlq.url
}

output "autoscaling_group_name" {
  description = "Worker Auto Scaling group."
  value       = aws_autoscaling_group.workers.name
}

output "worker_role_arn" {
  description = "IAM role of the workers."
  value       = aws_iam_role.worker.arn
}

output "worker_security_group_id" {
  description = "Security group of the workers."
  value       = aws_security_group.workers.id
}

output "database_endpoint" {
  description = "RDS PostgreSQL host:port."
  value       = aws_db_instance.main.endpoint
}

output "database_secret_arn" {
  description = "Secrets Manager secret with the RDS master credentials (managed and rotated by RDS)."
  value       = aws_db_instance.main.master_user_secret[0].secret_arn
}

output "redis_primary_endpoint" {
  description = "Redis primary endpoint (TLS, AUTH)."
  value       = aws_elasticache_replication_group.main.primary_endpoint_address
}

output "redis_auth_secret_arn" {
  description = "Secrets Manager secret holding the Redis AUTH token."
  value       = aws_secretsmanager_secret.redis_auth.arn
}

output "vpc_id" {
  description = "VPC of the fleet."
  value       = aws_vpc.main.id
}

output "private_subnet_ids" {
  description = "Private subnets (workers, data stores); put the results API here too."
  value       = aws_subnet.private[*].id
}

output "scaling_mode" {
  description = "Active scaling mode."
  value       = var.scaling_mode
}
