/**
 * Settlement feeding the ledger index: each package is recorded as it is submitted and moves on,
 * and its receipts are written to the index (awaited) before the durable log forgets the package;
 * an index that fails holds nothing back. A fake node moves each package through its stages at
 * once and settles every envelope; the log and the index are the real LMDB ones.
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
import { DurableLog } from "../log.ts";
import { telemetryService } from "../services/telemetry.ts";
import { type DeviceNotice, Settlement } from "../settlement/index.ts";
import { LedgerIndex } from "./index.ts";
import type { LedgerSink, PackageSettled } from "./sink.ts";

const ACCUMULATED_IN: BlockDescriptor = { headerHash: new Uint8Array(32).fill(9), slot: 9 };

/** A node that takes every package and, a few ms apart, refines, reports and accumulates it, settling every envelope. */
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
    subscribeWorkPackageStatus: async (h: Uint8Array, cb: (s: WorkPackageStatus) => void) => {
      const list = statuses.get(Buffer.from(h).toString("hex")) ?? [];
      list.forEach((status, i) => {
        setTimeout(() => cb(status), 5 * (i + 1));
      });
      return () => {};
    },
  } as unknown as NodeApi;
}

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

const deviceId = (d: number) => `${d.toString(16).padStart(4, "0")}${"0".repeat(28)}` as DeviceId;

/** A settlement of five envelopes (two devices) into `sink`; resolves once the log is empty, with the order things happened in. */
async function settleFive(
  sink: (index: LedgerIndex, order: string[]) => Pick<LedgerSink, "packageSubmitted" | "packageStatus" | "packageSettled">,
  until: (log: DurableLog, order: string[]) => boolean = (log, order) => log.count === 0 && order.length > 0,
) {
  const dir = mkdtempSync(join(tmpdir(), "jamgate-settlement-sink-"));
  const log = new DurableLog(join(dir, "log"));
  const index = new LedgerIndex({ path: join(dir, "ledger"), services: [telemetryService(2)] });
  const order: string[] = [];
  const remove = log.remove.bind(log);
  log.remove = async (entries) => {
    order.push("log removes");
    return remove(entries);
  };
  const notices: DeviceNotice[] = [];
  const settlement = new Settlement({
    api: fakeNode(),
    params: tinyParams,
    log,
    signer: keyPairFromSeed(new Uint8Array(32).fill(1)),
    services: new Map([[2, telemetryService(2)]]),
    publicKeyOf: () => new Uint8Array(32),
    notify: (n) => void notices.push(n),
    batchDeadlineMs: 10,
    packing: "deadline",
    ledger: sink(index, order),
  });
  cleanup.push(async () => {
    await settlement.stop();
    await log.close();
    await index.close();
    rmSync(dir, { recursive: true, force: true });
  });
  index.deviceRegistered({ deviceId: deviceId(1), publicKey: new Uint8Array(32).fill(1), kind: "meter", serviceId: 2, registeredSlot: 3 });
  // Logged first, then handed over together: one package.
  const logged = await Promise.all(
    (
      [
        [1, 0],
        [2, 0],
        [1, 1],
        [2, 1],
        [1, 2],
      ] as const
    ).map(([d, seq]) => {
      const id = deviceId(d);
      return log.append({
        deviceId: id,
        seq,
        signingBytes: signingBytes({ version: 1, device: id, seq, kind: "meter.reading", timeMs: 1, body: new Uint8Array(10) }),
        signature: new Uint8Array(64),
        serviceId: 2,
        acceptedAtMs: 1,
      });
    }),
  );
  for (const entry of logged) settlement.add(entry);
  settlement.start();
  const deadline = Date.now() + 20_000;
  while (!until(log, order)) {
    if (Date.now() > deadline) throw new Error("not settled within 20 s");
    await new Promise((r) => setTimeout(r, 10));
  }
  return { index, order, notices, settlement, log };
}

describe("settlement into the ledger index", () => {
  it("writes each package's receipts to the index before the log forgets it, and follows its stages", async () => {
    const { index, order, notices } = await settleFive((index, order) => ({
      packageSubmitted: (p) => index.packageSubmitted(p),
      packageStatus: (h, s, at) => index.packageStatus(h, s, at),
      async packageSettled(p: PackageSettled) {
        order.push("index writes");
        await index.packageSettled(p);
        order.push("index written");
      },
    }));
    expect(order).toEqual(["index writes", "index written", "log removes"]);
    expect(notices.filter((n) => n.kind === "receipt")).toHaveLength(2);
    const entries = (await index.entries({}, { limit: 10 })).items;
    expect(entries.map((e) => [e.device, e.seqs, e.slot]).sort()).toEqual([
      [deviceId(1), [0, 1, 2], 9],
      [deviceId(2), [0, 1], 9],
    ]);
    const pkg = (await index.package(entries[0]!.packageHash!))!;
    expect(pkg).toMatchObject({
      status: "accumulated",
      kind: "envelopes",
      service: "telemetry",
      items: 5,
      core: 0,
      settled: 5,
      refused: 0,
      reportedSlot: 8,
      accumulatedSlot: 9,
    });
    expect(pkg.bytes).toBeGreaterThan(0);
    expect(pkg.refineMs).toEqual(expect.any(Number));
    expect(await index.device(deviceId(1))).toMatchObject({ settledHighestSeq: 2, envelopesSettled: 3, lastSettledSlot: 9, registeredSlot: 3 });
  });

  it("goes on without the index when it cannot write: receipts are told and the log is cleared", async () => {
    const { index, order, notices } = await settleFive((index, order) => ({
      packageSubmitted: (p) => index.packageSubmitted(p),
      packageStatus: (h, s, at) => index.packageStatus(h, s, at),
      packageSettled: async () => {
        order.push("index fails");
        throw new Error("disk full");
      },
    }));
    expect(order).toEqual(["index fails", "log removes"]);
    expect(notices.filter((n) => n.kind === "receipt")).toHaveLength(2);
    expect((await index.entries({}, { limit: 10 })).items).toEqual([]);
  });

  it("stops only once the settlement under way has written the index and the log (the gateway closes both next)", async () => {
    let release = (): void => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    const { order, settlement, log } = await settleFive(
      (index, order) => ({
        packageSubmitted: (p) => index.packageSubmitted(p),
        packageStatus: (h, s, at) => index.packageStatus(h, s, at),
        async packageSettled(p: PackageSettled) {
          order.push("index writes");
          await held;
          await index.packageSettled(p);
        },
      }),
      (_log, order) => order.includes("index writes"),
    );
    let stopped = false;
    const stopping = settlement.stop().then(() => {
      stopped = true;
    });
    await new Promise((r) => setTimeout(r, 200));
    expect(stopped).toBe(false);
    release();
    await stopping;
    expect(order).toEqual(["index writes", "log removes"]);
    expect(log.count).toBe(0);
  });
});
