/**
 * Scale-in cooperation: a REAL Worker over the SQS emulator, Postgres and the vLLM simulator, with the coordinator
 * talking to an in-process Auto Scaling group (our own two-call port, not an AWS client mock). The production port
 * is checked separately against a local HTTP server speaking the Auto Scaling Query API.
 */
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import { Producer } from "../producer/producer.ts";
import { startVllmSimulator, type RunningSimulator } from "../scripts/simulators/vllm/server.ts";
import { DEFAULT_FAULTS } from "../scripts/simulators/vllm/options.ts";
import { loadConfig } from "../shared/config.ts";
import { AutoScalingError, AwsAutoScaling } from "../worker/auto-scaling.ts";
import { chooseVolunteers, ScaleInCoordinator, type AutoScalingPort, type GroupInstance, type GroupView } from "../worker/scale-in.ts";
import { queueFixture, silentLog, stopEmulator, storeFixture, until, type QueueFixture, type StoreFixture } from "./support/env.ts";
import { testWorker } from "./support/worker.ts";

after(() => stopEmulator());

const SELF = "i-0000000000000000b";
const PEER = "i-0000000000000000a"; // sorts first: with one instance too many in one zone, SELF volunteers
const LAST = "i-0000000000000000c";
const zoneA = (id: string): GroupInstance => ({ id, availabilityZone: "us-east-1a" });

/** An Auto Scaling group in memory: the test sets desired / in-service; every call is recorded with the worker's state. */
class FakeGroup implements AutoScalingPort {
  desired = 2;
  inService: GroupInstance[] = [zoneA(PEER), zoneA(SELF)];
  describes = 0;
  failDescribes = 0;
  failProtects = 0;
  thrown = 0;
  readonly failedAt: number[] = [];
  readonly protections: { protect: boolean; held: number; intakePaused: boolean; succeeded: number; released: number }[] = [];
  worker?: { held: number; intakePaused: boolean; counts: { succeeded: number; released: number } };

  async describeGroup(): Promise<GroupView> {
    this.describes += 1;
    if (this.failDescribes > 0) return this.fail("describe");
    return { desired: this.desired, inService: [...this.inService] };
  }

  async setProtected(protect: boolean): Promise<void> {
    if (this.failProtects > 0) return this.fail("protect");
    const w = this.worker;
    this.protections.push({ protect, held: w?.held ?? 0, intakePaused: w?.intakePaused ?? false, succeeded: w?.counts.succeeded ?? 0, released: w?.counts.released ?? 0 });
  }

  /** Resolves after `n` more group reads: "the coordinator has looked again". */
  async checks(n: number): Promise<void> {
    const target = this.describes + n;
    await until(() => this.describes >= target, `${n} more group reads`);
  }

  private fail(what: "describe" | "protect"): never {
    if (what === "describe") this.failDescribes -= 1;
    else this.failProtects -= 1;
    this.thrown += 1;
    this.failedAt.push(Date.now());
    throw new AutoScalingError("AUTOSCALING_CALL_FAILED", `fake ${what}: Throttling: Rate exceeded`, true);
  }
}

interface Rig {
  q: QueueFixture;
  s: StoreFixture;
  sim: RunningSimulator;
  group: FakeGroup;
  coordinator: ScaleInCoordinator;
  w: ReturnType<typeof testWorker>;
  close(): Promise<void>;
}

/** Coordinator first (protection before any work, as worker/main.ts does), then the worker. */
async function rig(o: { stallMs?: number; concurrency?: number; group?: FakeGroup } = {}): Promise<Rig> {
  const q = await queueFixture();
  const s = await storeFixture();
  const faults = o.stallMs === undefined ? DEFAULT_FAULTS : { ...DEFAULT_FAULTS, stallRate: 1, stallMs: o.stallMs };
  const sim = await startVllmSimulator({ port: 0, timeScale: 0.05, faults });
  const group = o.group ?? new FakeGroup();
  let w: ReturnType<typeof testWorker> | undefined;
  const worker = {
    setIntakePaused: (paused: boolean) => w!.worker.setIntakePaused(paused),
    get intakePaused() { return w!.worker.intakePaused; },
    get held() { return w!.worker.held; },
    waitIdle: (signal: AbortSignal) => w!.worker.waitIdle(signal),
  };
  const coordinator = new ScaleInCoordinator({ port: group, worker, instanceId: SELF, checkIntervalMs: 100, log: silentLog });
  await coordinator.start();
  w = testWorker(q, s.store, sim.url, { concurrency: o.concurrency ?? 8 });
  group.worker = w.worker;
  return {
    q, s, sim, group, coordinator, w,
    close: async () => {
      await coordinator.stop();
      await w!.stop();
      await sim.close();
      await s.close();
    },
  };
}

async function submit(q: QueueFixture, n: number): Promise<string[]> {
  const jobs = Array.from({ length: n }, (_, i) => ({ tenant: "t", messages: [{ role: "user" as const, content: `q ${i}` }], params: { max_tokens: 8 } }));
  const res = await new Producer({ queue: q.queue, queueUrl: q.queueUrl }).submitMany(jobs);
  assert.equal(res.failed.length, 0);
  return res.ids;
}

async function succeededOnce(s: StoreFixture, ids: string[]): Promise<number> {
  const rows = await s.store.getMany(ids);
  const done = rows.filter((r) => r.status === "succeeded");
  for (const r of done) assert.equal(r.resultWrites, 1, `${r.id} result written once`);
  assert.ok(rows.every((r) => ["succeeded", "queued", "running"].includes(r.status)), "nothing failed or released as dead");
  return done.length;
}

test("config: scale-in is off without ASG_NAME, needs INSTANCE_ID with it, checks every 60 s by default", () => {
  assert.equal(loadConfig({}).scaleIn, undefined);
  assert.throws(() => loadConfig({ ASG_NAME: "fleet-workers" }), /INSTANCE_ID: required with ASG_NAME/);
  assert.throws(() => loadConfig({ ASG_NAME: "fleet-workers", INSTANCE_ID: "not-an-id" }), /INSTANCE_ID: must be an EC2 instance id/);
  assert.deepEqual(loadConfig({ ASG_NAME: "fleet-workers", INSTANCE_ID: "i-0123456789abcdef0" }).scaleIn, { groupName: "fleet-workers", instanceId: "i-0123456789abcdef0", checkIntervalMs: 60_000 });
  assert.equal(loadConfig({ ASG_NAME: "g", INSTANCE_ID: "i-01234567", SCALE_IN_CHECK_INTERVAL_MS: "5000" }).scaleIn?.checkIntervalMs, 5_000);
});

describe("chooseVolunteers", () => {
  const view = (desired: number, ...inService: [string, string][]): GroupView => ({ desired, inService: inService.map(([id, availabilityZone]) => ({ id, availabilityZone })) });

  test("no surplus → nobody; surplus → the highest ids of the fullest zones, the same for every reader", () => {
    assert.deepEqual([...chooseVolunteers(view(2, ["i-a", "z1"], ["i-b", "z1"]))], []);
    assert.deepEqual([...chooseVolunteers(view(3, ["i-a", "z1"], ["i-b", "z1"]))], [], "Pending instances make desired exceed in-service");
    assert.deepEqual([...chooseVolunteers(view(1, ["i-b", "z1"], ["i-a", "z1"]))], ["i-b"], "order of the listing does not matter");
    // Zone z1 has three, z2 one: taking two from z1 leaves the group balanced (the ASG's own termination order).
    assert.deepEqual([...chooseVolunteers(view(2, ["i-d", "z2"], ["i-a", "z1"], ["i-b", "z1"], ["i-c", "z1"]))].sort(), ["i-b", "i-c"]);
    // Equal zones: ties go to the greater zone name, so z2 first, then z1.
    assert.deepEqual([...chooseVolunteers(view(2, ["i-a", "z1"], ["i-b", "z1"], ["i-c", "z2"], ["i-d", "z2"]))].sort(), ["i-b", "i-d"]);
  });

  test("when one volunteer leaves the group, the others are still chosen (views before and after agree)", () => {
    const all: [string, string][] = [["i-1", "z1"], ["i-2", "z1"], ["i-3", "z2"], ["i-4", "z2"], ["i-5", "z3"]];
    const chosen = chooseVolunteers(view(2, ...all));
    assert.equal(chosen.size, 3);
    for (const gone of chosen) {
      const rest = chooseVolunteers(view(2, ...all.filter(([id]) => id !== gone)));
      assert.deepEqual([...rest].sort(), [...chosen].filter((id) => id !== gone).sort(), `after ${gone} left`);
    }
  });
});

describe("scale-in with a real worker", () => {
  test("no surplus, or a surplus another instance volunteers for → stays protected and keeps taking work", async () => {
    const r = await rig();
    try {
      assert.deepEqual(r.group.protections.map((p) => p.protect), [true], "protected at start");
      assert.equal(r.group.protections[0]!.succeeded, 0, "before any job ran");
      const first = await submit(r.q, 30);
      await until(async () => (await succeededOnce(r.s, first)) === 30, "30 jobs with no surplus");
      r.group.inService = [zoneA(PEER), zoneA(SELF), zoneA(LAST)]; // one too many: LAST volunteers, not us
      await r.group.checks(3);
      const second = await submit(r.q, 30);
      await until(async () => (await succeededOnce(r.s, second)) === 30, "30 more jobs with a surplus LAST takes");
      assert.equal(r.coordinator.phase, "working");
      assert.equal(r.w.worker.intakePaused, false);
      assert.deepEqual(r.group.protections.map((p) => p.protect), [true], "never unprotected");
      assert.equal(r.sim.engine.stats().requestsSubmitted, 60);
    } finally {
      await r.close();
    }
  });

  test("volunteer → intake pauses, held jobs finish exactly once, only then protection is lifted; scale-out again → back to work", async () => {
    const r = await rig({ stallMs: 1_500 });
    try {
      const ids = await submit(r.q, 40);
      await until(() => r.w.worker.held === 8, "the worker to fill its capacity");
      r.group.desired = 1;
      await until(() => r.w.worker.intakePaused, "intake to pause");
      await until(() => r.coordinator.phase === "released", "protection to be lifted", 30_000);
      const lifted = r.group.protections.at(-1)!;
      assert.equal(lifted.protect, false);
      assert.equal(lifted.held, 0, "nothing held when protection was lifted");
      assert.equal(lifted.intakePaused, true);
      assert.equal(lifted.released, 0, "no job handed back: every generation it started finished");
      const started = r.sim.engine.stats().requestsSubmitted;
      assert.ok(started >= 8 && started < 40, `intake stopped (${started} of 40 started)`);
      assert.equal(lifted.succeeded, started, "every started job finished before the lift");
      assert.equal(await succeededOnce(r.s, ids), started);
      // Released and idle: no new work while waiting for the ASG.
      await r.group.checks(3);
      assert.equal(r.sim.engine.stats().requestsSubmitted, started, "no job started after the lift");
      assert.equal(r.w.worker.held, 0);

      // The ASG has not acted yet and load returns: protect again, take the rest.
      r.group.desired = 2;
      await until(() => r.coordinator.phase === "working", "protection restored");
      assert.deepEqual(r.group.protections.map((p) => p.protect), [true, false, true]);
      assert.equal(r.w.worker.intakePaused, false);
      await until(async () => (await succeededOnce(r.s, ids)) === 40, "the remaining jobs", 30_000);
      assert.equal(r.w.worker.counts.released, 0);
      assert.equal(r.sim.engine.stats().requestsSubmitted, 40, "one provider call per job");
    } finally {
      await r.close();
    }
  });

  test("surplus vanishes mid-drain → intake resumes, protection kept, every job finishes exactly once", async () => {
    const r = await rig({ stallMs: 3_000 });
    try {
      const ids = await submit(r.q, 30);
      await until(() => r.w.worker.held === 8, "the worker to fill its capacity");
      r.group.desired = 1;
      await until(() => r.coordinator.phase === "draining", "volunteering");
      assert.equal(r.w.worker.intakePaused, true);
      assert.ok(r.w.worker.held > 0, "still busy when the surplus goes away");
      r.group.desired = 2;
      await until(() => r.coordinator.phase === "working", "intake to resume");
      assert.equal(r.w.worker.intakePaused, false);
      await until(async () => (await succeededOnce(r.s, ids)) === 30, "all jobs", 60_000);
      assert.deepEqual(r.group.protections.map((p) => p.protect), [true], "protection never lifted");
      assert.equal(r.w.worker.counts.released, 0);
    } finally {
      await r.close();
    }
  });

  test("Auto Scaling errors are logged and retried; the worker keeps working and scale-in still completes", async () => {
    const group = new FakeGroup();
    group.failProtects = 1; // the protection at start fails
    group.failDescribes = 3;
    const r = await rig({ stallMs: 500, group });
    try {
      assert.equal(r.coordinator.isProtected, undefined, "start did not throw although protection failed");
      const ids = await submit(r.q, 10);
      await until(() => r.coordinator.isProtected === true, "protection retried at a later check");
      await until(async () => (await succeededOnce(r.s, ids)) === 10, "jobs run through the errors");
      assert.ok(group.thrown >= 4, `errors were raised (${group.thrown})`);

      group.failProtects = 2; // lifting fails twice
      r.group.desired = 1;
      await until(() => r.coordinator.phase === "released", "protection lifted after the retries");
      assert.equal(group.failProtects, 0, "both failures were retried");
      const [first, second] = group.failedAt.slice(-2);
      assert.ok(second! - first! >= 90, `an idle volunteer retries at the interval, not at once (${second! - first!} ms)`);
      assert.deepEqual(group.protections.map((p) => p.protect), [true, false]);
      assert.equal(r.w.worker.status, "running");
    } finally {
      await r.close();
    }
  });

  test("stop() ends the checks at once, even mid-drain, and leaves the worker to its own drain", async () => {
    const r = await rig({ stallMs: 5_000 });
    try {
      await submit(r.q, 8);
      await until(() => r.w.worker.held === 8, "the worker to fill its capacity");
      r.group.desired = 1;
      await until(() => r.coordinator.phase === "draining", "volunteering");
      const t0 = Date.now();
      await r.coordinator.stop();
      assert.ok(Date.now() - t0 < 500, "stop does not wait for the drain");
      assert.equal(r.coordinator.phase, "stopped");
      const reads = r.group.describes;
      await r.w.stop();
      assert.equal(r.group.describes, reads, "no check after stop");
      assert.deepEqual(r.group.protections.map((p) => p.protect), [true]);
    } finally {
      await r.close();
    }
  });
});

describe("AwsAutoScaling against a local Auto Scaling Query API", () => {
  test("describe keeps InService instances sorted; protection is set on this instance only; errors are typed", async () => {
    const requests: URLSearchParams[] = [];
    let reply: { status: number; body: string } = { status: 200, body: "" };
    const server = createServer(async (req: IncomingMessage, res) => {
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      requests.push(new URLSearchParams(Buffer.concat(chunks).toString("utf8")));
      res.writeHead(reply.status, { "content-type": "text/xml" }).end(reply.body);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = new AwsAutoScaling({
      region: "us-east-1",
      groupName: "fleet-workers",
      instanceId: SELF,
      endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      credentials: { accessKeyId: "t", secretAccessKey: "t" },
    });
    const ns = 'xmlns="http://autoscaling.amazonaws.com/doc/2011-01-01/"';
    const instance = (id: string, zone: string, state: string) =>
      `<member><InstanceId>${id}</InstanceId><AvailabilityZone>${zone}</AvailabilityZone><LifecycleState>${state}</LifecycleState><HealthStatus>Healthy</HealthStatus><ProtectedFromScaleIn>true</ProtectedFromScaleIn></member>`;
    const error = (code: string) => `<ErrorResponse ${ns}><Error><Type>Sender</Type><Code>${code}</Code><Message>nope</Message></Error><RequestId>r</RequestId></ErrorResponse>`;
    try {
      reply = {
        status: 200,
        body: `<DescribeAutoScalingGroupsResponse ${ns}><DescribeAutoScalingGroupsResult><AutoScalingGroups><member>
          <AutoScalingGroupName>fleet-workers</AutoScalingGroupName><DesiredCapacity>2</DesiredCapacity><MinSize>1</MinSize><MaxSize>8</MaxSize>
          <Instances>${instance(SELF, "us-east-1b", "InService")}${instance("i-0000000000000000c", "us-east-1a", "Terminating:Wait")}${instance(PEER, "us-east-1a", "InService")}${instance("i-0000000000000000d", "us-east-1c", "Pending")}</Instances>
        </member></AutoScalingGroups></DescribeAutoScalingGroupsResult><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></DescribeAutoScalingGroupsResponse>`,
      };
      assert.deepEqual(await port.describeGroup(), { desired: 2, inService: [{ id: PEER, availabilityZone: "us-east-1a" }, { id: SELF, availabilityZone: "us-east-1b" }] });
      assert.equal(requests.at(-1)!.get("Action"), "DescribeAutoScalingGroups");
      assert.equal(requests.at(-1)!.get("AutoScalingGroupNames.member.1"), "fleet-workers");

      reply = { status: 200, body: `<SetInstanceProtectionResponse ${ns}><SetInstanceProtectionResult/><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></SetInstanceProtectionResponse>` };
      await port.setProtected(false);
      const set = requests.at(-1)!;
      assert.equal(set.get("Action"), "SetInstanceProtection");
      assert.equal(set.get("AutoScalingGroupName"), "fleet-workers");
      assert.equal(set.get("InstanceIds.member.1"), SELF);
      assert.equal(set.get("InstanceIds.member.2"), null, "this instance only");
      assert.equal(set.get("ProtectedFromScaleIn"), "false");

      reply = { status: 200, body: `<DescribeAutoScalingGroupsResponse ${ns}><DescribeAutoScalingGroupsResult><AutoScalingGroups/></DescribeAutoScalingGroupsResult></DescribeAutoScalingGroupsResponse>` };
      await assert.rejects(port.describeGroup(), (err: unknown) => err instanceof AutoScalingError && err.code === "AUTOSCALING_GROUP_NOT_FOUND" && !err.retryable);

      reply = { status: 403, body: error("AccessDenied") };
      await assert.rejects(port.describeGroup(), (err: unknown) => err instanceof AutoScalingError && err.code === "AUTOSCALING_CALL_FAILED" && !err.retryable && /AccessDenied/.test(err.message));
    } finally {
      port.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
