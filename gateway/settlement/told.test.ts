/**
 * The log forgets a settled package only once the broker has published what its devices were
 * told: a gateway killed between the hand-over and the publish finds the package in its log at its
 * next start and tells it again. First ToldPackages on its own (the bound, a failed publish, a
 * closed log), then a Settlement on a fake node and the real LMDB log whose broker never
 * publishes, followed by a restart on the same log with one that does.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { type DeviceId, signingBytes } from "../../devices/envelope.ts";
import type { BlockDescriptor, NodeApi, WorkPackageStatus } from "../../node/api.ts";
import { tinyParams } from "../../node/chain/params.ts";
import { keyPairFromSeed } from "../../node/crypto/ed25519.ts";
import { hash } from "../../node/crypto/hash.ts";
import { encodeOutcome, OutcomeBuilder } from "../../services/common/outcome.ts";
import { DurableLog, type LogEntry } from "../log.ts";
import { telemetryService } from "../services/telemetry.ts";
import { type DeviceNotice, Settlement } from "./index.ts";
import { settlementLimits } from "./limits.ts";
import { ToldPackages } from "./told.ts";

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

/** A promise settled from outside. */
function deferred<T = void>() {
  let resolve!: (value: T) => void;
  let reject!: (error: Error) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

async function until(check: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Lets every callback queued now run (the promise chains of a publish that settled). */
const settle = () => new Promise((r) => setImmediate(r));

const entry = (deviceId: string, seq: number): LogEntry => ({
  deviceId,
  seq,
  signingBytes: new Uint8Array(100),
  signature: new Uint8Array(64),
  serviceId: 2,
  order: seq,
  acceptedAtMs: 0,
  state: "submitted",
  packageHash: `p-${deviceId}`,
  attempts: 0,
});

describe("ToldPackages", () => {
  function told(packagesMax = 4) {
    const forgotten: string[] = [];
    const lines: string[] = [];
    const packages = new ToldPackages({
      forget: async (entries) => void forgotten.push(...entries.map((e) => `${e.deviceId}/${e.seq}`)),
      logger: { warn: (_o, m) => void lines.push(m) },
      packagesMax,
    });
    return { packages, forgotten, lines };
  }

  it("forgets a package once every notice is published, without its envelopes' bytes", async () => {
    const published = deferred<Error | null>();
    const removed: LogEntry[] = [];
    const packages = new ToldPackages({ forget: async (entries) => void removed.push(...entries) });
    packages.add("a", [entry("a", 0), entry("a", 1)], published.promise);
    packages.add("b", [entry("b", 0)], Promise.resolve(null));
    await settle();
    expect(removed.map((e) => `${e.deviceId}/${e.seq}`)).toEqual(["b/0"]);
    expect(packages.size).toBe(1);
    published.resolve(null);
    await settle();
    expect(removed.map((e) => [e.deviceId, e.seq, e.packageHash, e.attempts, e.signingBytes.length])).toEqual([
      ["b", 0, "p-b", 0, 0],
      ["a", 0, "p-a", 0, 0],
      ["a", 1, "p-a", 0, 0],
    ]);
    expect(packages.size).toBe(0);
  });

  it("leaves a package whose notice could not be published in the log, and says so", async () => {
    const { packages, forgotten, lines } = told();
    packages.add("a", [entry("a", 0)], Promise.resolve(new Error("connection closed")));
    await settle();
    expect(forgotten).toEqual([]);
    expect(packages.size).toBe(0);
    expect(lines).toEqual(["a receipt or error could not be published: the package stays in the log and is told again at the next start"]);
  });

  it("holds at most packagesMax packages: past it the oldest is forgotten at once", async () => {
    const { packages, forgotten, lines } = told(2);
    const never = new Promise<Error | null>(() => {});
    for (const id of ["a", "b", "c"]) packages.add(id, [entry(id, 0)], never);
    await settle();
    expect(forgotten).toEqual(["a/0"]);
    expect(packages.size).toBe(2);
    expect(lines).toHaveLength(1);
    expect(settlementLimits.untoldPackagesMax).toBe(1_024);
  });

  it("removes nothing once closed (the log may be closed): what waits is told again at the next start", async () => {
    const { packages, forgotten } = told();
    const published = deferred<Error | null>();
    packages.add("a", [entry("a", 0)], published.promise);
    packages.close();
    packages.add("b", [entry("b", 0)], Promise.resolve(null));
    published.resolve(null);
    await settle();
    expect(forgotten).toEqual([]);
  });
});

const ACCUMULATED_IN: BlockDescriptor = { headerHash: new Uint8Array(32).fill(9), slot: 9 };

/** A node that takes every package and, a few ms apart, refines, reports and accumulates it, settling every envelope; it remembers each package's status, as a node does across a gateway's restart. */
function fakeNode(): NodeApi {
  const statuses = new Map<string, WorkPackageStatus[]>();
  const report = { core: 1, reportHash: new Uint8Array(32), reportedIn: { headerHash: new Uint8Array(32).fill(8), slot: 8 } };
  return {
    parameters: async () => ({ slot_period_sec: 0.1 }),
    bestBlock: async () => ACCUMULATED_IN,
    stateRoot: async () => new Uint8Array(32),
    serviceValue: async () => encodeOutcome(new OutcomeBuilder(new Uint8Array(32)).finish(9)),
    subscribeBestBlock: async () => () => {},
    submitWorkPackage: async (core: number, bytes: Uint8Array) => {
      const h = hash(bytes);
      statuses.set(Buffer.from(h).toString("hex"), [
        { kind: "submitted", core },
        { kind: "refined", core, reportHash: report.reportHash },
        { kind: "reported", ...report },
        { kind: "available", ...report, availableIn: report.reportedIn },
        { kind: "accumulated", ...report, availableIn: report.reportedIn, accumulatedIn: ACCUMULATED_IN },
      ]);
      return h;
    },
    workPackageStatus: async (h: Uint8Array) => statuses.get(Buffer.from(h).toString("hex"))?.at(-1) ?? null,
    subscribeWorkPackageStatus: async (h: Uint8Array, cb: (s: WorkPackageStatus) => void) => {
      const list = statuses.get(Buffer.from(h).toString("hex")) ?? [];
      list.forEach((status, i) => {
        setTimeout(() => cb(status), 5 * (i + 1));
      });
      return () => {};
    },
  } as unknown as NodeApi;
}

const deviceId = (d: number) => `${d.toString(16).padStart(4, "0")}${"0".repeat(28)}` as DeviceId;

describe("settlement and the publish of what devices are told", () => {
  /**
   * A settlement of the telemetry service on `api` and `log`, whose broker publishes each notice when
   * `publish` says; `settled` counts the packages whose receipts the ledger index has (what settlement
   * writes after handing the receipts over, and before the log may forget them).
   */
  function settlementOn(api: NodeApi, log: DurableLog, publish: (notice: DeviceNotice) => Promise<void>) {
    const notices: DeviceNotice[] = [];
    const indexed = { count: 0 };
    const settlement = new Settlement({
      api,
      params: tinyParams,
      log,
      signer: keyPairFromSeed(new Uint8Array(32).fill(1)),
      services: new Map([[2, telemetryService(2)]]),
      publicKeyOf: () => new Uint8Array(32),
      notify: (n) => {
        notices.push(n);
        return publish(n);
      },
      batchDeadlineMs: 10,
      packing: "deadline",
      ledger: {
        packageSubmitted: () => {},
        packageStatus: () => {},
        packageSettled: async () => void indexed.count++,
      },
    });
    return { settlement, notices, indexed };
  }

  /** `log` with its removals counted. */
  function countRemovals(log: DurableLog) {
    const removals = { count: 0 };
    const remove = log.remove.bind(log);
    log.remove = async (entries) => {
      removals.count++;
      return remove(entries);
    };
    return removals;
  }

  it("keeps a settled package in the log until its receipts are published, and a restart that finds it there tells them again", async () => {
    const dir = mkdtempSync(join(tmpdir(), "jamgate-told-"));
    const log = new DurableLog(join(dir, "log"));
    const api = fakeNode();
    cleanup.push(async () => {
      await log.close();
      rmSync(dir, { recursive: true, force: true });
    });
    // Two devices, five envelopes: one package.
    const seqs = [
      [1, 0],
      [2, 0],
      [1, 1],
      [2, 1],
      [1, 2],
    ] as const;
    const logged = await Promise.all(
      seqs.map(([d, seq]) =>
        log.append({
          deviceId: deviceId(d),
          seq,
          signingBytes: signingBytes({ version: 1, device: deviceId(d), seq, kind: "meter.reading", timeMs: 1, body: new Uint8Array(10) }),
          signature: new Uint8Array(64),
          serviceId: 2,
          acceptedAtMs: 1,
        }),
      ),
    );

    // The broker takes the receipts and never publishes them: the process is killed before it does.
    const unpublished: { reject: (error: Error) => void }[] = [];
    const first = settlementOn(api, log, () => {
      const d = deferred();
      unpublished.push(d);
      return d.promise;
    });
    const removals = countRemovals(log);
    for (const e of logged) first.settlement.add(e);
    first.settlement.start();
    await until(() => first.indexed.count === 1, "the package settled, its receipts handed over and indexed");
    expect(first.notices.map((n) => n.kind === "receipt" && [n.deviceId, n.seqs]).sort()).toEqual([
      [deviceId(1), [0, 1, 2]],
      [deviceId(2), [0, 1]],
    ]);
    // Settled on the ledger and handed to the broker, and still in the log: once the index is
    // written, what settlement does next has run before a setImmediate callback does.
    await settle();
    expect(removals.count).toBe(0);
    expect(log.count).toBe(5);
    expect(first.settlement.untoldCount).toBe(1);
    expect([...log.all()].every((e) => e.state === "submitted")).toBe(true);
    // Killed: it packs and follows nothing more (stop() would wait for the publishes; a kill does not).
    const stopping = first.settlement.stop();

    // The restart on the same log: recovery finds the package accumulated and tells it again.
    const second = settlementOn(api, log, async () => {});
    await second.settlement.recover();
    second.settlement.start();
    cleanup.push(() => second.settlement.stop());
    await until(() => log.count === 0, "the log forgets the package once the receipts are published");
    expect(second.notices.map((n) => n.kind === "receipt" && [n.deviceId, n.seqs]).sort()).toEqual([
      [deviceId(1), [0, 1, 2]],
      [deviceId(2), [0, 1]],
    ]);
    expect(second.settlement.untoldCount).toBe(0);
    // The first broker gives up on its publishes (its process is gone): nothing more is removed or told.
    for (const d of unpublished) d.reject(new Error("the gateway is stopping"));
    await stopping;
    expect(first.notices).toHaveLength(2);
  });

  it("forgets the package once the broker publishes its receipts, and stop() waits for that", async () => {
    const dir = mkdtempSync(join(tmpdir(), "jamgate-told-"));
    const log = new DurableLog(join(dir, "log"));
    cleanup.push(async () => {
      await log.close();
      rmSync(dir, { recursive: true, force: true });
    });
    const logged = await Promise.all(
      [0, 1, 2].map((seq) =>
        log.append({
          deviceId: deviceId(3),
          seq,
          signingBytes: signingBytes({ version: 1, device: deviceId(3), seq, kind: "meter.reading", timeMs: 1, body: new Uint8Array(10) }),
          signature: new Uint8Array(64),
          serviceId: 2,
          acceptedAtMs: 1,
        }),
      ),
    );
    const publish = deferred();
    const removals = countRemovals(log);
    const { settlement, indexed } = settlementOn(fakeNode(), log, () => publish.promise);
    for (const e of logged) settlement.add(e);
    settlement.start();
    await until(() => indexed.count === 1, "the receipt handed over and indexed");
    await settle();
    expect(removals.count).toBe(0);
    let stopped = false;
    const stopping = settlement.stop().then(() => {
      stopped = true;
    });
    await new Promise((r) => setTimeout(r, 100));
    expect(stopped).toBe(false);
    expect(log.count).toBe(3);
    publish.resolve();
    await stopping;
    expect(log.count).toBe(0);
  });
});
