/**
 * Receipts on their own: an accumulated package's verdicts become one receipt per device (seqs
 * ascending, RECEIPT_SEQS_MAX a message) and an error per refused envelope, counted for metrics,
 * then the ledger index's entry; an index that cannot write holds nothing back.
 */
import { describe, expect, it } from "vitest";
import { RECEIPT_SEQS_MAX } from "../../devices/messages.ts";
import type { PackageSettled } from "../ledger/sink.ts";
import { type DeviceNotice, type SettledPackage, tellOutcome } from "./receipts.ts";

const BLOCK = { headerHash: new Uint8Array(32).fill(7), slot: 42 };
const HASH = new Uint8Array(32).fill(9);

/** Device "a" sends seqs 2, 0, 1 (out of order), "b" 0 and 1, "c" RECEIPT_SEQS_MAX + 1 seqs; accepted at 1,000 ms. */
function pkg(): SettledPackage {
  const entries = [
    { deviceId: "a", seq: 2 },
    { deviceId: "b", seq: 0 },
    { deviceId: "a", seq: 0 },
    { deviceId: "b", seq: 1 },
    { deviceId: "a", seq: 1 },
    ...Array.from({ length: RECEIPT_SEQS_MAX + 1 }, (_, seq) => ({ deviceId: "c", seq })),
  ];
  return { hash: HASH, serviceId: 3, entries: entries.map((e) => ({ ...e, acceptedAtMs: 1_000 })) };
}

describe("tellOutcome", () => {
  it("sends a receipt per device (seqs ascending, RECEIPT_SEQS_MAX a message) and an error per refused envelope, then tells the index", async () => {
    const notices: DeviceNotice[] = [];
    const latencies: number[] = [];
    const counts: [number, number][] = [];
    const settled: PackageSettled[] = [];
    const p = pkg();
    await tellOutcome(
      {
        notify: (n) => void notices.push(n),
        observe: { settledLatencyMs: (ms) => latencies.push(ms), packageSettled: (envelopes, refused) => counts.push([envelopes, refused]) },
        ledger: { packageSettled: async (s) => void settled.push(s) },
      },
      p,
      (deviceId, seq) => (deviceId === "b" && seq === 1 ? "JG_ERR_ENVELOPE_SEQ" : null),
      BLOCK,
      1_250,
    );
    const receipts = notices.filter((n) => n.kind === "receipt");
    expect(receipts.map((r) => [r.deviceId, r.seqs])).toEqual([
      ["a", [0, 1, 2]],
      ["b", [0]],
      ["c", Array.from({ length: RECEIPT_SEQS_MAX }, (_, seq) => seq)],
      ["c", [RECEIPT_SEQS_MAX]],
    ]);
    for (const r of receipts) expect(r).toMatchObject({ packageHash: HASH, blockHash: BLOCK.headerHash, slot: BLOCK.slot });
    expect(notices.filter((n) => n.kind === "error")).toEqual([
      { kind: "error", deviceId: "b", seq: 1, code: "JG_ERR_ENVELOPE_SEQ", detail: `refused by service 3 in package ${Buffer.from(HASH).toString("hex")}` },
    ]);
    expect(latencies).toEqual(Array(p.entries.length - 1).fill(250));
    expect(counts).toEqual([[p.entries.length, 1]]);
    expect(settled).toHaveLength(1);
    expect(settled[0]).toMatchObject({
      hash: HASH,
      serviceId: 3,
      kind: "envelopes",
      block: BLOCK,
      settled: p.entries.length - 1,
      refused: 1,
      settledAtMs: 1_250,
    });
    expect(settled[0]!.receipts).toEqual(receipts.map((r) => ({ deviceId: r.deviceId, seqs: r.seqs })));
  });

  it("resolves when the index cannot write, the devices told all the same", async () => {
    const notices: DeviceNotice[] = [];
    await expect(
      tellOutcome(
        { notify: (n) => void notices.push(n), ledger: { packageSettled: async () => Promise.reject(new Error("disk full")) } },
        pkg(),
        () => null,
        BLOCK,
        0,
      ),
    ).resolves.toEqual({ published: expect.any(Promise) });
    expect(notices.filter((n) => n.kind === "receipt")).toHaveLength(4);
  });

  it("says when the broker has published every notice, or why one was not: never before the last, never rejecting", async () => {
    const handed: { resolve: () => void; reject: (e: Error) => void }[] = [];
    const notify = () =>
      new Promise<void>((resolve, reject) => {
        handed.push({ resolve, reject });
      });
    // Four receipts and one error (device b's seq 1).
    const verdicts = (deviceId: string, seq: number) => (deviceId === "b" && seq === 1 ? "JG_ERR_ENVELOPE_SIGNATURE" : null);
    const all = await tellOutcome({ notify }, pkg(), verdicts, BLOCK, 0);
    expect(handed).toHaveLength(5);
    let outcome: Error | null | "waiting" = "waiting";
    void all.published.then((o) => (outcome = o));
    for (const h of handed.slice(0, 4)) h.resolve();
    await new Promise((r) => setImmediate(r));
    expect(outcome).toBe("waiting");
    handed[4]!.resolve();
    await new Promise((r) => setImmediate(r));
    expect(outcome).toBeNull();

    handed.length = 0;
    const one = await tellOutcome({ notify }, pkg(), verdicts, BLOCK, 0);
    handed[1]!.reject(new Error("connection closed"));
    for (const h of [handed[0]!, ...handed.slice(2)]) h.resolve();
    await expect(one.published).resolves.toMatchObject({ message: "connection closed" });
  });
});
