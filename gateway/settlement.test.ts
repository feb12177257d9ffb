/**
 * The batcher's rule (takeBatch) on its own: what it takes out of the pending list for the next
 * package, against a plain reading of the rule, for any list, busy set and bounds.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { LogEntry } from "./log.ts";
import { settlementLimits, takeBatch } from "./settlement/index.ts";
import { SEQ_WINDOW_SEQS } from "../devices/protocol/seq-window.ts";

const RECORD_OVERHEAD = 100; // public key 32, u32 length, signature 64

function entry(deviceId: string, seq: number, order: number, signedBytes: number): LogEntry {
  return {
    deviceId,
    seq,
    order,
    signingBytes: new Uint8Array(signedBytes),
    signature: new Uint8Array(64),
    serviceId: 1,
    acceptedAtMs: 0,
    state: "pending",
    attempts: 0,
  };
}

const arbitraryCase = fc
  .record({
    sends: fc.array(fc.record({ device: fc.integer({ min: 0, max: 9 }), bytes: fc.integer({ min: 100, max: 4_000_000 }) }), { maxLength: 60 }),
    busy: fc.uniqueArray(fc.integer({ min: 0, max: 9 }), { maxLength: 5 }),
    devicesMax: fc.integer({ min: 1, max: 10 }),
  })
  .map(({ sends, busy, devicesMax }) => {
    const seqs = new Map<number, number>();
    const list = sends.map((s, order) => {
      const seq = seqs.get(s.device) ?? 0;
      seqs.set(s.device, seq + 1);
      return entry(`d${s.device}`, seq, order, s.bytes);
    });
    return { list, busy: new Map(busy.map((d) => [`d${d}`, 1])), devicesMax };
  });

describe("takeBatch", () => {
  it("takes free devices whole, oldest first, within the bounds, in order, and leaves the rest in order", () => {
    fc.assert(
      fc.property(arbitraryCase, ({ list, busy, devicesMax }) => {
        const before = list.slice();
        const taken = takeBatch(list, busy, devicesMax);
        const key = (e: LogEntry) => `${e.deviceId}/${e.seq}`;
        // Nothing lost or doubled; both parts keep acceptance order.
        expect([...taken, ...list].map(key).sort()).toEqual(before.map(key).sort());
        expect(taken.map((e) => e.order)).toEqual([...taken.map((e) => e.order)].sort((a, b) => a - b));
        expect(list.map((e) => e.order)).toEqual([...list.map((e) => e.order)].sort((a, b) => a - b));
        // No busy device; within the bounds.
        for (const e of taken) expect(busy.has(e.deviceId)).toBe(false);
        expect(new Set(taken.map((e) => e.deviceId)).size).toBeLessThanOrEqual(devicesMax);
        expect(taken.length).toBeLessThanOrEqual(settlementLimits.packageEnvelopesMax);
        expect(taken.reduce((n, e) => n + RECORD_OVERHEAD + e.signingBytes.length, 0)).toBeLessThanOrEqual(settlementLimits.packageEnvelopeBytesMax);
        // Per device, what is taken is a prefix of its entries: none overtakes one left behind.
        for (const device of new Set(before.map((e) => e.deviceId))) {
          const all = before.filter((e) => e.deviceId === device).map(key);
          const took = taken.filter((e) => e.deviceId === device).map(key);
          expect(took).toEqual(all.slice(0, took.length));
        }
        // Something is taken whenever a free device has an entry (an empty package has room for any one).
        if (before.some((e) => !busy.has(e.deviceId))) expect(taken.length).toBeGreaterThan(0);
        // Devices are taken whole, oldest first: at most one (the last, where the package filled)
        // is taken in part, and no device is passed over for one whose oldest entry is younger.
        const free = [...new Set(before.filter((e) => !busy.has(e.deviceId)).map((e) => e.deviceId))]; // by oldest entry
        const share = free.map((d) => {
          const all = before.filter((e) => e.deviceId === d).length;
          const took = taken.filter((e) => e.deviceId === d).length;
          return took === 0 ? "none" : took === all ? "all" : "part";
        });
        expect(share.filter((x) => x === "part").length).toBeLessThanOrEqual(1);
        const firstNotAll = share.findIndex((x) => x !== "all");
        if (firstNotAll >= 0) expect(share.slice(firstNotAll + 1).every((x) => x === "none")).toBe(true);
      }),
      { numRuns: 500 },
    );
  });

  it("skipping a prefix of busy devices' entries (the idle mark) takes the same as scanning them", () => {
    fc.assert(
      fc.property(arbitraryCase, fc.integer({ min: 0, max: 60 }), ({ list, busy, devicesMax }, cut) => {
        // Make the first `cut` entries belong to busy devices only, as after a packing that found nothing.
        const from = Math.min(cut, list.length);
        const marked = list.map((e, i) => (i < from ? { ...e, deviceId: `busy${e.deviceId}` } : e));
        const busyToo = new Map([...busy, ...marked.slice(0, from).map((e) => [e.deviceId, 1] as const)]);
        const a = marked.slice();
        const b = marked.slice();
        expect(takeBatch(a, busyToo, devicesMax, from)).toEqual(takeBatch(b, busyToo, devicesMax, 0));
        expect(a).toEqual(b);
      }),
      { numRuns: 300 },
    );
  });

  it("lets a device have several packages in flight, but only seqs within SEQ_WINDOW_SEQS of its lowest unsettled one", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 50 }),
        fc.integer({ min: 1, max: 150 }),
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 0, max: 3 }),
        (lowest, pending, perDeviceMax, inFlight) => {
          // d0 has `inFlight` packages in flight, the lowest holding seq `lowest`; its pending seqs follow on.
          const list = Array.from({ length: pending }, (_, i) => entry("d0", lowest + 10 + i, i, 100));
          const busy = new Map(inFlight === 0 ? [] : [["d0", inFlight]]);
          const taken = takeBatch(list, busy, 10, 0, {
            packagesPerDeviceMax: perDeviceMax,
            lowestInFlightSeq: () => (inFlight === 0 ? Number.POSITIVE_INFINITY : lowest),
          });
          if (inFlight >= perDeviceMax) {
            expect(taken).toEqual([]);
          } else if (inFlight === 0) {
            expect(taken).toHaveLength(pending); // a free device is taken whole
          } else {
            // Exactly the pending seqs below lowest + SEQ_WINDOW_SEQS, a prefix, in order.
            expect(taken.map((e) => e.seq)).toEqual(Array.from({ length: pending }, (_, i) => lowest + 10 + i).filter((seq) => seq < lowest + SEQ_WINDOW_SEQS));
          }
        },
      ),
    );
  });
});
