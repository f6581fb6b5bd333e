/**
 * terraform/ checked without a terraform binary: every rule of scripts/hcl-rules.ts must pass on the real module
 * (having examined something) and must fail on its fixture under test/fixtures/terraform/<rule id>/, reporting
 * each flaw planted there. Also: the HCL reader the scaling simulator uses, and the example tfvars.
 */
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { ConfigError } from "../shared/errors.ts";
import { parseTerraformDir, readVariableDefaults } from "../scripts/hcl.ts";
import { RULES, checkModule, loadTerraformModule, type RuleResult } from "../scripts/hcl-rules.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const TERRAFORM = path.join(ROOT, "terraform");
const FIXTURES = path.join(ROOT, "test", "fixtures", "terraform");

/** The flaws planted in each fixture: every one must be reported. */
const PLANTED: Record<string, RegExp[]> = {
  "variables-documented": [/no type/, /no description/],
  "variables-validated": [/variable min_size/, /variable max_size/],
  "scaling-variables": [/scale_up_threshold: default 50/, /scale_up_cooldown_seconds: missing/],
  "scale-from-zero": [
    /aws_cloudwatch_metric_alarm\.activate: does not read GroupDesiredCapacity/,
    /aws_autoscaling_policy\.activate: adjustment_type ExactCapacity/,
    /GroupInServiceInstances is read .* not in enabled_metrics/,
  ],
  "scale-in-counts-in-flight": [/aws_cloudwatch_metric_alarm\.scale_down: scales in on visible messages without in-flight/, /scale_down_math: reads in_flight but/],
  "tunables-are-variables": [/scale_up\.period = 60/, /scale_up\.threshold = 100/, /scale_down\.cooldown = 600/, /scale_down\.scaling_adjustment = -1/],
  "published-backlog-metric": [/reads BacklogPerWorker, which the workers do not publish/, /InFlightPerInstance by dimension QueueName/, /CLOUDWATCH_METRICS is undefined/],
  "iam-no-wildcards": [/wildcard action sqs:\*/, /resource "\*" without a condition/, /aws_iam_role_policy\.inline\.policy/],
  "iam-queue-scoped": [/someone-elses-queue/],
  "iam-metrics-namespace": [/PutMetricData without/],
  "no-public-ingress": [/aws_security_group\.workers\.ingress.*ports 22-22/, /lb_http.*ports 80-80/],
  "sqs-encrypted": [/aws_sqs_queue\.dlq: no server-side encryption/],
  "sqs-redrive": [/maxReceiveCount is not var\.max_receive_count/, /retention 86400 s not longer/],
  "imdsv2-required": [/aws_launch_template\.worker: IMDSv2 not required/],
  "encryption-at-rest": [/EBS encryption not enabled/, /storage_encrypted not enabled/, /transit_encryption_enabled not enabled/],
  "database-managed": [/manage_master_user_password/, /password set in Terraform/, /not Multi-AZ/, /no backup retention/],
  "worker-defaults": [
    /visibility_timeout_seconds: default 30/,
    /lifecycle hook 90 s/,
    /worker rejects the default env/,
    /visibility_timeout_seconds is not var/,
    /node_version: default "20\.20\.2", the bundle and CI target Node 24/,
  ],
  "template-variables": [/reads \$\{queue_url\}/, /reads \$\{hf_token\}/],
  "worker-env": [/worker_env\.SQS_VISIBILITY_TIMEOUT_SECONDS/, /worker_env\.DRAIN_DEADLINE_MS/, /REDIS_URL not exported/],
};

describe("terraform/ passes every rule", () => {
  let results: Map<string, RuleResult>;
  before(async () => {
    results = checkModule(await loadTerraformModule(TERRAFORM));
  });

  for (const rule of RULES) {
    it(`${rule.id}: ${rule.description}`, () => {
      const result = results.get(rule.id);
      assert.ok(result, `rule ${rule.id} did not run`);
      assert.ok(result.checked > 0, `${rule.id} examined nothing in terraform/`);
      assert.deepEqual(result.violations, []);
    });
  }
});

describe("each rule fails its fixture", () => {
  it("every rule has a fixture directory and every fixture a rule", async () => {
    const entries = await readdir(FIXTURES, { withFileTypes: true });
    const dirs = entries.filter((e) => e.isDirectory()).map((e) => e.name).sort();
    assert.deepEqual(dirs, RULES.map((r) => r.id).sort());
    assert.deepEqual(Object.keys(PLANTED).sort(), dirs);
  });

  for (const rule of RULES) {
    it(rule.id, async () => {
      const { violations } = rule.check(await loadTerraformModule(path.join(FIXTURES, rule.id)));
      assert.ok(violations.length > 0, `${rule.id} passed its fixture`);
      for (const flaw of PLANTED[rule.id] ?? []) {
        assert.ok(violations.some((v) => flaw.test(v)), `${rule.id} missed ${flaw}; reported:\n${violations.join("\n")}`);
      }
    });
  }
});

describe("scripts/hcl.ts", () => {
  it("parseTerraformDir merges every .tf file of the directory", async () => {
    const json = await parseTerraformDir(TERRAFORM);
    const variable = json.variable as Record<string, unknown>;
    const resource = json.resource as Record<string, Record<string, unknown>>;
    assert.ok("visibility_timeout_seconds" in variable, "variables.tf missing from the merge");
    assert.ok(resource.aws_sqs_queue && "jobs" in resource.aws_sqs_queue, "queue.tf missing from the merge");
    assert.ok(resource.aws_autoscaling_group && "workers" in resource.aws_autoscaling_group, "workers.tf missing");
    assert.ok(Array.isArray(json.locals) && json.locals.length > 1, "locals blocks of several files are kept");
  });

  it("readVariableDefaults returns defaults, overridden by a .tfvars file looked up from the module", async () => {
    const defaults = await readVariableDefaults(TERRAFORM);
    assert.equal(defaults.min_size, 2);
    assert.equal(defaults.scaling_mode, "step");
    assert.equal(defaults.desired_capacity, null);
    assert.ok(!("worker_artifact_s3_uri" in defaults), "a variable without default must be absent");

    const dev = await readVariableDefaults(TERRAFORM, "examples/dev.tfvars");
    assert.equal(dev.min_size, 0);
    assert.equal(dev.scale_up_threshold, 20);
    assert.equal(dev.scale_down_evaluation_periods, 5, "unset in dev.tfvars: the default stays");
  });

  it("rejects a tfvars file assigning an undeclared variable, and reports HCL syntax errors by file", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "hcl-test-"));
    try {
      await writeFile(path.join(dir, "main.tf"), 'variable "min_size" {\n  type = number\n  description = "x"\n  default = 2\n}\n');
      await writeFile(path.join(dir, "typo.tfvars"), "min_sise = 0\n");
      await assert.rejects(readVariableDefaults(dir, path.join(dir, "typo.tfvars")), (err: unknown) => {
        return err instanceof ConfigError && /undeclared variable "min_sise"/.test(err.message);
      });
      await assert.rejects(readVariableDefaults(dir, "missing.tfvars"), ConfigError);
      await writeFile(path.join(dir, "broken.tf"), 'variable "x" {\n');
      await assert.rejects(parseTerraformDir(dir), (err: unknown) => err instanceof ConfigError && /broken\.tf/.test(err.message));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

/**
 * Enough of templatefile() for our user data: ${name}, $${ escapes, and %{ if name != "" ~} ... %{ endif ~}.
 * Anything else throws, so a new construct in the template makes this test ask for support instead of passing.
 */
function renderTemplate(template: string, vars: Record<string, string>): string {
  const value = (name: string) => {
    if (!(name in vars)) throw new Error(`template reads ${name}, not provided`);
    return vars[name]!;
  };
  const withIfs = template.replace(/%\{ if (\w+) != "" ~\}\n([\s\S]*?)%\{ endif ~\}\n/g, (_m, name: string, body: string) => (value(name) !== "" ? body : ""));
  if (/(?<!%)%\{/.test(withIfs)) throw new Error("unsupported template directive");
  return withIfs.replace(/(?<!\$)\$\{(\w+)\}/g, (_m, name: string) => value(name)).replaceAll("$${", "${");
}

function bashSyntaxErrors(script: string): string {
  const run = spawnSync("bash", ["-n"], { input: script, encoding: "utf8" });
  return run.status === 0 ? "" : run.stderr;
}

describe("worker user data", () => {
  const vars: Record<string, string> = {
    region: "us-east-1",
    env_parameter_name: "/llm-fleet/worker/env",
    db_secret_arn: "arn:aws:secretsmanager:us-east-1:123456789012:secret:rds!db-1",
    db_host: "db.example.internal",
    db_port: "5432",
    db_name: "llmfleet",
    redis_secret_arn: "arn:aws:secretsmanager:us-east-1:123456789012:secret:llm-fleet/redis-auth-token",
    redis_host: "master.redis.example.internal",
    redis_port: "6379",
    hf_token_secret: "arn:aws:secretsmanager:us-east-1:123456789012:secret:hf",
    artifact_s3_uri: "s3://bucket/worker.tar.gz",
    node_version: "24.22.3",
    vllm_version: "0.12.0",
    vllm_serve_args: "--tensor-parallel-size 1 --data-parallel-size 8",
    log_group: "/llm-fleet/workers",
    stop_timeout_sec: "150",
    asg_name: "llm-fleet-workers",
    hook_name: "llm-fleet-drain",
    launch_hook_name: "llm-fleet-model-ready",
  };

  for (const hf of ["with", "without"]) {
    it(`renders to valid bash, and so do the scripts it installs (${hf} a Hugging Face token)`, async () => {
      const template = await readFile(path.join(TERRAFORM, "templates", "user_data.sh.tftpl"), "utf8");
      const script = renderTemplate(template, { ...vars, hf_token_secret: hf === "with" ? vars.hf_token_secret! : "" });
      assert.equal(script.includes("export HF_TOKEN="), hf === "with");
      assert.equal(bashSyntaxErrors(script), "");
      const installed = [...script.matchAll(/<<'SCRIPT'\n([\s\S]*?)\nSCRIPT\n/g)].map((m) => m[1]!);
      assert.equal(installed.length, 5, "llm-fleet-exec, -vllm, -wait-vllm, -ready, -lifecycle");
      for (const body of installed) assert.equal(bashSyntaxErrors(body), "", body.split("\n", 3).join("\n"));
      assert.match(script, /TimeoutStopSec=150\n/);
    });
  }

  it("holds the launch until vLLM serves: the ready script completes the launch hook, and the worker starts after it", async () => {
    const template = await readFile(path.join(TERRAFORM, "templates", "user_data.sh.tftpl"), "utf8");
    const ready = (hook: string) => {
      const script = renderTemplate(template, { ...vars, launch_hook_name: hook });
      return /cat > \/usr\/local\/bin\/llm-fleet-ready <<'SCRIPT'\n([\s\S]*?)\nSCRIPT\n/.exec(script)?.[1] ?? "";
    };
    const body = ready("llm-fleet-model-ready");
    const health = body.indexOf("http://127.0.0.1:8000/health");
    const complete = body.indexOf("complete-lifecycle-action");
    assert.ok(health > 0 && complete > health, "completes the hook only after /health answers");
    assert.match(body, /hook="llm-fleet-model-ready"/);
    assert.match(body, /--lifecycle-action-result CONTINUE/);
    assert.match(ready(""), /hook=""\n/, "no hook: the script only waits for /health");
    const script = renderTemplate(template, vars);
    assert.match(script, /\[Unit\]\nDescription=LLM fleet worker[^\n]*\nAfter=[^\n]*llm-fleet-ready\.service/);
    assert.match(script, /systemctl enable --now [^\n]*llm-fleet-ready\.service/);
  });
});

const TF_ENV = { ...process.env, CHECKPOINT_DISABLE: "1", TF_IN_AUTOMATION: "1", TF_CLI_CONFIG_FILE: "/dev/null" };
const hasTerraform = spawnSync("terraform", ["version"], { env: TF_ENV }).status === 0;

function terraform(args: string[], cwd: string) {
  return spawnSync("terraform", [...args, "-no-color"], { cwd, env: TF_ENV, encoding: "utf8", timeout: 60_000 });
}

// Where a terraform binary exists, let it judge formatting and evaluate every variable validation. A module made
// of variables.tf alone plans without providers or credentials, so this needs no network.
describe("terraform CLI", { skip: hasTerraform ? false : "terraform not on PATH" }, () => {
  let dir = "";
  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "tf-vars-"));
    await writeFile(path.join(dir, "variables.tf"), await readFile(path.join(TERRAFORM, "variables.tf")));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it("terraform fmt finds nothing to change", () => {
    const run = terraform(["fmt", "-check", "-recursive", TERRAFORM], ROOT);
    assert.equal(run.status, 0, `unformatted: ${run.stdout}${run.stderr}`);
  });

  for (const example of ["examples/dev.tfvars", "examples/prod.tfvars"]) {
    it(`every validation accepts ${example}`, () => {
      const run = terraform(["plan", "-input=false", "-lock=false", `-var-file=${path.join(TERRAFORM, example)}`], dir);
      assert.equal(run.status, 0, run.stderr);
    });
  }

  it("every validation accepts the defaults, and rejects values that break them", () => {
    const base = ["plan", "-input=false", "-lock=false", "-var=worker_artifact_s3_uri=s3://bucket/worker.tar.gz"];
    const ok = terraform(base, dir);
    assert.equal(ok.status, 0, ok.stderr);
    const bad = terraform(
      [
        ...base,
        "-var=scale_down_threshold=200",
        "-var=lifecycle_hook_timeout_seconds=100",
        "-var=scale_up_period_seconds=30",
        "-var=scale_down_metric=in_flight",
        "-var=target_tracking_metric=published_math",
        "-var=ops_port=8000",
        '-var=ops_ingress_cidrs=["0.0.0.0/0"]',
        "-var=node_version=20.20.2",
      ],
      dir,
    );
    assert.notEqual(bad.status, 0);
    const messages = [
      /scale_down_threshold must/,
      /lifecycle_hook_timeout_seconds must exceed/,
      /scale_up_period_seconds must be a multiple of 60/,
      /scale_down_metric must be/,
      /target_tracking_metric must be "metric_math" or "published"/,
      /ops_port must be/,
      /ops_ingress_cidrs must be CIDRs/,
      /node_version must be a Node 22\.x\.y or 24\.x\.y release/,
    ];
    for (const message of messages) {
      assert.match(bad.stderr.replace(/\s+/g, " "), message);
    }
  });

  it("node_version accepts a 22.x or 24.x release, nothing else", () => {
    const plan = (version: string) =>
      terraform(["plan", "-input=false", "-lock=false", "-var=worker_artifact_s3_uri=s3://bucket/worker.tar.gz", `-var=node_version=${version}`], dir);
    for (const version of ["22.22.0", "24.0.0"]) assert.equal(plan(version).status, 0, version);
    for (const version of ["26.1.0", "24", "v24.22.3"]) {
      const run = plan(version);
      assert.notEqual(run.status, 0, version);
      assert.match(run.stderr.replace(/\s+/g, " "), /node_version must be a Node 22\.x\.y or 24\.x\.y release/, version);
    }
  });
});

describe("examples and docs", () => {
  for (const example of ["examples/dev.tfvars", "examples/prod.tfvars"]) {
    it(`${example} satisfies the cross-variable validations`, async () => {
      // Terraform checks these at plan time; without a binary, mirror the ones an edit is likeliest to break.
      const v = (await readVariableDefaults(TERRAFORM, example)) as Record<string, number>;
      assert.ok(v.min_size! <= v.max_size!, "min_size <= max_size");
      assert.ok(v.scale_down_threshold! < v.scale_up_threshold!, "scale_down_threshold < scale_up_threshold");
      assert.ok(v.lifecycle_hook_timeout_seconds! * 1000 >= v.drain_deadline_ms! + 60_000, "hook outlasts the drain");
      assert.ok(v.dlq_message_retention_seconds! > v.message_retention_seconds!, "DLQ keeps messages longer");
      assert.ok(v.vllm_data_parallel_size! * v.vllm_tensor_parallel_size! <= 8, "GPUs per instance");
      assert.ok(v.no_workers_alarm_threshold! <= v.max_size!, "no-workers threshold reachable");
    });
  }

  it("README keeps the simulator section another change fills in", async () => {
    const readme = await readFile(path.join(TERRAFORM, "README.md"), "utf8");
    assert.match(readme, /^## Simulating a change$/m);
    assert.ok(readme.includes('make simulate ARGS="--profile spike"'));
    assert.ok(readme.includes('make simulate ARGS="--compare examples/dev.tfvars,'));
  });
});
