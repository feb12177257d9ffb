/**
 * The durable log on its own (LMDB in a temp dir): the record codec, what survives a reopen,
 * how many bytes a state change writes, and the conversion of a version 1 data dir.
 */
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import fc from "fast-check";
import { open } from "lmdb";
import { afterEach, describe, expect, it } from "vitest";
import { decodeEnvelope, encodeBody, encodeEnvelope, signEnvelope, signingBytes } from "../devices/envelope.ts";
import { type DeviceKey, generateDeviceKey } from "../devices/keys.ts";
import { tempDir } from "../node/testing/fixtures.ts";
import { decodeLogRecord, DurableLog, encodeLogRecord, type LogEntry, logLimits, type NewLogEntry } from "./log.ts";
import { acceptSeq, EMPTY_WINDOW } from "./window.ts";

const opened: DurableLog[] = [];
afterEach(async () => {
  for (const log of opened.splice(0)) await log.close().catch(() => {});
});

function openLog(dir: string, commitDelayMs?: number): DurableLog {
  const log = new DurableLog(dir, commitDelayMs);
  opened.push(log);
  return log;
}

function envelopeBytes(key: DeviceKey, seq: number, readings: unknown = [{ importWh: 1000 + seq }]): Uint8Array {
  return encodeEnvelope(
    signEnvelope({ version: 1, device: key.deviceId, seq, kind: "meter.reading", timeMs: 1_700_000_000_000 + seq, body: encodeBody(readings) }, key.secretKey),
  );
}

/** An accepted envelope as the gateway hands it to the log, with 60 readings (~3.8 KB, as devices send). */
function accepted(key: DeviceKey, seq: number, serviceId = 7): NewLogEntry {
  const readings = Array.from({ length: 60 }, (_, i) => ({
    t: 1_700_000_000 + i,
    importWh: 1_000_000 + i,
    exportWh: 5_000 + i,
    powerW: 2_000 + i,
    voltageV: 230,
  }));
  const decoded = decodeEnvelope(envelopeBytes(key, seq, readings));
  if (!decoded.ok) throw new Error("test envelope does not decode");
  return {
    deviceId: key.deviceId,
    seq,
    signingBytes: signingBytes(decoded.envelope),
    signature: decoded.envelope.signature,
    serviceId,
    acceptedAtMs: 1_700_000_000_000 + seq,
  };
}

async function appendAll(log: DurableLog, items: NewLogEntry[]): Promise<LogEntry[]> {
  const out: LogEntry[] = [];
  for (const item of items) out.push(await log.append(item));
  return out;
}

const view = (e: LogEntry) => ({
  deviceId: e.deviceId,
  seq: e.seq,
  state: e.state,
  packageHash: e.packageHash,
  attempts: e.attempts,
  order: e.order,
  serviceId: e.serviceId,
  acceptedAtMs: e.acceptedAtMs,
  signingBytes: Buffer.from(e.signingBytes).toString("hex"),
  signature: Buffer.from(e.signature).toString("hex"),
});

describe("durable log", () => {
  it("record codec: decode ∘ encode is the identity", () => {
    fc.assert(
      fc.property(
        fc.record({
          serviceId: fc.nat({ max: 2 ** 32 - 1 }),
          order: fc.maxSafeNat(),
          acceptedAtMs: fc.maxSafeNat(),
          signature: fc.uint8Array({ minLength: 64, maxLength: 64 }),
          signingBytes: fc.uint8Array({ maxLength: 5_000 }),
        }),
        (entry) => {
          const record = encodeLogRecord(entry);
          const decoded = decodeLogRecord(record);
          expect({ ...decoded, signature: [...decoded.signature], signingBytes: [...decoded.signingBytes] }).toEqual({
            ...entry,
            signature: [...entry.signature],
            signingBytes: [...entry.signingBytes],
          });
          // Signed bytes given as their writer (the gateway's way) make the same record.
          const signed = entry.signingBytes;
          expect(encodeLogRecord({ ...entry, signingBytes: { length: signed.length, write: (out) => out.set(signed) } })).toEqual(record);
        },
      ),
    );
    expect(() => decodeLogRecord(new Uint8Array(100))).toThrow(/not a version 2 record/);
  });

  it("keeps entries, their states, attempts and the windows across a reopen", async () => {
    const dir = tempDir();
    const key = generateDeviceKey();
    let log = openLog(dir);
    const entries = await appendAll(
      log,
      [0, 1, 2, 3].map((seq) => accepted(key, seq)),
    );
    expect(entries.map((e) => e.order)).toEqual([0, 1, 2, 3]);
    const hashA = "aa".repeat(32);
    const hashB = "bb".repeat(32);
    await log.markSubmitted(entries.slice(0, 2), hashA);
    const inB = await log.markSubmitted(entries.slice(2, 3), hashB);
    await log.markPending(inB, true); // package B failed: seq 2 is pending again, with one attempt
    await log.close();

    log = openLog(dir);
    const all = [...log.all()].sort((a, b) => a.order - b.order);
    expect(all.map((e) => [e.seq, e.state, e.packageHash, e.attempts])).toEqual([
      [0, "submitted", hashA, 0],
      [1, "submitted", hashA, 0],
      [2, "pending", undefined, 1],
      [3, "pending", undefined, 0],
    ]);
    expect(all.map(view)).toEqual(
      entries.map((e) => view({ ...e, ...(e.seq < 2 ? { state: "submitted", packageHash: hashA } : {}), attempts: e.seq === 2 ? 1 : 0 })),
    );
    expect(log.window(key.deviceId)).toEqual([0, 1, 2, 3].reduce(acceptSeq, EMPTY_WINDOW));
    // Acceptance order continues after the reopen.
    const [next] = await appendAll(log, [accepted(key, 4)]);
    expect(next!.order).toBe(4);

    // Settling package A removes its entries and its membership key; seq 2's attempt count goes with it once removed.
    await log.remove(all.slice(0, 3));
    expect([...log.all()].map((e) => e.seq).sort()).toEqual([3, 4]);
    expect(log.count).toBe(2);
  });

  it("group commit: appends made over several event-loop turns within the commit delay share one transaction, and a full batch commits at once", async () => {
    const keys = Array.from({ length: 5 }, () => generateDeviceKey());
    const lastTxnId = async (dir: string) => {
      const raw = open({ path: dir, readOnly: true });
      const id = (raw.getStats() as { lastTxnId: number }).lastTxnId;
      await raw.close();
      return id;
    };
    const baseDir = join(tempDir("jamgate-log-"), "log");
    await openLog(baseDir).close();
    const base = await lastTxnId(baseDir); // what opening a new log commits (its databases)

    // 20 appends 1 ms apart, within a 200 ms delay (lmdb-js alone commits once per turn that wrote).
    const dir = join(tempDir("jamgate-log-"), "log");
    const log = openLog(dir, 200);
    const windows = keys.map(() => EMPTY_WINDOW);
    const entries = Array.from({ length: 20 }, (_, i) => accepted(keys[i % keys.length]!, Math.floor(i / keys.length))); // signing is slow: before the clock runs
    const appended: Promise<LogEntry>[] = [];
    for (const [i, e] of entries.entries()) {
      const d = i % keys.length;
      windows[d] = acceptSeq(windows[d]!, e.seq);
      appended.push(log.append(e));
      await sleep(1);
    }
    expect(await Promise.all(appended)).toHaveLength(20);
    await log.close();
    expect((await lastTxnId(dir)) - base).toBe(1);
    // Every record is there, and each device's window is its latest.
    const reopened = openLog(dir);
    expect([...reopened.all()].map((e) => `${e.deviceId}/${e.seq}`).sort()).toEqual(
      Array.from({ length: 20 }, (_, i) => `${keys[i % keys.length]!.deviceId}/${Math.floor(i / keys.length)}`).sort(),
    );
    for (const [d, key] of keys.entries()) expect(reopened.window(key.deviceId)).toEqual(windows[d]);
    await reopened.close();

    // batchMax + 1 appends in one turn: the full batch does not wait for the delay, the last one
    // does. (A delay of 200 ms, so the two cannot share a transaction by timing alone.)
    const dir2 = join(tempDir("jamgate-log-"), "log");
    const log2 = openLog(dir2, 200);
    const entry = accepted(keys[0]!, 0);
    const many: Promise<LogEntry>[] = [];
    for (let seq = 0; seq <= logLimits.batchMax; seq++) many.push(log2.append({ ...entry, seq }));
    await Promise.all(many);
    await log2.close();
    expect((await lastTxnId(dir2)) - base).toBe(2);
    // The second transaction's window builds on the first's (read in the transaction): the 64 seqs below the last are all there.
    const reopened2 = openLog(dir2);
    expect(reopened2.window(keys[0]!.deviceId)).toEqual({ highest: logLimits.batchMax, below: (1n << 64n) - 1n });
  });

  it("keeps a failed transaction's seqs out of the window, on disk and in what it reports, while later appends go on", async () => {
    const dir = tempDir();
    const log = openLog(dir, 20);
    const key = generateDeviceKey();
    await log.append(accepted(key, 0));
    // One batch that fails as a whole: its first record has a key LMDB refuses (over its largest
    // key), so the transaction fails before it writes anything; then seqs 1 and 2 of the device.
    const poison = { ...accepted(key, 0), deviceId: "f".repeat(4_000) };
    const failing = [log.append(poison), log.append(accepted(key, 1)), log.append(accepted(key, 2))].map((p) =>
      p.then(
        () => "written",
        () => "failed",
      ),
    );
    // While they are on their way they count: a copy arriving meanwhile is a replay.
    expect(log.window(key.deviceId)).toEqual([0, 1, 2].reduce(acceptSeq, EMPTY_WINDOW));
    expect(await Promise.all(failing)).toEqual(["failed", "failed", "failed"]);
    expect(log.window(key.deviceId)).toEqual(acceptSeq(EMPTY_WINDOW, 0));
    // A later batch writes the window on disk plus its own seq, not the seqs that failed.
    const later = log.append(accepted(key, 3));
    expect(log.window(key.deviceId)).toEqual([0, 3].reduce(acceptSeq, EMPTY_WINDOW));
    await later;
    await log.close();
    const reopened = openLog(dir);
    expect(reopened.window(key.deviceId)).toEqual([0, 3].reduce(acceptSeq, EMPTY_WINDOW));
    expect([...reopened.all()].map((e) => e.seq).sort()).toEqual([0, 3]);
  });

  it("marks a package submitted by writing its member list, not by rewriting the envelopes", async () => {
    const dir = tempDir();
    const log = openLog(dir);
    const keys = Array.from({ length: 20 }, () => generateDeviceKey());
    const entries = await appendAll(
      log,
      keys.flatMap((k) => [0, 1, 2, 3, 4].map((seq) => accepted(k, seq))),
    );
    const envelopeBytesTotal = entries.reduce((n, e) => n + e.signingBytes.length + e.signature.length, 0);
    expect(envelopeBytesTotal / entries.length).toBeGreaterThan(3_000);
    const hash = "cd".repeat(32);
    await log.markSubmitted(entries, hash);
    await log.close();
    opened.splice(opened.indexOf(log), 1);

    // Read the data dir with lmdb directly: one key for the package, ~40 bytes per member (device id, seq); records as accepted.
    const root = open({ path: join(dir), compression: false });
    try {
      const packages = root.openDB({ name: "packages" });
      const written = packages.getBinary(hash)!;
      expect(written.length).toBeLessThan(50 * entries.length);
      expect(written.length).toBeLessThan(envelopeBytesTotal / 50);
      const records = root.openDB({ name: "records", encoding: "binary" });
      for (const e of entries) expect(decodeLogRecord(records.get([e.deviceId, e.seq]) as Uint8Array).signingBytes).toEqual(Buffer.from(e.signingBytes));
    } finally {
      await root.close();
    }
  });

  it("converts a version 1 data dir when opened, keeping every entry's state, and drops the old database", async () => {
    const dir = tempDir();
    const key = generateDeviceKey();
    const envelopes = [0, 1, 2].map((seq) => envelopeBytes(key, seq));
    // A version 1 log, as the gateway before log version 2 wrote it.
    const root = open({ path: dir, compression: false });
    const v1 = root.openDB({ name: "envelopes" });
    const windows = root.openDB({ name: "seq-windows" });
    const hash = "ef".repeat(32);
    await v1.put([key.deviceId, 0], {
      deviceId: key.deviceId,
      seq: 0,
      envelope: envelopes[0],
      serviceId: 7,
      order: 10,
      acceptedAtMs: 1_000,
      state: "submitted",
      packageHash: hash,
      attempts: 0,
    });
    await v1.put([key.deviceId, 1], {
      deviceId: key.deviceId,
      seq: 1,
      envelope: envelopes[1],
      serviceId: 7,
      order: 11,
      acceptedAtMs: 1_001,
      state: "pending",
      attempts: 2,
    });
    await v1.put([key.deviceId, 2], {
      deviceId: key.deviceId,
      seq: 2,
      envelope: envelopes[2],
      serviceId: 7,
      order: 12,
      acceptedAtMs: 1_002,
      state: "pending",
      attempts: 0,
    });
    await windows.put(key.deviceId, { highest: 2, below: "3" });
    await root.close();

    let log = openLog(dir);
    expect(log.migratedEntries).toBe(3);
    const all = [...log.all()].sort((a, b) => a.order - b.order);
    expect(all.map((e) => [e.seq, e.state, e.packageHash, e.attempts, e.order, e.acceptedAtMs, e.serviceId])).toEqual([
      [0, "submitted", hash, 0, 10, 1_000, 7],
      [1, "pending", undefined, 2, 11, 1_001, 7],
      [2, "pending", undefined, 0, 12, 1_002, 7],
    ]);
    for (const e of all) {
      const decoded = decodeEnvelope(envelopes[e.seq]!);
      if (!decoded.ok) throw new Error("does not decode");
      expect(Buffer.from(e.signingBytes)).toEqual(Buffer.from(signingBytes(decoded.envelope)));
      expect(Buffer.from(e.signature)).toEqual(Buffer.from(decoded.envelope.signature));
    }
    expect(log.window(key.deviceId)).toEqual({ highest: 2, below: 3n });
    const [next] = await appendAll(log, [accepted(key, 3)]);
    expect(next!.order).toBe(13);
    await log.close();
    opened.splice(opened.indexOf(log), 1);
    // Converted once: the old database is gone.
    log = openLog(dir);
    expect(log.migratedEntries).toBe(0);
    expect(log.count).toBe(4);
  });

  it("refuses to open a version 1 data dir with an entry that no longer decodes, and leaves it as it was", async () => {
    const dir = tempDir();
    const key = generateDeviceKey();
    const root = open({ path: dir, compression: false });
    const v1 = root.openDB({ name: "envelopes" });
    await v1.put([key.deviceId, 0], {
      deviceId: key.deviceId,
      seq: 0,
      envelope: envelopeBytes(key, 0),
      serviceId: 7,
      order: 0,
      acceptedAtMs: 1_000,
      state: "pending",
      attempts: 0,
    });
    await v1.put([key.deviceId, 1], {
      deviceId: key.deviceId,
      seq: 1,
      envelope: new Uint8Array([1, 2, 3]),
      serviceId: 7,
      order: 1,
      acceptedAtMs: 1_001,
      state: "pending",
      attempts: 0,
    });
    await root.close();
    expect(() => new DurableLog(dir)).toThrow(/version 1 entry .*\/1 no longer decodes/);
    const again = open({ path: dir, compression: false });
    try {
      expect(again.openDB({ name: "envelopes" }).getCount()).toBe(2);
      expect(again.openDB({ name: "records", encoding: "binary" }).getCount()).toBe(0);
    } finally {
      await again.close();
    }
  });
});
