/**
 * Structural checks of terraform/ without a terraform binary: each rule reads the hcl2json form of a module and
 * reports violations. A rule also counts what it examined, so a check that found nothing to look at is visible
 * (a rule passing on zero items proves nothing). test/terraform.test.ts runs every rule on terraform/ (must pass)
 * and on test/fixtures/terraform/<rule id>/ (must fail).
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import { DEFAULTS, loadConfig } from "../shared/config.ts";
import { BACKLOG_PER_INSTANCE, IN_FLIGHT_PER_INSTANCE } from "../shared/metrics/cloudwatch-sink.ts";
import { PRODUCTION_NODE_MAJORS } from "./build.ts";
import { parseTerraformDir, type HclJson } from "./hcl.ts";

export interface TerraformModule {
  dir: string;
  json: HclJson;
  /** Files loaded through templatefile("${path.module}/..."), keyed by path relative to the module. */
  templates: ReadonlyMap<string, string>;
}

export interface RuleResult {
  /** Items the rule examined (variables, statements, resources...). */
  checked: number;
  violations: string[];
}

export interface Rule {
  id: string;
  description: string;
  check(module: TerraformModule): RuleResult;
}

type Body = Record<string, unknown>;
interface Block {
  /** "type.name" for resources and data sources, the name for variables. */
  address: string;
  body: Body;
}

export async function loadTerraformModule(dir: string): Promise<TerraformModule> {
  const json = await parseTerraformDir(dir);
  const templates = new Map<string, string>();
  for (const text of stringValues(json)) {
    for (const match of text.matchAll(/templatefile\("\$\{path\.module\}\/([^"]+)"/g)) {
      const rel = match[1] ?? "";
      if (!templates.has(rel)) templates.set(rel, await readFile(path.join(dir, rel), "utf8"));
    }
  }
  return { dir, json, templates };
}

function* stringValues(value: unknown): Generator<string> {
  if (typeof value === "string") yield value;
  else if (Array.isArray(value)) for (const v of value) yield* stringValues(v);
  else if (typeof value === "object" && value !== null) for (const v of Object.values(value)) yield* stringValues(v);
}

/** Run every rule; the map keeps RULES order. */
export function checkModule(module: TerraformModule, rules: readonly Rule[] = RULES): Map<string, RuleResult> {
  return new Map(rules.map((rule) => [rule.id, rule.check(module)]));
}

// --- reading hcl2json ----------------------------------------------------------------------------------------

function list(value: unknown): Body[] {
  return Array.isArray(value) ? (value.filter((v) => typeof v === "object" && v !== null) as Body[]) : [];
}

function strings(value: unknown): string[] {
  if (typeof value === "string") return [value];
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === "string") : [];
}

function resources(module: TerraformModule, type: string, kind: "resource" | "data" = "resource"): Block[] {
  const byName = ((module.json[kind] as Body | undefined)?.[type] ?? {}) as Record<string, unknown>;
  return Object.entries(byName).flatMap(([name, bodies]) => list(bodies).map((body) => ({ address: `${type}.${name}`, body })));
}

function variables(module: TerraformModule): Block[] {
  const byName = (module.json.variable ?? {}) as Record<string, unknown>;
  return Object.entries(byName).flatMap(([name, bodies]) => list(bodies).map((body) => ({ address: name, body })));
}

function variable(module: TerraformModule, name: string): Body | undefined {
  return variables(module).find((v) => v.address === name)?.body;
}

function locals(module: TerraformModule): Body {
  return Object.assign({}, ...list(module.json.locals)) as Body;
}

const isExpression = (v: unknown): v is string => typeof v === "string" && v.includes("${");
/** Refers to an input (directly, through a local, or a dynamic block's iterator), not a literal in disguise. */
const referencesInput = (v: unknown): boolean => isExpression(v) && /\b(var|local)\.[A-Za-z_]|\.value\b/.test(v);
const VAR_REF = /^\$\{var\.([A-Za-z0-9_]+)\}$/;

/** A value, or the default of the variable it is exactly `${var.x}` of. */
function resolve(module: TerraformModule, value: unknown): unknown {
  const name = typeof value === "string" ? VAR_REF.exec(value)?.[1] : undefined;
  return name === undefined ? value : variable(module, name)?.default;
}

function result(checked: number, violations: string[]): RuleResult {
  return { checked, violations };
}

// --- variables -----------------------------------------------------------------------------------------------

const variablesDocumented: Rule = {
  id: "variables-documented",
  description: "every variable declares a type and a description",
  check(module) {
    const vars = variables(module);
    const violations = vars.flatMap(({ address, body }) => [
      ...(isExpression(body.type) ? [] : [`variable ${address}: no type`]),
      ...(typeof body.description === "string" && body.description.trim() !== "" ? [] : [`variable ${address}: no description`]),
    ]);
    return result(vars.length, violations);
  },
};

/** Enumerations checked like numbers: a value outside the set must fail at plan time. */
const ENUM_VARIABLES = new Set(["scaling_mode", "scale_down_metric", "target_tracking_metric"]);

const variablesValidated: Rule = {
  id: "variables-validated",
  description: "number variables (and enumerations) carry a validation block that tests the variable itself",
  check(module) {
    const bounded = variables(module).filter((v) => v.body.type === "${number}" || ENUM_VARIABLES.has(v.address));
    const violations = bounded
      .filter(({ address, body }) => !list(body.validation).some((val) => String(val.condition).includes(`var.${address}`)))
      .map(({ address }) => `variable ${address}: bounded but has no validation on var.${address}`);
    return result(bounded.length, violations);
  },
};

/** The scaling simulator reads these names; the defaults are the default policy. */
export const SCALING_VARIABLE_DEFAULTS: Readonly<Record<string, unknown>> = {
  scaling_mode: "step",
  scale_up_threshold: 100,
  scale_up_evaluation_periods: 2,
  scale_up_period_seconds: 60,
  scale_up_adjustment: 1,
  scale_down_metric: "backlog",
  scale_down_threshold: 10,
  scale_down_evaluation_periods: 5,
  scale_down_period_seconds: 60,
  scale_down_adjustment: 1,
  scale_up_cooldown_seconds: 300,
  scale_down_cooldown_seconds: 600,
  min_size: 2,
  max_size: 8,
  instance_warmup_seconds: 480,
  lifecycle_hook_timeout_seconds: 300,
  launch_hook_timeout_seconds: 1800,
  gpu_instance_type: "p5.48xlarge",
};
const SCALING_VARIABLES_WITHOUT_FIXED_DEFAULT = [
  "target_backlog_per_instance",
  "target_tracking_warmup_seconds",
  "desired_capacity",
  "oldest_message_age_alarm_seconds",
];

const scalingVariables: Rule = {
  id: "scaling-variables",
  description: "the scaling variables the simulator reads exist, with the issue's defaults",
  check(module) {
    const violations: string[] = [];
    for (const [name, expected] of Object.entries(SCALING_VARIABLE_DEFAULTS)) {
      const v = variable(module, name);
      if (!v) violations.push(`variable ${name}: missing`);
      else if (v.default !== expected) violations.push(`variable ${name}: default ${JSON.stringify(v.default)}, expected ${JSON.stringify(expected)}`);
    }
    for (const name of SCALING_VARIABLES_WITHOUT_FIXED_DEFAULT) {
      if (!variable(module, name)) violations.push(`variable ${name}: missing`);
    }
    return result(Object.keys(SCALING_VARIABLE_DEFAULTS).length + SCALING_VARIABLES_WITHOUT_FIXED_DEFAULT.length, violations);
  },
};

// --- scaling and alarms --------------------------------------------------------------------------------------

function tunables(module: TerraformModule): Array<{ where: string; value: unknown }> {
  const out: Array<{ where: string; value: unknown }> = [];
  const add = (where: string, body: Body, keys: string[]) => {
    for (const key of keys) if (key in body) out.push({ where: `${where}.${key}`, value: body[key] });
  };
  for (const { address, body } of resources(module, "aws_cloudwatch_metric_alarm")) {
    add(address, body, ["threshold", "period", "evaluation_periods", "datapoints_to_alarm"]);
    const dynamicQueries = list((body.dynamic as Body | undefined)?.metric_query).flatMap((d) => list(d.content));
    for (const q of [...list(body.metric_query), ...dynamicQueries]) {
      for (const m of list(q.metric)) add(`${address}.metric_query[${String(q.id)}]`, m, ["period"]);
    }
  }
  for (const { address, body } of resources(module, "aws_autoscaling_policy")) {
    add(address, body, ["cooldown", "estimated_instance_warmup", "scaling_adjustment"]);
    for (const s of list(body.step_adjustment)) add(`${address}.step_adjustment`, s, ["scaling_adjustment"]);
    const dynamicSteps = list((body.dynamic as Body | undefined)?.step_adjustment);
    for (const d of dynamicSteps) for (const s of list(d.content)) add(`${address}.dynamic.step_adjustment`, s, ["scaling_adjustment"]);
    for (const t of list(body.target_tracking_configuration)) add(`${address}.target_tracking_configuration`, t, ["target_value"]);
  }
  for (const { address, body } of resources(module, "aws_autoscaling_group")) {
    add(address, body, ["min_size", "max_size", "desired_capacity", "default_instance_warmup", "default_cooldown"]);
  }
  for (const { address, body } of resources(module, "aws_autoscaling_lifecycle_hook")) add(address, body, ["heartbeat_timeout"]);
  return out;
}

const tunablesAreVariables: Rule = {
  id: "tunables-are-variables",
  description: "alarm thresholds/periods, policy adjustments/cooldowns/warmups/targets and ASG sizes come from variables",
  check(module) {
    const found = tunables(module);
    const violations = found
      .filter(({ value }) => !referencesInput(value))
      .map(({ where, value }) => `${where} = ${JSON.stringify(value)}: use a variable`);
    return result(found.length, violations);
  },
};

interface MetricQuery {
  id: string;
  expression?: string;
  /** true, false, or an expression (e.g. `${!local.x}`) for queries whose role depends on a variable. */
  returnData: unknown;
  namespace?: string;
  metricName?: string;
}

/** An alarm's metric_query blocks, static and dynamic alike (a dynamic one may be absent for some inputs). */
function metricQueries(alarm: Body): MetricQuery[] {
  const dynamic = list((alarm.dynamic as Body | undefined)?.metric_query).flatMap((d) => list(d.content));
  return [...list(alarm.metric_query), ...dynamic].map((q) => {
    const metric = list(q.metric)[0];
    return {
      id: String(q.id),
      expression: typeof q.expression === "string" ? q.expression : undefined,
      returnData: q.return_data,
      namespace: typeof metric?.namespace === "string" ? metric.namespace : undefined,
      metricName: typeof metric?.metric_name === "string" ? metric.metric_name : undefined,
    };
  });
}

/** Metric names an alarm reads: its metric_name, or those of its metric queries. */
function alarmMetricNames(alarm: Body): string[] {
  return [...strings(alarm.metric_name), ...metricQueries(alarm).flatMap((q) => (q.metricName ? [q.metricName] : []))];
}

/** The scaling policies an alarm invokes (resource names of aws_autoscaling_policy). */
function invokedPolicies(alarm: Body): string[] {
  return strings(alarm.alarm_actions).flatMap((a) => {
    const name = /aws_autoscaling_policy\.([A-Za-z0-9_]+)/.exec(a)?.[1];
    return name ? [name] : [];
  });
}

/** Whether the expression the alarm watches (metric math) reads the query `id`. */
function returnedExpressionReads(alarm: Body, id: string): boolean {
  return metricQueries(alarm).some((q) => q.returnData === true && q.expression !== undefined && new RegExp(`\\b${id}\\b`).test(q.expression));
}

/** Every { namespace, metric_name } object under a value (alarm metrics, target-tracking customized metrics). */
function* namespacedMetrics(value: unknown): Generator<{ namespace: string; name: string }> {
  if (Array.isArray(value)) for (const v of value) yield* namespacedMetrics(v);
  else if (typeof value === "object" && value !== null) {
    const body = value as Body;
    if (typeof body.namespace === "string" && typeof body.metric_name === "string") yield { namespace: body.namespace, name: body.metric_name };
    for (const v of Object.values(body)) yield* namespacedMetrics(v);
  }
}

const scaleFromZero: Rule = {
  id: "scale-from-zero",
  description:
    "an alarm that scales on the group's own size fires only while desired capacity is 0 and never lowers capacity (no ExactCapacity); group metrics read anywhere are collected",
  check(module) {
    const violations: string[] = [];
    const policies = new Map(resources(module, "aws_autoscaling_policy").map((p) => [p.address.split(".")[1] ?? "", p.body]));
    const alarms = resources(module, "aws_cloudwatch_metric_alarm");
    const activations = alarms.filter(({ body }) => invokedPolicies(body).length > 0 && alarmMetricNames(body).some((m) => m.startsWith("Group")));
    for (const { address, body } of activations) {
      const desired = metricQueries(body).find((q) => q.metricName === "GroupDesiredCapacity");
      if (!desired) violations.push(`${address}: does not read GroupDesiredCapacity (gate on desired = 0, not on in-service workers, which stay 0 for the whole boot)`);
      else if (!returnedExpressionReads(body, desired.id)) violations.push(`${address}: its returned expression ignores ${desired.id} (GroupDesiredCapacity)`);
      for (const name of invokedPolicies(body)) {
        const type = policies.get(name)?.adjustment_type;
        if (type !== "ChangeInCapacity") violations.push(`aws_autoscaling_policy.${name}: adjustment_type ${String(type)} can undo other policies' scale-outs; use ChangeInCapacity`);
      }
    }
    const read = new Set<string>();
    for (const type of ["aws_cloudwatch_metric_alarm", "aws_autoscaling_policy"]) {
      for (const { body } of resources(module, type)) {
        for (const m of namespacedMetrics(body)) if (m.namespace === "AWS/AutoScaling") read.add(m.name);
      }
    }
    for (const { address, body } of resources(module, "aws_autoscaling_group")) {
      const collected = strings(body.enabled_metrics);
      for (const name of read) if (!collected.includes(name)) violations.push(`${address}: ${name} is read by a policy or alarm but not in enabled_metrics (never published)`);
    }
    return result(activations.length + read.size, violations);
  },
};

const scaleInCountsInFlight: Rule = {
  id: "scale-in-counts-in-flight",
  description: "scale-in alarms on queue depth also count in-flight messages (ApproximateNumberOfMessagesNotVisible), so a busy fleet never reads as idle",
  check(module) {
    const scaleIn = resources(module, "aws_cloudwatch_metric_alarm").filter(
      ({ body }) => invokedPolicies(body).length > 0 && String(body.comparison_operator).startsWith("LessThan") && alarmMetricNames(body).includes("ApproximateNumberOfMessagesVisible"),
    );
    const violations = scaleIn.flatMap(({ address, body }) => {
      const inFlight = metricQueries(body).find((q) => q.metricName === "ApproximateNumberOfMessagesNotVisible");
      if (!inFlight) return [`${address}: scales in on visible messages without in-flight ones (ApproximateNumberOfMessagesNotVisible)`];
      return returnedExpressionReads(body, inFlight.id) ? [] : [`${address}: reads ${inFlight.id} but its returned expression does not add it`];
    });
    return result(scaleIn.length, violations);
  },
};

/** Every metric block (namespace + metric_name) under a value, with its body (for dimensions). */
function* metricBlocks(value: unknown): Generator<Body> {
  if (Array.isArray(value)) for (const v of value) yield* metricBlocks(v);
  else if (typeof value === "object" && value !== null) {
    const body = value as Body;
    if (typeof body.namespace === "string" && typeof body.metric_name === "string") yield body;
    for (const v of Object.values(body)) yield* metricBlocks(v);
  }
}

/** What shared/metrics/cloudwatch-sink.ts publishes for scaling, with the dimension it uses inside a group. */
const PUBLISHED_SCALING_METRICS = [BACKLOG_PER_INSTANCE, IN_FLIGHT_PER_INSTANCE];

const publishedBacklogMetric: Rule = {
  id: "published-backlog-metric",
  description:
    "a policy or alarm reading the workers' own namespace reads a metric they publish (BacklogPerInstance, InFlightPerInstance) by AutoScalingGroupName, and the workers are told to publish (CLOUDWATCH_METRICS)",
  check(module) {
    const violations: string[] = [];
    let checked = 0;
    for (const type of ["aws_autoscaling_policy", "aws_cloudwatch_metric_alarm"]) {
      for (const { address, body } of resources(module, type)) {
        for (const m of metricBlocks(body)) {
          if (m.namespace !== "${var.metrics_namespace}") continue;
          checked++;
          const name = String(m.metric_name);
          if (!PUBLISHED_SCALING_METRICS.includes(name)) violations.push(`${address}: reads ${name}, which the workers do not publish (${PUBLISHED_SCALING_METRICS.join(", ")})`);
          const dims = list(m.dimensions).map((d) => String(d.name));
          if (dims.length !== 1 || dims[0] !== "AutoScalingGroupName") violations.push(`${address}: ${name} by dimension ${dims.join(",") || "none"}; the workers publish it by AutoScalingGroupName`);
        }
      }
    }
    const env = (locals(module).worker_env ?? {}) as Body;
    if (checked > 0 && env.CLOUDWATCH_METRICS !== "true") violations.push(`worker_env.CLOUDWATCH_METRICS is ${JSON.stringify(env.CLOUDWATCH_METRICS)}: the workers would publish nothing to scale on`);
    return result(checked, violations);
  },
};

// --- IAM -----------------------------------------------------------------------------------------------------

interface Statement {
  where: string;
  body: Body;
  actions: string[];
  resources: string[];
}

function statements(module: TerraformModule): Statement[] {
  return resources(module, "aws_iam_policy_document", "data").flatMap(({ address, body }) =>
    list(body.statement).map((s, i) => ({
      where: `data.${address}.statement[${String(s.sid ?? i)}]`,
      body: s,
      actions: strings(s.actions),
      resources: strings(s.resources),
    })),
  );
}

/** Policy arguments of IAM resources: they must come from a policy document, where the rules can read them. */
const POLICY_ARGUMENTS: ReadonlyArray<[string, string]> = [
  ["aws_iam_role_policy", "policy"],
  ["aws_iam_policy", "policy"],
  ["aws_iam_role", "assume_role_policy"],
  ["aws_sqs_queue_policy", "policy"],
];

const iamNoWildcards: Rule = {
  id: "iam-no-wildcards",
  description: "no wildcard or NotAction actions; a \"*\" resource only under a condition; policies come from policy documents",
  check(module) {
    const stmts = statements(module);
    const violations: string[] = [];
    for (const s of stmts) {
      for (const a of s.actions.filter((x) => x.includes("*"))) violations.push(`${s.where}: wildcard action ${a}`);
      if ("not_actions" in s.body) violations.push(`${s.where}: not_actions grants everything else`);
      if (s.resources.includes("*") && list(s.body.condition).length === 0) violations.push(`${s.where}: resource "*" without a condition`);
    }
    let policies = 0;
    for (const [type, arg] of POLICY_ARGUMENTS) {
      for (const { address, body } of resources(module, type)) {
        if (!(arg in body)) continue;
        policies++;
        if (!/^\$\{data\.aws_iam_policy_document\.[A-Za-z0-9_]+\.json\}$/.test(String(body[arg]))) {
          violations.push(`${address}.${arg}: not a data.aws_iam_policy_document (inline JSON escapes these checks)`);
        }
      }
    }
    return result(stmts.length + policies, violations);
  },
};

const iamQueueScoped: Rule = {
  id: "iam-queue-scoped",
  description: "SQS actions are granted on this stack's queue ARNs only",
  check(module) {
    const sqs = statements(module).filter((s) => s.actions.some((a) => a.toLowerCase().startsWith("sqs:")));
    const violations = sqs.flatMap((s) => [
      ...(s.resources.length === 0 ? [`${s.where}: SQS actions without resources`] : []),
      ...s.resources
        .filter((r) => !/^\$\{aws_sqs_queue\.[A-Za-z0-9_]+(\[[^\]]+\])?\.arn\}$/.test(r))
        .map((r) => `${s.where}: SQS actions on ${r}, not a queue ARN of this stack`),
    ]);
    return result(sqs.length, violations);
  },
};

const iamMetricsNamespace: Rule = {
  id: "iam-metrics-namespace",
  description: "cloudwatch:PutMetricData is conditioned on cloudwatch:namespace (exact, no wildcard)",
  check(module) {
    const put = statements(module).filter((s) => s.actions.some((a) => a.toLowerCase() === "cloudwatch:putmetricdata"));
    const violations = put
      .filter((s) => {
        const fenced = list(s.body.condition).some(
          (c) => c.variable === "cloudwatch:namespace" && c.test === "StringEquals" && strings(c.values).length > 0 && !strings(c.values).some((v) => v.includes("*")),
        );
        return !fenced;
      })
      .map((s) => `${s.where}: PutMetricData without a StringEquals cloudwatch:namespace condition`);
    return result(put.length, violations);
  },
};

// --- network -------------------------------------------------------------------------------------------------

const OPEN = ["0.0.0.0/0", "::/0"];
const LB_GROUP = /(^|_)(lb|alb|nlb|load_balancer)(_|$)/;

interface Ingress {
  where: string;
  group: string;
  cidrs: string[];
  from: unknown;
  to: unknown;
}

function ingressRules(module: TerraformModule): Ingress[] {
  const groupOf = (ref: unknown) => /aws_security_group\.([A-Za-z0-9_]+)\./.exec(String(ref))?.[1] ?? String(ref);
  const cidrs = (...values: unknown[]) => values.flatMap((v) => strings(resolve(module, v)));
  const out: Ingress[] = [];
  for (const { address, body } of resources(module, "aws_security_group")) {
    const group = address.split(".")[1] ?? address;
    for (const rule of list(body.ingress)) {
      out.push({ where: `${address}.ingress`, group, cidrs: cidrs(rule.cidr_blocks, rule.ipv6_cidr_blocks), from: rule.from_port, to: rule.to_port });
    }
  }
  for (const { address, body } of resources(module, "aws_security_group_rule")) {
    if (body.type !== "ingress") continue;
    out.push({ where: address, group: groupOf(body.security_group_id), cidrs: cidrs(body.cidr_blocks, body.ipv6_cidr_blocks), from: body.from_port, to: body.to_port });
  }
  for (const { address, body } of resources(module, "aws_vpc_security_group_ingress_rule")) {
    out.push({ where: address, group: groupOf(body.security_group_id), cidrs: cidrs(body.cidr_ipv4, body.cidr_ipv6), from: body.from_port, to: body.to_port });
  }
  return out;
}

const noPublicIngress: Rule = {
  id: "no-public-ingress",
  description: "no ingress from 0.0.0.0/0 or ::/0, except TLS (443) on a load balancer's security group",
  check(module) {
    const rules = ingressRules(module);
    const violations = rules
      .filter((r) => r.cidrs.some((c) => OPEN.includes(c)))
      .filter((r) => !(LB_GROUP.test(r.group) && r.from === 443 && r.to === 443))
      .map((r) => `${r.where}: open to the internet (ports ${String(r.from)}-${String(r.to)} on group ${r.group})`);
    return result(rules.length, violations);
  },
};

// --- queue ---------------------------------------------------------------------------------------------------

const sqsEncrypted: Rule = {
  id: "sqs-encrypted",
  description: "every SQS queue has server-side encryption (SQS-managed or KMS)",
  check(module) {
    const queues = resources(module, "aws_sqs_queue");
    const violations = queues
      .filter(({ body }) => body.sqs_managed_sse_enabled !== true && !body.kms_master_key_id)
      .map(({ address }) => `${address}: no server-side encryption`);
    return result(queues.length, violations);
  },
};

const sqsRedrive: Rule = {
  id: "sqs-redrive",
  description: "source queues dead-letter with maxReceiveCount = var.max_receive_count into a DLQ that retains longer",
  check(module) {
    const queues = resources(module, "aws_sqs_queue");
    const sources = queues.filter(({ body }) => body.redrive_policy !== undefined);
    const violations: string[] = [];
    if (queues.length > 0 && sources.length === 0) violations.push("no queue has a redrive_policy (no DLQ)");
    for (const { address, body } of sources) {
      const policy = String(body.redrive_policy);
      if (!/maxReceiveCount\s*=\s*var\.max_receive_count\b/.test(policy)) violations.push(`${address}: maxReceiveCount is not var.max_receive_count`);
      const dlqName = /deadLetterTargetArn\s*=\s*aws_sqs_queue\.([A-Za-z0-9_]+)\.arn/.exec(policy)?.[1];
      const dlq = queues.find((q) => q.address === `aws_sqs_queue.${dlqName}`);
      if (!dlq) {
        violations.push(`${address}: deadLetterTargetArn is not a queue of this stack`);
        continue;
      }
      const own = Number(resolve(module, body.message_retention_seconds) ?? 345_600); // SQS default 4 days
      const dead = Number(resolve(module, dlq.body.message_retention_seconds) ?? 345_600);
      if (!(dead > own)) violations.push(`${dlq.address}: retention ${dead} s not longer than ${address}'s ${own} s`);
    }
    return result(queues.length, violations);
  },
};

// --- compute and data stores ---------------------------------------------------------------------------------

const imdsv2Required: Rule = {
  id: "imdsv2-required",
  description: "launch templates and instances require IMDSv2 (metadata_options.http_tokens = \"required\")",
  check(module) {
    const hosts = [...resources(module, "aws_launch_template"), ...resources(module, "aws_instance")];
    const violations = hosts
      .filter(({ body }) => !list(body.metadata_options).some((m) => m.http_tokens === "required"))
      .map(({ address }) => `${address}: IMDSv2 not required (metadata_options.http_tokens)`);
    return result(hosts.length, violations);
  },
};

const encryptionAtRest: Rule = {
  id: "encryption-at-rest",
  description: "EBS volumes, RDS storage and ElastiCache (at rest and in transit) are encrypted",
  check(module) {
    const violations: string[] = [];
    let checked = 0;
    const need = (address: string, ok: boolean, what: string) => {
      checked++;
      if (!ok) violations.push(`${address}: ${what} not enabled`);
    };
    for (const { address, body } of resources(module, "aws_launch_template")) {
      for (const bdm of list(body.block_device_mappings)) {
        for (const ebs of list(bdm.ebs)) need(`${address}.${String(bdm.device_name)}`, ebs.encrypted === true, "EBS encryption");
      }
    }
    for (const { address, body } of resources(module, "aws_ebs_volume")) need(address, body.encrypted === true, "EBS encryption");
    for (const type of ["aws_db_instance", "aws_rds_cluster"]) {
      for (const { address, body } of resources(module, type)) need(address, body.storage_encrypted === true, "storage_encrypted");
    }
    for (const { address, body } of resources(module, "aws_elasticache_replication_group")) {
      need(address, body.at_rest_encryption_enabled === true, "at_rest_encryption_enabled");
      need(address, body.transit_encryption_enabled === true, "transit_encryption_enabled");
    }
    return result(checked, violations);
  },
};

const databaseManaged: Rule = {
  id: "database-managed",
  description: "RDS: password managed by RDS in Secrets Manager, Multi-AZ, backups kept, not public",
  check(module) {
    const dbs = resources(module, "aws_db_instance");
    const violations = dbs.flatMap(({ address, body }) => [
      ...(body.manage_master_user_password === true ? [] : [`${address}: manage_master_user_password is not true`]),
      ...("password" in body ? [`${address}: password set in Terraform`] : []),
      ...(body.multi_az === true ? [] : [`${address}: not Multi-AZ`]),
      ...(body.backup_retention_period === undefined || body.backup_retention_period === 0 ? [`${address}: no backup retention`] : []),
      ...(body.publicly_accessible === true ? [`${address}: publicly accessible`] : []),
    ]);
    return result(dbs.length, violations);
  },
};

// --- agreement with the worker -------------------------------------------------------------------------------

const workerDefaults: Rule = {
  id: "worker-defaults",
  description: "variable defaults agree with shared/config.ts (DEFAULTS, loadConfig({})) and the queue uses them; workers get the Node the bundle targets",
  check(module) {
    const config = loadConfig({});
    const expected: Record<string, unknown> = {
      queue_name: DEFAULTS.queueName,
      dlq_name: `${DEFAULTS.queueName}-dlq`,
      visibility_timeout_seconds: config.queue.visibilityTimeoutSeconds,
      receive_wait_time_seconds: config.queue.waitTimeSeconds,
      max_receive_count: config.queue.maxReceiveCount,
      drain_deadline_ms: config.worker.drainDeadlineMs,
      lifecycle_hook_timeout_seconds: DEFAULTS.lifecycleHookTimeoutSeconds,
      metrics_namespace: DEFAULTS.metricsNamespace,
      vllm_model: config.vllm.model,
    };
    const violations: string[] = [];
    for (const [name, value] of Object.entries(expected)) {
      const actual = variable(module, name)?.default;
      if (actual !== value) violations.push(`variable ${name}: default ${JSON.stringify(actual)}, worker expects ${JSON.stringify(value)}`);
    }
    // The Node line the bundle is built for first (scripts/build.ts) and CI's second pass runs (.ci/run).
    const node = variable(module, "node_version")?.default;
    const nodeMajor = String(PRODUCTION_NODE_MAJORS[0]);
    if (String(node).split(".")[0] !== nodeMajor) {
      violations.push(`variable node_version: default ${JSON.stringify(node)}, the bundle and CI target Node ${nodeMajor}`);
    }
    const hook = Number(variable(module, "lifecycle_hook_timeout_seconds")?.default);
    const drain = Number(variable(module, "drain_deadline_ms")?.default);
    if (!(hook * 1000 > drain)) violations.push(`lifecycle hook ${hook} s does not outlast the drain deadline ${drain} ms`);
    // The worker must accept the env Terraform hands it with these defaults.
    try {
      loadConfig(envFromDefaults(module));
    } catch (err) {
      violations.push(`worker rejects the default env: ${err instanceof Error ? err.message : String(err)}`);
    }
    const wiring: Array<[string, string, string]> = [
      ["aws_sqs_queue", "visibility_timeout_seconds", "visibility_timeout_seconds"],
      ["aws_sqs_queue", "receive_wait_time_seconds", "receive_wait_time_seconds"],
      ["aws_autoscaling_lifecycle_hook", "heartbeat_timeout", "lifecycle_hook_timeout_seconds"],
    ];
    for (const [type, arg, name] of wiring) {
      // The launch hook (model ready) has its own timeout; only the termination hook must outlast the drain.
      const users = resources(module, type).filter(({ body }) => arg in body && body.lifecycle_transition !== "autoscaling:EC2_INSTANCE_LAUNCHING");
      if (users.length === 0) violations.push(`no ${type} sets ${arg}`);
      for (const { address, body } of users) {
        if (body[arg] !== `\${var.${name}}`) violations.push(`${address}.${arg} is not var.${name}`);
      }
    }
    return result(Object.keys(expected).length + wiring.length + 3, violations);
  },
};

/** Worker env name -> the variable whose default it carries (locals.worker_env). */
const ENV_FROM_VARIABLE: Readonly<Record<string, string>> = {
  SQS_VISIBILITY_TIMEOUT_SECONDS: "visibility_timeout_seconds",
  SQS_WAIT_TIME_SECONDS: "receive_wait_time_seconds",
  SQS_MAX_RECEIVE_COUNT: "max_receive_count",
  DRAIN_DEADLINE_MS: "drain_deadline_ms",
  VLLM_MODEL: "vllm_model",
  AWS_REGION: "aws_region",
  METRICS_NAMESPACE: "metrics_namespace",
};

function envFromDefaults(module: TerraformModule): Record<string, string> {
  return Object.fromEntries(Object.entries(ENV_FROM_VARIABLE).map(([env, name]) => [env, String(variable(module, name)?.default ?? "")]));
}

/** Built on the instance from Secrets Manager: only the template can set them. */
const ENV_FROM_TEMPLATE: Readonly<Record<string, RegExp>> = {
  DATABASE_URL: /export DATABASE_URL="postgres(ql)?:\/\//,
  REDIS_URL: /export REDIS_URL="rediss:\/\//,
};

const workerEnv: Rule = {
  id: "worker-env",
  description: "the worker's environment (locals.worker_env + user data) has every variable it needs, wired to the right inputs",
  check(module) {
    const env = (locals(module).worker_env ?? {}) as Body;
    const violations: string[] = [];
    for (const [key, name] of Object.entries(ENV_FROM_VARIABLE)) {
      if (env[key] !== `\${var.${name}}`) violations.push(`worker_env.${key}: expected var.${name}, got ${JSON.stringify(env[key])}`);
    }
    if (!/^\$\{aws_sqs_queue\.[A-Za-z0-9_]+\.url\}$/.test(String(env.QUEUE_URLS))) violations.push("worker_env.QUEUE_URLS: not a queue URL of this stack");
    if (env.VLLM_URL !== "http://127.0.0.1:8000") violations.push(`worker_env.VLLM_URL: expected http://127.0.0.1:8000, got ${JSON.stringify(env.VLLM_URL)}`);
    const userData = [...module.templates.values()].join("\n");
    for (const [key, pattern] of Object.entries(ENV_FROM_TEMPLATE)) {
      if (!pattern.test(userData)) violations.push(`user data: ${key} not exported as ${pattern.source}`);
    }
    return result(Object.keys(ENV_FROM_VARIABLE).length + 2 + Object.keys(ENV_FROM_TEMPLATE).length, violations);
  },
};

// --- templates -----------------------------------------------------------------------------------------------

interface TemplateCall {
  file: string;
  keys: Set<string>;
}

/** templatefile("${path.module}/<file>", { key = ... }) calls and the top-level keys of their vars object. */
function templateCalls(module: TerraformModule): TemplateCall[] {
  const calls: TemplateCall[] = [];
  for (const text of stringValues(module.json)) {
    for (const match of text.matchAll(/templatefile\("\$\{path\.module\}\/([^"]+)",\s*\{/g)) {
      calls.push({ file: match[1] ?? "", keys: topLevelKeys(text, (match.index ?? 0) + match[0].length) });
    }
  }
  return calls;
}

/** Keys assigned at depth 1 of the object literal whose body starts at `start` (just after its "{"). */
function topLevelKeys(text: string, start: number): Set<string> {
  const keys = new Set<string>();
  let depth = 1;
  let lineStart = start;
  for (let i = start; i < text.length && depth > 0; i++) {
    const ch = text[i];
    if (ch === "{" || ch === "(" || ch === "[") depth++;
    else if (ch === "}" || ch === ")" || ch === "]") depth--;
    if (ch === "\n" || ch === "," || i === start) {
      const from = ch === "\n" || ch === "," ? i + 1 : i;
      if (depth === 1) lineStart = from;
      const key = depth === 1 ? /^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=(?!=)/.exec(text.slice(lineStart))?.[1] : undefined;
      if (key) keys.add(key);
    }
  }
  return keys;
}

/** Names a template reads: ${name...} interpolations (not $${ escapes) and %{ if name ... } directives. */
function templateReferences(template: string): Set<string> {
  const names = new Set<string>();
  for (const m of template.matchAll(/(?<!\$)\$\{~?\s*([A-Za-z_][A-Za-z0-9_]*)/g)) names.add(m[1] ?? "");
  for (const m of template.matchAll(/(?<!%)%\{~?\s*if\s+([A-Za-z_][A-Za-z0-9_]*)/g)) names.add(m[1] ?? "");
  return names;
}

const templateVariables: Rule = {
  id: "template-variables",
  description: "every name a templatefile() template reads is passed in its vars (terraform would fail at plan)",
  check(module) {
    const calls = templateCalls(module);
    const violations: string[] = [];
    for (const { file, keys } of calls) {
      const text = module.templates.get(file);
      if (text === undefined) {
        violations.push(`${file}: template not found`);
        continue;
      }
      for (const name of templateReferences(text)) {
        if (!keys.has(name)) violations.push(`${file}: reads \${${name}} but templatefile() does not pass it`);
      }
    }
    return result(calls.length, violations);
  },
};

export const RULES: readonly Rule[] = [
  variablesDocumented,
  variablesValidated,
  scalingVariables,
  tunablesAreVariables,
  scaleFromZero,
  scaleInCountsInFlight,
  publishedBacklogMetric,
  iamNoWildcards,
  iamQueueScoped,
  iamMetricsNamespace,
  noPublicIngress,
  sqsEncrypted,
  sqsRedrive,
  imdsv2Required,
  encryptionAtRest,
  databaseManaged,
  workerDefaults,
  workerEnv,
  templateVariables,
];
