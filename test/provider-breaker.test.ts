/**
 * The per-provider breaker, driven by an injected clock: every transition, the single half-open probe, and stale
 * verdicts from calls admitted before a transition.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { ProviderBreaker, type BreakerState, type BreakerTicket } from "../shared/providers/provider-breaker.ts";
import { FakeClock } from "./support/fake-clock.ts";

function breaker(o: { failureThreshold?: number; coolDownMs?: number } = {}) {
  const clock = new FakeClock();
  const changes: BreakerState[] = [];
  const b = new ProviderBreaker({ failureThreshold: o.failureThreshold ?? 3, coolDownMs: o.coolDownMs ?? 60_000, clock, onChange: (s) => changes.push(s) });
  return { b, clock, changes };
}

function admitted(b: ProviderBreaker): BreakerTicket {
  const t = b.admit();
  assert.ok(t, "expected the breaker to admit a call");
  return t;
}

describe("ProviderBreaker", () => {
  test("opens after the threshold of consecutive failures; a success in between resets the count", () => {
    const { b, changes } = breaker();
    b.failure(admitted(b));
    b.failure(admitted(b));
    b.success(admitted(b));
    b.failure(admitted(b));
    b.failure(admitted(b));
    assert.equal(b.state, "closed");
    b.failure(admitted(b));
    assert.equal(b.state, "open");
    assert.equal(b.admit(), undefined);
    assert.equal(b.admitting, false);
    assert.deepEqual(changes, ["open"]);
  });

  test("half-open after the cool-down admits exactly one probe; its success closes", async () => {
    const { b, clock, changes } = breaker({ failureThreshold: 1, coolDownMs: 60_000 });
    b.failure(admitted(b));
    await clock.advance(59_999);
    assert.equal(b.state, "open");
    assert.equal(b.admitsInMs, 1);
    await clock.advance(1);
    assert.equal(b.state, "half-open");
    const probe = admitted(b);
    assert.equal(probe.probe, true);
    assert.equal(b.admit(), undefined, "a second call while the probe is out");
    assert.equal(b.admitsInMs, Infinity);
    b.success(probe);
    assert.equal(b.state, "closed");
    assert.deepEqual(changes, ["open", "closed"]);
  });

  test("a failed probe opens again for a full cool-down", async () => {
    const { b, clock } = breaker({ failureThreshold: 1, coolDownMs: 1_000 });
    b.failure(admitted(b));
    await clock.advance(1_000);
    b.failure(admitted(b));
    assert.equal(b.state, "open");
    await clock.advance(999);
    assert.equal(b.state, "open");
    await clock.advance(1);
    assert.equal(b.state, "half-open");
  });

  test("a probe that says nothing about the provider (released) frees the probe for the next call", async () => {
    const { b, clock, changes } = breaker({ failureThreshold: 1, coolDownMs: 1_000 });
    b.failure(admitted(b));
    await clock.advance(1_000);
    b.release(admitted(b));
    assert.equal(b.state, "half-open");
    assert.equal(admitted(b).probe, true);
    assert.deepEqual(changes, ["open", "half-open"]);
  });

  test("verdicts of calls admitted before a transition are ignored", async () => {
    const { b, clock } = breaker({ failureThreshold: 2, coolDownMs: 1_000 });
    const early = [admitted(b), admitted(b), admitted(b), admitted(b)];
    b.failure(early[0]!);
    b.failure(early[1]!);
    assert.equal(b.state, "open");
    b.success(early[2]!);
    assert.equal(b.state, "open", "a late success from before the opening does not close it");
    await clock.advance(1_000);
    b.success(admitted(b));
    assert.equal(b.state, "closed");
    b.failure(early[3]!);
    b.failure(early[3]!);
    assert.equal(b.state, "closed", "late failures from before the close do not count");
    assert.equal(b.consecutiveFailures, 0);
  });
});
