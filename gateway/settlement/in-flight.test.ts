/**
 * The in-flight tracker and status following on their own: the bounds on packages in flight and
 * unreported, a package reported once however many statuses say so, and following a status
 * through refused subscriptions (on vitest's fake clock) to one final status.
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import type { NodeApi, WorkPackageStatus } from "../../node/api.ts";
import { CoreChoice } from "./cores.ts";
import { followStatus, type InFlight, InFlightTracker } from "./in-flight.ts";
import { retryDelayMs, settlementLimits } from "./limits.ts";

afterEach(() => {
  vi.useRealTimers();
});

let made = 0;
function flight(core: number | null): InFlight {
  made++;
  return { hash: new Uint8Array(32).fill(made), serviceId: 1, entries: [], reported: false, packedAt: null, core };
}

const BLOCK = { headerHash: new Uint8Array(32), slot: 1 };
const REFINED: WorkPackageStatus = { kind: "refined", core: 0, reportHash: new Uint8Array(32) };
const ACCUMULATED: WorkPackageStatus = {
  kind: "accumulated",
  core: 0,
  reportHash: new Uint8Array(32),
  reportedIn: BLOCK,
  availableIn: BLOCK,
  accumulatedIn: BLOCK,
};

describe("InFlightTracker", () => {
  it("lets packages go while both bounds have room: unreported ones, then all in flight, reported or not", () => {
    const tracker = new InFlightTracker();
    const flights: InFlight[] = [];
    for (let i = 0; i < settlementLimits.packagesUnreportedMax; i++) {
      expect(tracker.roomFor(1)).toBe(true);
      flights.push(flight(i % 2));
      tracker.add(flights.at(-1)!);
    }
    expect(tracker.roomFor(1)).toBe(false); // the unreported bound
    expect([tracker.unreportedOn(0), tracker.unreportedOn(1)]).toEqual([2, 2]);
    for (const f of flights) expect(tracker.markReported(f)).toBe(true);
    expect(tracker.markReported(flights[0]!)).toBe(false); // once only
    expect([tracker.unreportedOn(0), tracker.unreportedOn(1)]).toEqual([0, 0]);
    // Reported packages still count in flight, up to packagesInFlightMax.
    while (tracker.size < settlementLimits.packagesInFlightMax) {
      expect(tracker.roomFor(1)).toBe(true);
      flights.push(flight(0));
      tracker.add(flights.at(-1)!);
      tracker.markReported(flights.at(-1)!);
    }
    expect(tracker.roomFor(1)).toBe(false); // the in-flight bound, with none unreported
    expect(tracker.remove(flights[0]!)).toBe(true);
    expect(tracker.remove(flights[0]!)).toBe(false);
    expect(tracker.size).toBe(settlementLimits.packagesInFlightMax - 1);
    expect(tracker.roomFor(1)).toBe(true);
  });

  it("counts a package without a known core (recovered) as unreported, on no core, and frees it when it is removed unreported", () => {
    const tracker = new InFlightTracker();
    const recovered = flight(null);
    tracker.add(recovered);
    const onCore = flight(0);
    tracker.add(onCore);
    expect(tracker.unreportedOn(0)).toBe(1);
    for (let i = 2; i < settlementLimits.packagesUnreportedMax; i++) tracker.add(flight(1));
    expect(tracker.roomFor(1)).toBe(false);
    expect(tracker.remove(recovered)).toBe(true); // failed before a report: no longer holds room
    expect(tracker.roomFor(1)).toBe(true);
    expect(tracker.markReported(recovered)).toBe(false); // a status after it landed changes nothing
    expect(tracker.remove(onCore)).toBe(true);
    expect(tracker.unreportedOn(0)).toBe(0);
  });

  it("counts a core's refined packages until they are reported, each once", () => {
    const tracker = new InFlightTracker();
    const [a, b] = [flight(1), flight(1)];
    tracker.add(a);
    tracker.add(b);
    expect(tracker.refinedOn(1)).toBe(0);
    expect(tracker.markRefined(a)).toBe(true);
    expect(tracker.markRefined(a)).toBe(false);
    expect([tracker.unreportedOn(1), tracker.refinedOn(1)]).toEqual([2, 1]);
    tracker.markReported(a);
    expect([tracker.unreportedOn(1), tracker.refinedOn(1)]).toEqual([1, 0]);
    tracker.markReported(b); // reported without a refined status seen (a subscription that began late)
    expect(tracker.markRefined(b)).toBe(false);
    expect([tracker.unreportedOn(1), tracker.refinedOn(1)]).toEqual([0, 0]);
  });
});

describe("CoreChoice", () => {
  it("packs for every core holding none of the gateway's unreported packages, else for the least busy one", () => {
    const unreported = [0, 0, 0];
    const cores = new CoreChoice(
      3,
      (c) => unreported[c]!,
      () => 0,
    );
    expect(cores.toPack()).toEqual([0, 1, 2]);
    unreported[0] = 1;
    expect(cores.toPack()).toEqual([1, 2]);
    unreported.splice(0, 3, 2, 1, 3);
    expect(cores.toPack()).toEqual([1]);
  });

  it("packs for no core when every core it may pack for holds a refined package waiting for a block; else for the least busy", () => {
    const unreported = [1, 2];
    const refined = [1, 0];
    let allowed: number[] | null = null;
    const cores = new CoreChoice(
      2,
      (c) => unreported[c]!,
      (c) => refined[c]!,
      () => allowed,
    );
    expect(cores.toPack()).toEqual([0]); // core 1's packages still refine: the least busy, as before
    refined[1] = 1;
    expect(cores.toPack()).toEqual([]); // both queues wait for a block
    allowed = [1];
    expect(cores.toPack()).toEqual([]);
    refined[1] = 0;
    expect(cores.toPack()).toEqual([1]);
    unreported[1] = 0;
    expect(cores.toPack()).toEqual([1]);
  });

  it("packs behind a refined package on a core it shares in turns: waiting would cost it a turn of several blocks", () => {
    const cores = new CoreChoice(
      2,
      () => 1,
      () => 1,
      (slot) => (slot === null || slot % 3 === 1 ? [1] : []),
    );
    expect(cores.toPack(10)).toEqual([1]); // its turn; the next slot is another gateway's
    const alone = new CoreChoice(
      2,
      () => 1,
      () => 1,
      () => [1],
    );
    expect(alone.toPack(10)).toEqual([]); // the core every slot: wait a block
  });

  it("goes round the cores for ties", () => {
    const unreported = [1, 1, 1];
    const cores = new CoreChoice(
      3,
      (c) => unreported[c]!,
      () => 0,
    );
    expect([cores.leastBusy(), cores.leastBusy(), cores.leastBusy(), cores.leastBusy()]).toEqual([0, 1, 2, 0]);
    unreported[2] = 0;
    expect([cores.leastBusy(), cores.leastBusy()]).toEqual([2, 2]);
  });

  it("packs only for the cores it is allowed (a cluster gateway's share), asked at each choice; null or none that exist: every core", () => {
    const unreported = [0, 0, 0, 0];
    let allowed: number[] | null = [1, 3];
    const cores = new CoreChoice(
      4,
      (c) => unreported[c]!,
      () => 0,
      () => allowed,
    );
    expect(cores.toPack()).toEqual([1, 3]);
    unreported[1] = 1;
    expect(cores.toPack()).toEqual([3]);
    unreported[3] = 2;
    // Both of its cores busy: the least busy of its own, never a free core of another gateway's.
    expect(cores.toPack()).toEqual([1]);
    unreported.splice(0, 4, 0, 1, 0, 1);
    expect([cores.leastBusy(), cores.leastBusy(), cores.leastBusy()]).toEqual([3, 1, 3]); // on from the last choice (1), round its own
    allowed = [2];
    expect(cores.toPack()).toEqual([2]);
    expect(cores.leastBusy()).toBe(2);
    for (const none of [null, [7, -1]]) {
      allowed = none;
      expect(cores.toPack()).toEqual([0, 2]);
    }
  });

  it("packs for no core in a slot that is another gateway's turn on the core it shares", () => {
    const asked: (number | null)[] = [];
    const cores = new CoreChoice(
      2,
      () => 0,
      () => 0,
      (slot) => (asked.push(slot), slot === null || slot % 3 === 1 ? [1] : []),
    );
    expect([cores.mayPack(9), cores.toPack(9), cores.leastBusy(9)]).toEqual([false, [], null]);
    expect([cores.mayPack(10), cores.toPack(10), cores.leastBusy(10)]).toEqual([true, [1], 1]);
    expect([cores.mayPack(null), cores.toPack()]).toEqual([true, [1]]);
    expect(asked).toContain(9);
  });
});

/** A node's status subscriptions: refuses the first `refuse`; each accepted one gets the current status at once. */
function statusNode(refuse: number) {
  let refused = 0;
  const subscribers: ((s: WorkPackageStatus) => void)[] = [];
  const subscribedAt: number[] = [];
  let unsubscribed = 0;
  let current: WorkPackageStatus = { kind: "submitted", core: 0 };
  const api = {
    subscribeWorkPackageStatus: async (_hash: Uint8Array, cb: (s: WorkPackageStatus) => void) => {
      subscribedAt.push(performance.now());
      if (refused < refuse) {
        refused++;
        throw new Error("more than 4096 status subscriptions");
      }
      subscribers.push(cb);
      cb(current);
      return () => {
        unsubscribed++;
      };
    },
  } as unknown as NodeApi;
  const emit = (status: WorkPackageStatus) => {
    current = status;
    for (const cb of subscribers) cb(status);
  };
  return { api, emit, subscribedAt, unsubscribed: () => unsubscribed };
}

describe("followStatus", () => {
  it("subscribes again after a refusal, with the retry delay doubling, and tells the final status once", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "performance"] });
    const startedAt = performance.now();
    const node = statusNode(2);
    const statuses: string[] = [];
    const finals: WorkPackageStatus[] = [];
    const f = flight(0);
    followStatus(node.api, f, { status: (s) => statuses.push(s.kind), final: (s) => finals.push(s), stopped: () => false });
    await vi.advanceTimersByTimeAsync(retryDelayMs(0) + retryDelayMs(1));
    expect(node.subscribedAt.map((t) => t - startedAt)).toEqual([0, retryDelayMs(0), retryDelayMs(0) + retryDelayMs(1)]);
    node.emit(REFINED);
    node.emit(ACCUMULATED);
    node.emit(ACCUMULATED); // the node may say it again: settled once
    expect(statuses).toEqual(["submitted", "refined", "accumulated", "accumulated"]);
    expect(finals).toEqual([ACCUMULATED]);
  });

  it("stops following when abandoned or stopped, and unsubscribes a subscription that comes after the final status", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "performance"] });
    // Stopped: a refused subscription is not tried again.
    const refusing = statusNode(1);
    followStatus(refusing.api, flight(0), { status: () => {}, final: () => {}, stopped: () => true });
    await vi.advanceTimersByTimeAsync(10 * retryDelayMs(0));
    expect(refusing.subscribedAt).toHaveLength(1);
    // Abandoned (a refused submit): unsubscribed, and nothing more is told.
    const node = statusNode(0);
    const finals: WorkPackageStatus[] = [];
    const abandon = followStatus(node.api, flight(0), { status: () => {}, final: (s) => finals.push(s), stopped: () => false });
    await vi.advanceTimersByTimeAsync(0);
    abandon();
    expect(node.unsubscribed()).toBe(1);
    node.emit(ACCUMULATED);
    expect(finals).toEqual([]);
    // Final with the first status, before the subscription's promise resolved: unsubscribed as it resolves.
    const done = statusNode(0);
    done.emit(ACCUMULATED);
    const told: WorkPackageStatus[] = [];
    followStatus(done.api, flight(0), { status: () => {}, final: (s) => told.push(s), stopped: () => false });
    await vi.advanceTimersByTimeAsync(0);
    expect(told).toEqual([ACCUMULATED]);
    expect(done.unsubscribed()).toBe(1);
  });
});
