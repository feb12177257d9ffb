import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ENVELOPE_VERSION, encodeBody, encodeEnvelope, signEnvelope } from "./envelope.ts";
import { generateDeviceKey } from "./keys.ts";
import { OfflineQueue, type QueuedEnvelope } from "./offline-queue.ts";

const key = generateDeviceKey();
const tempDir = () => mkdtempSync(join(tmpdir(), "jg-queue-"));

function envelope(seq: number, readings: unknown = [seq]): QueuedEnvelope {
  const bytes = encodeEnvelope(
    signEnvelope(
      { version: ENVELOPE_VERSION, device: key.deviceId, seq, kind: "meter.reading", timeMs: 1_700_000_000_000, body: encodeBody(readings) },
      key.secretKey,
    ),
  );
  return { seq, kind: "meter.reading", bytes };
}

function fill(queue: OfflineQueue, count: number): void {
  for (let i = 0; i < count; i++) expect(queue.enqueue(envelope(queue.nextSeq))).toEqual({ ok: true });
}

describe("OfflineQueue", () => {
  it("survives a restart: a new instance on the same directory has the same envelopes and next seq", () => {
    const dir = tempDir();
    const queue = OfflineQueue.open(dir);
    fill(queue, 4);
    queue.remove(1);
    const reopened = OfflineQueue.open(dir);
    expect([...reopened.seqs()]).toEqual([0, 2, 3]);
    expect(reopened.nextSeq).toBe(4);
    expect(reopened.bytes).toBe(queue.bytes);
    expect(reopened.get(2)).toEqual(envelope(2));
    expect(reopened.get(1)).toBeNull();
  });

  it("never reuses a seq, even after every envelope was acknowledged", () => {
    const dir = tempDir();
    const queue = OfflineQueue.open(dir);
    fill(queue, 3);
    for (const seq of [0, 1, 2]) queue.remove(seq);
    expect(OfflineQueue.open(dir).nextSeq).toBe(3);
    expect(() => OfflineQueue.open(dir).enqueue(envelope(0))).toThrow(/expected 3/);
  });

  it("recovers next seq from the envelopes when a crash came between the envelope and next-seq writes", () => {
    const dir = tempDir();
    fill(OfflineQueue.open(dir), 2);
    writeFileSync(join(dir, "0000000000000002.cbor"), envelope(2).bytes); // written, next-seq still 2
    writeFileSync(join(dir, ".tmp-0000000000000003.cbor"), "half"); // never renamed
    writeFileSync(join(dir, "0000000000000009.cbor"), "not an envelope");
    const queue = OfflineQueue.open(dir);
    expect([...queue.seqs()]).toEqual([0, 1, 2]);
    expect(queue.nextSeq).toBe(3);
    expect(readdirSync(dir).sort()).toEqual([
      "0000000000000000.cbor",
      "0000000000000001.cbor",
      "0000000000000002.cbor",
      "0000000000000009.cbor.bad",
      "next-seq",
    ]);
    expect(readFileSync(join(dir, "next-seq"), "utf8")).toBe("2\n");
  });

  it("refuses with a code when full (count or bytes), changing nothing, and takes more once there is room", () => {
    const queue = OfflineQueue.open(tempDir(), { envelopesMax: 2 });
    fill(queue, 2);
    const refused = queue.enqueue(envelope(2));
    expect(refused).toMatchObject({ ok: false, error: { code: "JG_ERR_QUEUE_FULL" } });
    expect(queue.nextSeq).toBe(2);
    expect(queue.size).toBe(2);
    queue.remove(0);
    expect(queue.enqueue(envelope(2))).toEqual({ ok: true });

    const one = envelope(0).bytes.length;
    const small = OfflineQueue.open(tempDir(), { bytesMax: one * 2 + 1 });
    fill(small, 2);
    expect(small.enqueue(envelope(2))).toMatchObject({ ok: false, error: { code: "JG_ERR_QUEUE_FULL", detail: expect.stringMatching(/bytes/) } });
    expect(small.bytes).toBe(one * 2);
  });
});
