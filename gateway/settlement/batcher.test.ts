/**
 * The batcher's bookkeeping around takeBatch (settlement.test.ts has the rule itself): devices
 * held by packages in flight and freed when they land, the idle mark, entries put back, full
 * packages by count and by bytes.
 */
import { describe, expect, it } from "vitest";
import type { IngestService } from "../ingest-service.ts";
import type { LogEntry } from "../log.ts";
import { Batcher } from "./batcher.ts";
import { settlementLimits } from "./limits.ts";

const SERVICE = 1;

function entry(deviceId: string, seq: number, order: number, signedBytes = 100): LogEntry {
  return {
    deviceId,
    seq,
    order,
    signingBytes: new Uint8Array(signedBytes),
    signature: new Uint8Array(64),
    serviceId: SERVICE,
    acceptedAtMs: 0,
    state: "pending",
    attempts: 0,
  };
}

function batcherOf(service: Partial<IngestService> = {}): Batcher {
  return new Batcher(new Map([[SERVICE, { packageDevicesMax: 1_000, ...service } as IngestService]]));
}

const keys = (entries: readonly LogEntry[]) => entries.map((e) => `${e.deviceId}/${e.seq}`);

describe("Batcher", () => {
  it("holds a package's devices until it lands: their later envelopes wait, others go", () => {
    const batcher = batcherOf();
    batcher.add(entry("a", 0, 0));
    batcher.add(entry("b", 0, 1));
    const first = batcher.take(SERVICE, 1); // room for one: device a
    expect(keys(first)).toEqual(["a/0"]);
    batcher.hold(first);
    batcher.add(entry("a", 1, 2));
    expect(keys(batcher.take(SERVICE, 10))).toEqual(["b/0"]); // a is busy
    expect(batcher.take(SERVICE, 10)).toEqual([]);
    expect(batcher.pendingOf(SERVICE)).toBe(1);
    batcher.release(first);
    expect(keys(batcher.take(SERVICE, 10))).toEqual(["a/1"]);
    expect(batcher.pendingCount).toBe(0);
  });

  it("lets a device have as many packages in flight as its service allows, within SEQ_WINDOW_SEQS", () => {
    const batcher = batcherOf({ packagesInFlightPerDeviceMax: 2 });
    for (let seq = 0; seq < 100; seq++) batcher.add(entry("a", seq, seq));
    const first = batcher.take(SERVICE, 10);
    batcher.hold(first);
    // The second package: seqs 10..63 only (64 above the lowest in flight, 0).
    const second = batcher.take(SERVICE, 1_000);
    expect(second.map((e) => e.seq)).toEqual(Array.from({ length: 54 }, (_, i) => 10 + i));
    batcher.hold(second);
    expect(batcher.take(SERVICE, 1_000)).toEqual([]); // two in flight: the device waits
    batcher.release(first);
    expect(batcher.take(SERVICE, 1_000).map((e) => e.seq)).toEqual(Array.from({ length: 10 }, (_, i) => 64 + i)); // up to 10 + 64
  });

  it("after taking nothing looks only at entries added since, until a package lands", () => {
    const batcher = batcherOf();
    batcher.add(entry("a", 0, 0));
    const first = batcher.take(SERVICE, 10);
    batcher.hold(first);
    batcher.add(entry("a", 1, 1));
    expect(batcher.take(SERVICE, 10)).toEqual([]); // the idle mark: a/1 waits for a's package
    batcher.release(first);
    const second = batcher.take(SERVICE, 10); // a package landed: the mark no longer holds
    expect(keys(second)).toEqual(["a/1"]);
    batcher.hold(second);
    batcher.add(entry("a", 2, 2));
    expect(batcher.take(SERVICE, 10)).toEqual([]);
    batcher.add(entry("b", 0, 3));
    expect(keys(batcher.take(SERVICE, 10))).toEqual(["b/0"]);
    expect(batcher.pendingOf(SERVICE)).toBe(1);
  });

  it("puts entries back in acceptance order, and only those still pending", () => {
    const batcher = batcherOf();
    for (let order = 0; order < 4; order++) batcher.add(entry(`d${order}`, 0, order));
    const taken = batcher.take(SERVICE, 2);
    expect(keys(taken)).toEqual(["d0/0", "d1/0"]);
    batcher.putBack(SERVICE, [taken[1]!, { ...taken[0]!, state: "submitted" }]);
    expect(batcher.pendingOf(SERVICE)).toBe(3);
    expect(keys(batcher.take(SERVICE, 10))).toEqual(["d1/0", "d2/0", "d3/0"]);
  });

  it("has a full package pending at the service's envelope bound, or the package's bytes", () => {
    const byCount = batcherOf({ packageEnvelopesMax: 3 });
    for (let seq = 0; seq < 3; seq++) {
      expect(byCount.anyFullPending()).toBe(false);
      byCount.add(entry("a", seq, seq));
    }
    expect(byCount.fullPending(SERVICE)).toBe(true);
    byCount.take(SERVICE, 1);
    expect(byCount.anyFullPending()).toBe(false);

    const byBytes = batcherOf();
    const big = settlementLimits.packageEnvelopeBytesMax / 4;
    for (let seq = 0; seq < 4; seq++) {
      expect(byBytes.fullPending(SERVICE)).toBe(false);
      byBytes.add(entry("a", seq, seq, big));
    }
    expect(byBytes.fullPending(SERVICE)).toBe(true);
    expect(byBytes.servicesByPending()).toEqual([SERVICE]);
  });
});
