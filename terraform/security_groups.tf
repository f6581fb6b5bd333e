# Security groups. Nothing accepts traffic from the internet: workers take inbound connections only on their ops
# port (health, metrics) and only from var.ops_ingress_cidrs (none by default; vLLM listens on 127.0.0.1), Postgres and Redis accept only workers and the API's groups. Rules are separate
# resources (AWS provider 5 style), one per source, so adding an API group never rewrites the others.

# The description predates the ops port (workers_ops below); changing it would replace the group.
resource "aws_security_group" "workers" {
  name        = "${var.name}-workers"
  description = "GPU workers: no inbound; outbound to AWS endpoints, the data stores and (via NAT) HTTPS"
  vpc_id      = aws_vpc.main.id
  tags        = { Name = "${var.name}-workers" }
}

resource "aws_vpc_security_group_ingress_rule" "workers_ops" {
  for_each          = toset(var.ops_ingress_cidrs)
  security_group_id = aws_security_group.workers.id
  description       = "Ops server (health, Prometheus /metrics) from ${each.value}"
  ip_protocol       = "tcp"
  from_port         = var.ops_port
  to_port           = var.ops_port
  cidr_ipv4         = each.value
}

resource "aws_vpc_security_group_egress_rule" "workers_https" {
  security_group_id = aws_security_group.workers.id
  description       = "HTTPS: VPC endpoints, S3, and via NAT the model hub and package mirrors"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"
}

resource "aws_vpc_security_group_egress_rule" "workers_http" {
  security_group_id = aws_security_group.workers.id
  description       = "HTTP via NAT: Ubuntu package mirrors at boot"
  ip_protocol       = "tcp"
  from_port         = 80
  to_port           = 80
  cidr_ipv4         = "0.0.0.0/0"
}

resource "aws_vpc_security_group_egress_rule" "workers_postgres" {
  security_group_id            = aws_security_group.workers.id
  description                  = "Postgres"
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  referenced_security_group_id = aws_security_group.database.id
}

resource "aws_vpc_security_group_egress_rule" "workers_redis" {
  security_group_id            = aws_security_group.workers.id
  description                  = "Redis (TLS)"
  ip_protocol                  = "tcp"
  from_port                    = 6379
  to_port                      = 6379
  referenced_security_group_id = aws_security_group.redis.id
}

resource "aws_security_group" "endpoints" {
  name        = "${var.name}-endpoints"
  description = "Interface VPC endpoints: HTTPS from workers only"
  vpc_id      = aws_vpc.main.id
  tags        = { Name = "${var.name}-endpoints" }
}

resource "aws_vpc_security_group_ingress_rule" "endpoints_from_workers" {
  security_group_id            = aws_security_group.endpoints.id
  description                  = "HTTPS from workers"
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
  referenced_security_group_id = aws_security_group.workers.id
}

resource "aws_security_group" "database" {
  name        = "${var.name}-postgres"
  description = "RDS PostgreSQL: 5432 from workers and the API only"
  vpc_id      = aws_vpc.main.id
  tags        = { Name = "${var.name}-postgres" }
}

resource "aws_vpc_security_group_ingress_rule" "database_from_workers" {
  security_group_id            = aws_security_group.database.id
  description                  = "Postgres from workers"
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  referenced_security_group_id = aws_security_group.workers.id
}

resource "aws_vpc_security_group_ingress_rule" "database_from_api" {
  for_each                     = toset(var.api_security_group_ids)
  security_group_id            = aws_security_group.database.id
  description                  = "Postgres from the API"
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  referenced_security_group_id = each.value
}

resource "aws_security_group" "redis" {
  name        = "${var.name}-redis"
  description = "ElastiCache Redis: 6379 from workers and the API only"
  vpc_id      = aws_vpc.main.id
  tags        = { Name = "${var.name}-redis" }
}

resource "aws_vpc_security_group_ingress_rule" "redis_from_workers" {
  security_group_id            = aws_security_group.redis.id
  description                  = "Redis from workers"
  ip_protocol                  = "tcp"
  from_port                    = 6379
  to_port                      = 6379
  referenced_security_group_id = aws_security_group.workers.id
}

resource "aws_vpc_security_group_ingress_rule" "redis_from_api" {
  for_each                     = toset(var.api_security_group_ids)
  security_group_id            = aws_security_group.redis.id
  description                  = "Redis from the API"
  ip_protocol                  = "tcp"
  from_port                    = 6379
  to_port                      = 6379
  referenced_security_group_id = each.value
}
