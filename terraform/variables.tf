# Inputs. Defaults that the worker also knows (queue names, visibility, long poll, redrive count, drain deadline,
# metrics namespace) mirror shared/config.ts DEFAULTS; test/terraform.test.ts fails when they drift apart.
# Scaling variable names are read by the scaling simulator (scripts/simulate-scaling.ts): rename in both places.

# --- general -----------------------------------------------------------------------------------------------

variable "name" {
  description = "Prefix for every resource name (ASG, RDS identifier, secrets, alarms)."
  type        = string
  default     = "llm-fleet"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,24}$", var.name))
    error_message = "name must be 2-25 lowercase letters, digits or dashes, starting with a letter."
  }
}

variable "aws_region" {
  description = "Region for every resource; the worker's AWS_REGION."
  type        = string
  default     = "us-east-1"
}

variable "tags" {
  description = "Extra tags put on every resource (provider default_tags)."
  type        = map(string)
  default     = {}
}

# --- network -----------------------------------------------------------------------------------------------

variable "vpc_cidr" {
  description = "VPC range. Public subnets take /24s at the bottom, private subnets /20s above them."
  type        = string
  default     = "10.40.0.0/16"

  validation {
    condition     = can(cidrhost(var.vpc_cidr, 0)) && tonumber(split("/", var.vpc_cidr)[1]) <= 16
    error_message = "vpc_cidr must be a valid IPv4 CIDR of /16 or larger."
  }
}

variable "az_count" {
  description = "Availability zones to spread subnets, NAT gateways and workers over (one NAT gateway each)."
  type        = number
  default     = 3

  validation {
    condition     = var.az_count >= 2 && var.az_count <= 6 && floor(var.az_count) == var.az_count
    error_message = "az_count must be a whole number from 2 (Multi-AZ RDS needs two) to 6."
  }
}

# --- queue -------------------------------------------------------------------------------------------------

variable "queue_name" {
  description = "Jobs queue name. Worker default QUEUE_NAME."
  type        = string
  default     = "llm-jobs"

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,75}$", var.queue_name))
    error_message = "queue_name must be 1-75 letters, digits, dashes or underscores (the worker's QUEUE_NAME rule)."
  }
}

variable "dlq_name" {
  description = "Dead-letter queue name; messages land here after max_receive_count deliveries."
  type        = string
  default     = "llm-jobs-dlq"

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,80}$", var.dlq_name)) && var.dlq_name != var.queue_name
    error_message = "dlq_name must be a valid SQS name different from queue_name."
  }
}

variable "visibility_timeout_seconds" {
  description = "Queue visibility timeout (s); the worker's SQS_VISIBILITY_TIMEOUT_SECONDS. The worker extends it on every heartbeat, so it bounds how long a crashed worker's jobs stay hidden, not how long a job may run."
  type        = number
  default     = 120

  validation {
    # The worker's default heartbeat (30 s) must stay under half the visibility timeout.
    condition     = var.visibility_timeout_seconds > 60 && var.visibility_timeout_seconds <= 43200
    error_message = "visibility_timeout_seconds must be 61-43200: above twice the worker's 30 s heartbeat, at most SQS's 12 h."
  }
}

variable "receive_wait_time_seconds" {
  description = "Long-poll wait (s) set on the queue and passed as SQS_WAIT_TIME_SECONDS."
  type        = number
  default     = 20

  validation {
    condition     = var.receive_wait_time_seconds >= 1 && var.receive_wait_time_seconds <= 20
    error_message = "receive_wait_time_seconds must be 1-20 (SQS maximum 20; 0 would be short polling)."
  }
}

variable "max_receive_count" {
  description = "Deliveries before SQS moves a message to the DLQ (RedrivePolicy maxReceiveCount); the worker's SQS_MAX_RECEIVE_COUNT."
  type        = number
  default     = 5

  validation {
    condition     = var.max_receive_count >= 1 && var.max_receive_count <= 1000
    error_message = "max_receive_count must be 1-1000."
  }
}

variable "message_retention_seconds" {
  description = "How long an unprocessed job stays in the jobs queue (s). Default 4 days."
  type        = number
  default     = 345600

  validation {
    condition     = var.message_retention_seconds >= 60 && var.message_retention_seconds <= 1209600
    error_message = "message_retention_seconds must be 60-1209600 (14 days)."
  }
}

variable "dlq_message_retention_seconds" {
  description = "DLQ retention (s). Must exceed the queue's: SQS keeps a message's original enqueue time when it is dead-lettered, so a shorter DLQ retention would drop it on arrival. Default 14 days."
  type        = number
  default     = 1209600

  validation {
    condition     = var.dlq_message_retention_seconds <= 1209600 && var.dlq_message_retention_seconds > var.message_retention_seconds
    error_message = "dlq_message_retention_seconds must exceed message_retention_seconds and be at most 1209600 (14 days)."
  }
}

# --- workers -----------------------------------------------------------------------------------------------

variable "gpu_instance_type" {
  description = "EC2 instance type of a worker (one vLLM server + one worker process per instance)."
  type        = string
  default     = "p5.48xlarge"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]*\\.[a-z0-9]+$", var.gpu_instance_type))
    error_message = "gpu_instance_type must look like an EC2 instance type, e.g. p5.48xlarge."
  }
}

variable "gpu_ami_name_filter" {
  description = "Name pattern of the GPU AMI (latest match, owner amazon). Default: the DLAMI with NVIDIA driver and CUDA, no frameworks."
  type        = string
  default     = "Deep Learning Base OSS Nvidia Driver GPU AMI (Ubuntu 22.04) *"
}

variable "root_volume_size_gb" {
  description = "Root EBS volume (GiB): OS, Python env for vLLM and the Hugging Face cache."
  type        = number
  default     = 300

  validation {
    condition     = var.root_volume_size_gb >= 100 && var.root_volume_size_gb <= 16384
    error_message = "root_volume_size_gb must be 100-16384."
  }
}

variable "worker_artifact_s3_uri" {
  description = "s3:// URI of the worker release tarball (repository with node_modules, built by CI)."
  type        = string

  validation {
    condition     = can(regex("^s3://[a-z0-9.-]{3,63}/.+\\.tar\\.gz$", var.worker_artifact_s3_uri))
    error_message = "worker_artifact_s3_uri must be s3://bucket/key.tar.gz."
  }
}

variable "node_version" {
  description = "Node.js release installed on workers: a supported LTS line, 24 (the default; CI runs the test suite on it and the bundle targets it) or 22. Not 20: it reached end of life in April 2026, and AWS SDK releases from January 2027 need Node 22 or later."
  type        = string
  default     = "24.22.3"

  validation {
    condition     = can(regex("^(22|24)\\.[0-9]+\\.[0-9]+$", var.node_version))
    error_message = "node_version must be a Node 22.x.y or 24.x.y release."
  }
}

variable "vllm_version" {
  description = "vLLM release installed with pip on each worker."
  type        = string
  default     = "0.12.0"

  validation {
    condition     = can(regex("^[0-9]+\\.[0-9]+\\.[0-9]+$", var.vllm_version))
    error_message = "vllm_version must be x.y.z."
  }
}

variable "vllm_model" {
  description = "Model vLLM serves; the worker's VLLM_MODEL."
  type        = string
  default     = "meta-llama/Llama-3.1-8B-Instruct"
}

variable "vllm_tensor_parallel_size" {
  description = "GPUs per model replica (--tensor-parallel-size). 1 for an 8B model; 4-8 for 70B."
  type        = number
  default     = 1

  validation {
    condition     = contains([1, 2, 4, 8], var.vllm_tensor_parallel_size)
    error_message = "vllm_tensor_parallel_size must be 1, 2, 4 or 8."
  }
}

variable "vllm_data_parallel_size" {
  description = "Model replicas behind one vLLM endpoint (--data-parallel-size). tensor x data parallel = GPUs per instance (8 on p5.48xlarge)."
  type        = number
  default     = 8

  validation {
    condition     = var.vllm_data_parallel_size >= 1 && var.vllm_data_parallel_size <= 8 && var.vllm_data_parallel_size * var.vllm_tensor_parallel_size <= 8
    error_message = "vllm_data_parallel_size must be 1-8 and tensor x data parallel at most 8 GPUs."
  }
}

variable "vllm_extra_args" {
  description = "Extra flags for `vllm serve` (e.g. --max-num-seqs 512)."
  type        = string
  default     = ""
}

variable "hf_token_secret_arn" {
  description = "Secrets Manager ARN holding a Hugging Face token (plain string) for gated models; null when the model is public or mirrored."
  type        = string
  default     = null
  nullable    = true
}

variable "drain_deadline_ms" {
  description = "On termination, how long running jobs may finish before the worker releases the rest; the worker's DRAIN_DEADLINE_MS."
  type        = number
  default     = 120000

  validation {
    condition     = var.drain_deadline_ms >= 0 && var.drain_deadline_ms <= 3600000
    error_message = "drain_deadline_ms must be 0-3600000."
  }
}

variable "lifecycle_hook_timeout_seconds" {
  description = "Termination lifecycle hook timeout (s): how long a terminating instance may drain. Must outlast the worker's drain deadline plus release and shutdown, or jobs are cut mid-flight."
  type        = number
  default     = 300

  validation {
    condition     = var.lifecycle_hook_timeout_seconds >= 60 && var.lifecycle_hook_timeout_seconds <= 7200
    error_message = "lifecycle_hook_timeout_seconds must be 60-7200 (ASG limit)."
  }

  validation {
    condition     = var.lifecycle_hook_timeout_seconds * 1000 >= var.drain_deadline_ms + 60000
    error_message = "lifecycle_hook_timeout_seconds must exceed drain_deadline_ms by at least 60 s (release and shutdown margin)."
  }
}

variable "launch_hook_timeout_seconds" {
  description = "Launch lifecycle hook timeout (s). A new worker stays Pending:Wait until vLLM answers /health (its bootstrap then completes the hook), so it enters InService - and GroupInServiceInstances and its scaling policies' warm-up, which AWS counts from InService - only once it takes jobs. A boot not ready by then is abandoned and replaced. 0: no launch hook; instances are InService about 2 min after launch while the model still loads, and every warm-up must then cover the rest of the boot. Default: the worker unit's start timeout."
  type        = number
  default     = 1800

  validation {
    condition     = var.launch_hook_timeout_seconds == 0 || (var.launch_hook_timeout_seconds >= 30 && var.launch_hook_timeout_seconds <= 7200)
    error_message = "launch_hook_timeout_seconds must be 0 (no launch hook) or 30-7200 (ASG limit)."
  }
}

variable "worker_log_retention_days" {
  description = "Retention of the worker and vLLM log group."
  type        = number
  default     = 30

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.worker_log_retention_days)
    error_message = "worker_log_retention_days must be a CloudWatch Logs retention value (1, 3, 5, 7, 14, 30, 60, 90, ...)."
  }
}

variable "ops_port" {
  description = "Port of each worker's ops server: GET /health/live, /health/ready, /health and /metrics (Prometheus). Reachable only from ops_ingress_cidrs."
  type        = number
  default     = 9400

  validation {
    condition     = var.ops_port >= 1024 && var.ops_port <= 65535 && var.ops_port != 8000
    error_message = "ops_port must be 1024-65535 and not vLLM's 8000."
  }
}

variable "ops_ingress_cidrs" {
  description = "Private CIDRs allowed to reach ops_port on the workers (a Prometheus scraper, a health checker). Empty: no inbound rule, the port answers only on the instance."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for c in var.ops_ingress_cidrs : can(cidrhost(c, 0)) && c != "0.0.0.0/0" && c != "::/0"])
    error_message = "ops_ingress_cidrs must be CIDRs, never 0.0.0.0/0 or ::/0."
  }
}

variable "metrics_namespace" {
  description = "CloudWatch namespace the worker publishes to; its IAM policy allows PutMetricData only here."
  type        = string
  default     = "LlmFleet"

  validation {
    condition     = can(regex("^[A-Za-z0-9._/#:-]{1,255}$", var.metrics_namespace)) && !startswith(var.metrics_namespace, "AWS/")
    error_message = "metrics_namespace must be a custom CloudWatch namespace (not AWS/...)."
  }
}

# --- fleet size --------------------------------------------------------------------------------------------

variable "min_size" {
  description = "Fewest workers. 0 allows scale to zero: an activation alarm then starts the first worker when jobs arrive."
  type        = number
  default     = 2

  validation {
    condition     = var.min_size >= 0 && var.min_size <= 100 && floor(var.min_size) == var.min_size
    error_message = "min_size must be a whole number 0-100."
  }
}

variable "max_size" {
  description = "Most workers. Also a cost ceiling: at max, backlog grows instead of the bill."
  type        = number
  default     = 8

  validation {
    condition     = var.max_size >= 1 && var.max_size <= 100 && var.max_size >= var.min_size
    error_message = "max_size must be 1-100 and at least min_size."
  }
}

variable "desired_capacity" {
  description = "Workers at creation; null lets the ASG start at min_size. Ignored afterwards (scaling owns it)."
  type        = number
  default     = null
  nullable    = true

  validation {
    condition     = var.desired_capacity == null ? true : (var.desired_capacity >= var.min_size && var.desired_capacity <= var.max_size)
    error_message = "desired_capacity must be null or between min_size and max_size."
  }
}

variable "instance_warmup_seconds" {
  description = "The ASG's default instance warm-up and health-check grace, and the scale-from-zero policy's warm-up (s), counted from InService: with the launch hook (launch_hook_timeout_seconds) that is when vLLM serves; without it, about 2 min after launch, so it must then also cover the model load (boot, model download, vLLM start)."
  type        = number
  default     = 480

  validation {
    condition     = var.instance_warmup_seconds >= 0 && var.instance_warmup_seconds <= 3600
    error_message = "instance_warmup_seconds must be 0-3600."
  }
}

# --- scaling -----------------------------------------------------------------------------------------------

variable "scaling_mode" {
  description = "\"step\": add/remove workers when queue depth crosses thresholds (default). \"target_tracking\": keep (visible + in-flight) / in-service workers near target_backlog_per_instance."
  type        = string
  default     = "step"

  validation {
    condition     = contains(["step", "target_tracking"], var.scaling_mode)
    error_message = "scaling_mode must be \"step\" or \"target_tracking\"."
  }
}

variable "scale_up_threshold" {
  description = "Step mode: scale up when ApproximateNumberOfMessagesVisible (Maximum per period) is above this."
  type        = number
  default     = 100

  validation {
    condition     = var.scale_up_threshold >= 1 && var.scale_up_threshold <= 1000000
    error_message = "scale_up_threshold must be 1-1000000."
  }
}

variable "scale_up_evaluation_periods" {
  description = "Step mode: consecutive periods above scale_up_threshold before scaling up. Fewer reacts faster to bursts, more ignores spikes that drain by themselves."
  type        = number
  default     = 2

  validation {
    condition     = var.scale_up_evaluation_periods >= 1 && var.scale_up_evaluation_periods * var.scale_up_period_seconds <= 86400
    error_message = "scale_up_evaluation_periods must be >= 1 and periods x period at most 1 day (CloudWatch limit)."
  }
}

variable "scale_up_period_seconds" {
  description = "Step mode: length of one scale-up evaluation period (s). SQS publishes every 60 s, so shorter periods see no new data."
  type        = number
  default     = 60

  validation {
    condition     = var.scale_up_period_seconds >= 60 && var.scale_up_period_seconds % 60 == 0
    error_message = "scale_up_period_seconds must be a multiple of 60 (SQS metrics are per minute)."
  }
}

variable "scale_up_adjustment" {
  description = "Step mode: workers added per scale-up step. Also what the scale-from-zero activation adds."
  type        = number
  default     = 1

  validation {
    condition     = var.scale_up_adjustment >= 1 && var.scale_up_adjustment <= 100 && floor(var.scale_up_adjustment) == var.scale_up_adjustment
    error_message = "scale_up_adjustment must be a whole number 1-100."
  }
}

variable "scale_up_large_adjustment" {
  description = "Step mode: workers added instead when depth is at least scale_up_threshold x scale_up_large_threshold_multiple. 0 disables the second step."
  type        = number
  default     = 0

  validation {
    condition     = var.scale_up_large_adjustment == 0 || (var.scale_up_large_adjustment > var.scale_up_adjustment && var.scale_up_large_adjustment <= 100)
    error_message = "scale_up_large_adjustment must be 0 (off) or larger than scale_up_adjustment and at most 100."
  }
}

variable "scale_up_large_threshold_multiple" {
  description = "Step mode: the second step starts at scale_up_threshold times this."
  type        = number
  default     = 5

  validation {
    condition     = var.scale_up_large_threshold_multiple > 1 && var.scale_up_large_threshold_multiple <= 1000
    error_message = "scale_up_large_threshold_multiple must be above 1 and at most 1000."
  }
}

variable "scale_up_cooldown_seconds" {
  description = "Step mode: after a scale-up, seconds during which the same step does not add again (the step policy's estimated instance warmup: AWS step policies have no cooldown, new instances count as capacity until this passes). Shorter adds faster while the first ones still boot; longer risks a slow reaction to a growing backlog."
  type        = number
  default     = 300

  validation {
    condition     = var.scale_up_cooldown_seconds >= 0 && var.scale_up_cooldown_seconds <= 3600
    error_message = "scale_up_cooldown_seconds must be 0-3600."
  }
}

variable "scale_down_metric" {
  description = "Step mode: what the scale-down alarm compares with scale_down_threshold. \"backlog\" (default): jobs waiting + in flight (metric math with ApproximateNumberOfMessagesNotVisible), so a busy fleet never reads as idle; the fleet shrinks only once it is nearly idle, and holds its size under any steady load above the threshold. \"visible\": jobs waiting only; shrinks whenever the fleet keeps up, which flaps when the load needs more than min_size workers (each removal lets a queue build, the next scale-up buys it back). For proportional scale-in under load use scaling_mode = \"target_tracking\"."
  type        = string
  default     = "backlog"

  validation {
    condition     = contains(["backlog", "visible"], var.scale_down_metric)
    error_message = "scale_down_metric must be \"backlog\" (visible + in flight) or \"visible\"."
  }
}

variable "scale_down_threshold" {
  description = "Step mode: scale down when scale_down_metric (Maximum per period) is below this. Workers are never cut mid-job: the surplus finishes its jobs before it goes."
  type        = number
  default     = 10

  validation {
    condition     = var.scale_down_threshold >= 0 && var.scale_down_threshold < var.scale_up_threshold
    error_message = "scale_down_threshold must be >= 0 and below scale_up_threshold (else the fleet flaps)."
  }
}

variable "scale_down_evaluation_periods" {
  description = "Step mode: consecutive periods below scale_down_threshold before removing workers. Longer keeps warm capacity through short lulls (a new GPU worker takes minutes to warm)."
  type        = number
  default     = 5

  validation {
    condition     = var.scale_down_evaluation_periods >= 1 && var.scale_down_evaluation_periods * var.scale_down_period_seconds <= 86400
    error_message = "scale_down_evaluation_periods must be >= 1 and periods x period at most 1 day."
  }
}

variable "scale_down_period_seconds" {
  description = "Step mode: length of one scale-down evaluation period (s)."
  type        = number
  default     = 60

  validation {
    condition     = var.scale_down_period_seconds >= 60 && var.scale_down_period_seconds % 60 == 0
    error_message = "scale_down_period_seconds must be a multiple of 60 (SQS metrics are per minute)."
  }
}

variable "scale_down_adjustment" {
  description = "Step mode: workers removed per scale-down."
  type        = number
  default     = 1

  validation {
    condition     = var.scale_down_adjustment >= 1 && var.scale_down_adjustment <= 100 && floor(var.scale_down_adjustment) == var.scale_down_adjustment
    error_message = "scale_down_adjustment must be a whole number 1-100."
  }
}

variable "scale_down_cooldown_seconds" {
  description = "Step mode: after a scale-down, seconds before the next one (simple-scaling cooldown). Longer shrinks slowly and rides out lulls; shorter saves GPU hours but re-buys warmup on the next burst."
  type        = number
  default     = 600

  validation {
    condition     = var.scale_down_cooldown_seconds >= 0 && var.scale_down_cooldown_seconds <= 7200
    error_message = "scale_down_cooldown_seconds must be 0-7200."
  }
}

variable "target_backlog_per_instance" {
  description = "Target-tracking mode: messages (visible + in flight) per in-service worker the policy holds. Keep it below what a saturated worker holds in flight (WORKER_CONCURRENCY; vLLM's max-num-seqs, 1024, by default): while the fleet keeps up the metric is in flight per worker, about utilisation x concurrency, so the target is a utilisation (768 = 75 %) and any queue pushes it over. A target above concurrency is reached only once a queue has formed: the fleet then shrinks until it falls behind and grows back by the whole backlog, over and over."
  type        = number
  default     = 768

  validation {
    condition     = var.target_backlog_per_instance >= 1 && var.target_backlog_per_instance <= 1000000
    error_message = "target_backlog_per_instance must be 1-1000000."
  }
}

variable "target_tracking_metric" {
  description = "Target-tracking mode: where backlog per instance comes from. \"metric_math\" (default): (ApproximateNumberOfMessagesVisible + NotVisible) / GroupInServiceInstances, all AWS-published. \"published\": BacklogPerInstance + InFlightPerInstance, which every worker publishes to metrics_namespace (CLOUDWATCH_METRICS) from its own queue view and the group's InService count; fresher in-service figures, and the worker's own scaling metric is what the policy sees."
  type        = string
  default     = "metric_math"

  validation {
    condition     = contains(["metric_math", "published"], var.target_tracking_metric)
    error_message = "target_tracking_metric must be \"metric_math\" or \"published\"."
  }
}

variable "target_tracking_warmup_seconds" {
  description = "Target-tracking mode: seconds a new worker is left out of current capacity (its estimated instance warm-up), counted from InService. It must cover the time the worker's effect takes to show in the metric (SQS metric delay, typically 1-4 min, and the 3-minute scale-out alarm) and, without the launch hook, the model load as well: shorter, and the policy counts the worker while the metric still shows the load without it, and adds another."
  type        = number
  default     = 600

  validation {
    condition     = var.target_tracking_warmup_seconds >= 0 && var.target_tracking_warmup_seconds <= 3600
    error_message = "target_tracking_warmup_seconds must be 0-3600."
  }
}

variable "scale_from_zero_backlog_threshold" {
  description = "With min_size 0: start workers when the backlog (visible + in flight) is above this while desired capacity is 0."
  type        = number
  default     = 0

  validation {
    condition     = var.scale_from_zero_backlog_threshold >= 0
    error_message = "scale_from_zero_backlog_threshold must be >= 0."
  }
}

# --- alarms ------------------------------------------------------------------------------------------------

variable "alarm_sns_topic_arns" {
  description = "SNS topics notified by the operational alarms (DLQ, oldest message, no workers). Empty: alarms only show in CloudWatch."
  type        = list(string)
  default     = []
}

variable "alarm_period_seconds" {
  description = "Period of the operational alarms (s)."
  type        = number
  default     = 60

  validation {
    condition     = var.alarm_period_seconds >= 60 && var.alarm_period_seconds % 60 == 0
    error_message = "alarm_period_seconds must be a multiple of 60."
  }
}

variable "dlq_alarm_threshold" {
  description = "Alarm when the DLQ holds more than this many visible messages. 0: any dead letter alarms."
  type        = number
  default     = 0

  validation {
    condition     = var.dlq_alarm_threshold >= 0
    error_message = "dlq_alarm_threshold must be >= 0."
  }
}

variable "dlq_alarm_evaluation_periods" {
  description = "Periods the DLQ must stay above dlq_alarm_threshold before alarming (1: at once)."
  type        = number
  default     = 1

  validation {
    condition     = var.dlq_alarm_evaluation_periods >= 1 && var.dlq_alarm_evaluation_periods <= 1440
    error_message = "dlq_alarm_evaluation_periods must be 1-1440."
  }
}

variable "oldest_message_age_alarm_seconds" {
  description = "Alarm when the oldest queued job has waited longer than this (s): the fleet is not keeping up or is stuck."
  type        = number
  default     = 900

  validation {
    condition     = var.oldest_message_age_alarm_seconds >= 60 && var.oldest_message_age_alarm_seconds < var.message_retention_seconds
    error_message = "oldest_message_age_alarm_seconds must be at least 60 and below message_retention_seconds."
  }
}

variable "oldest_message_age_evaluation_periods" {
  description = "Periods the oldest-message age must stay above its threshold before alarming."
  type        = number
  default     = 3

  validation {
    condition     = var.oldest_message_age_evaluation_periods >= 1 && var.oldest_message_age_evaluation_periods <= 1440
    error_message = "oldest_message_age_evaluation_periods must be 1-1440."
  }
}

variable "no_workers_alarm_threshold" {
  description = "Alarm when fewer workers than this are in service (with min_size 0: only while jobs are waiting)."
  type        = number
  default     = 1

  validation {
    condition     = var.no_workers_alarm_threshold >= 1 && var.no_workers_alarm_threshold <= var.max_size
    error_message = "no_workers_alarm_threshold must be 1..max_size."
  }
}

variable "no_workers_alarm_evaluation_periods" {
  description = "Periods with too few in-service workers before alarming. With min_size 0, keep above a cold start so a scale from zero does not page: activation alarm + boot to InService (with the launch hook, until vLLM serves: ~15 min on a p5), plus up to 15 min when the queue was idle 6 h and its metrics wake up late."
  type        = number
  default     = 10

  validation {
    condition     = var.no_workers_alarm_evaluation_periods >= 1 && var.no_workers_alarm_evaluation_periods <= 1440
    error_message = "no_workers_alarm_evaluation_periods must be 1-1440."
  }
}

# --- data --------------------------------------------------------------------------------------------------

variable "api_security_group_ids" {
  description = "Security groups of the results API / producers allowed to reach Postgres and Redis besides the workers."
  type        = list(string)
  default     = []
}

variable "db_instance_class" {
  description = "RDS PostgreSQL instance class."
  type        = string
  default     = "db.r6g.large"
}

variable "db_allocated_storage_gb" {
  description = "Initial RDS storage (GiB); autoscaling grows it to db_max_allocated_storage_gb."
  type        = number
  default     = 100

  validation {
    condition     = var.db_allocated_storage_gb >= 20 && var.db_allocated_storage_gb <= 65536
    error_message = "db_allocated_storage_gb must be 20-65536."
  }
}

variable "db_max_allocated_storage_gb" {
  description = "Ceiling for RDS storage autoscaling (GiB)."
  type        = number
  default     = 1000

  validation {
    condition     = var.db_max_allocated_storage_gb >= var.db_allocated_storage_gb && var.db_max_allocated_storage_gb <= 65536
    error_message = "db_max_allocated_storage_gb must be at least db_allocated_storage_gb and at most 65536."
  }
}

variable "db_backup_retention_days" {
  description = "Days of automated RDS backups (point-in-time recovery window)."
  type        = number
  default     = 7

  validation {
    condition     = var.db_backup_retention_days >= 1 && var.db_backup_retention_days <= 35
    error_message = "db_backup_retention_days must be 1-35 (0 would turn backups off)."
  }
}

variable "db_deletion_protection" {
  description = "Refuse to delete the database (turn off only to tear down a dev stack)."
  type        = bool
  default     = true
}

variable "redis_node_type" {
  description = "ElastiCache node type (primary and replica)."
  type        = string
  default     = "cache.r7g.large"
}

variable "redis_engine_version" {
  description = "Redis engine version of the replication group."
  type        = string
  default     = "7.1"
}

variable "redis_snapshot_retention_days" {
  description = "Days of Redis snapshots (the hot path only; Postgres is the durable store)."
  type        = number
  default     = 1

  validation {
    condition     = var.redis_snapshot_retention_days >= 0 && var.redis_snapshot_retention_days <= 35
    error_message = "redis_snapshot_retention_days must be 0-35."
  }
}
