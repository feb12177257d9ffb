/**
 * A device's outbox on disk: signed envelopes the gateway has not PUBACKed yet, and the next seq,
 * both surviving a restart (power loss included), so nothing sent is lost and no seq is reused.
 *
 * Format: one file per envelope, `<dir>/<seq, 16 digits>.cbor` holding the envelope's wire bytes,
 * plus `<dir>/next-seq` (decimal). Each write goes to a temporary file, is fsync'd, renamed over
 * the target and the directory fsync'd, so after a crash a file is either whole or absent (POSIX
 * rename(2) is atomic). Chosen over an append-only log because a device sends about one envelope
 * a minute: a file and a few fsyncs each is nothing at that rate, while a log needs checksums for
 * torn tails, a separate record of acknowledgements and compaction. Removal (on PUBACK) is an
 * unlink without a directory fsync: if a crash undoes it, the envelope is sent again and the
 * gateway answers JG_ERR_ENVELOPE_REPLAY, which costs nothing.
 *
 * Seq: `enqueue` takes exactly `nextSeq`, writes the envelope, then `next-seq`. On open, next seq
 * is max(next-seq, highest queued seq + 1), so a crash between the two writes neither repeats nor
 * skips a seq.
 *
 * Node only (node:fs). Not safe for two processes on one directory; the device client is its only user.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, unlinkSync, writeSync } from "node:fs";
import { join } from "node:path";
import { decodeEnvelope, type EnvelopeKind } from "./envelope.ts";

/** Envelopes kept by default: a week offline at one envelope a minute (7 × 24 × 60). */
export const QUEUE_ENVELOPES_MAX = 10_080;
/** Bytes kept by default: that week of ~3 KB meter envelopes, and small enough for a device's flash. */
export const QUEUE_BYTES_MAX = 32 * 1024 * 1024;

export interface QueueLimits {
  readonly envelopesMax: number;
  readonly bytesMax: number;
}

export interface QueuedEnvelope {
  readonly seq: number;
  readonly kind: EnvelopeKind;
  /** The envelope's wire bytes (encodeEnvelope). */
  readonly bytes: Uint8Array;
}

/** Why `enqueue` refused; the queue is unchanged and `nextSeq` is not used up. */
export interface QueueRefusal {
  readonly code: "JG_ERR_QUEUE_FULL";
  readonly detail: string;
}

export type EnqueueResult = { readonly ok: true } | { readonly ok: false; readonly error: QueueRefusal };

const SEQ_FILE = "next-seq";
const ENTRY_PATTERN = /^(\d{16})\.cbor$/;
const SEQ_DIGITS = 16; // Number.MAX_SAFE_INTEGER has 16 digits

export class OfflineQueue {
  /** seq → (kind, size) in seq order (Map keeps insertion order and seqs only grow); bytes stay on disk. */
  private readonly index = new Map<number, { kind: EnvelopeKind; byteLength: number }>();
  private totalBytes = 0;
  private next = 0;

  private constructor(
    readonly dir: string,
    readonly limits: QueueLimits,
  ) {}

  /** Opens (creating) the queue in `dir`: drops unfinished temporary files, sets aside files that do not decode, and recovers next seq. */
  static open(dir: string, limits: Partial<QueueLimits> = {}): OfflineQueue {
    const queue = new OfflineQueue(dir, { envelopesMax: limits.envelopesMax ?? QUEUE_ENVELOPES_MAX, bytesMax: limits.bytesMax ?? QUEUE_BYTES_MAX });
    if (
      !Number.isSafeInteger(queue.limits.envelopesMax) ||
      queue.limits.envelopesMax < 1 ||
      !Number.isSafeInteger(queue.limits.bytesMax) ||
      queue.limits.bytesMax < 1
    )
      throw new Error(`queue limits must be positive integers: ${JSON.stringify(queue.limits)}`);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    let next = 0;
    try {
      const text = readFileSync(join(dir, SEQ_FILE), "utf8").trim();
      if (!/^\d{1,16}$/.test(text) || !Number.isSafeInteger(Number(text)))
        throw new Error(`${join(dir, SEQ_FILE)} holds ${JSON.stringify(text.slice(0, 40))}, not a seq`);
      next = Number(text);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
    }
    const entries: { seq: number; name: string }[] = [];
    for (const name of readdirSync(dir)) {
      if (name.startsWith(".tmp-")) {
        unlinkSync(join(dir, name)); // a write that never reached its rename
        continue;
      }
      const m = ENTRY_PATTERN.exec(name);
      if (m !== null) entries.push({ seq: Number(m[1]), name });
    }
    entries.sort((a, b) => a.seq - b.seq);
    for (const { seq, name } of entries) {
      const bytes = readFileSync(join(dir, name));
      const decoded = decodeEnvelope(bytes);
      if (!decoded.ok || decoded.envelope.seq !== seq) {
        // Renamed (never sent, never deleted): a disk fault, kept for whoever looks into it.
        renameSync(join(dir, name), join(dir, `${name}.bad`));
        continue;
      }
      queue.index.set(seq, { kind: decoded.envelope.kind, byteLength: bytes.length });
      queue.totalBytes += bytes.length;
      next = Math.max(next, seq + 1);
    }
    queue.next = next;
    return queue;
  }

  /** The seq the next envelope must carry. */
  get nextSeq(): number {
    return this.next;
  }

  get size(): number {
    return this.index.size;
  }

  get bytes(): number {
    return this.totalBytes;
  }

  /** Queued seqs, ascending (a live view: no copy of a week's backlog per call). */
  seqs(): IterableIterator<number> {
    return this.index.keys();
  }

  has(seq: number): boolean {
    return this.index.has(seq);
  }

  /**
   * Durably appends an envelope carrying `nextSeq` (anything else is a bug) and advances next seq;
   * refuses, changing nothing, when the queue is at a limit or the disk is full.
   */
  enqueue(item: QueuedEnvelope): EnqueueResult {
    if (item.seq !== this.next) throw new Error(`enqueue of seq ${item.seq}, expected ${this.next}`);
    if (this.index.size >= this.limits.envelopesMax) return full(`offline queue holds ${this.index.size} envelopes, its limit`);
    if (this.totalBytes + item.bytes.length > this.limits.bytesMax)
      return full(`offline queue holds ${this.totalBytes} bytes; ${item.bytes.length} more would pass its limit of ${this.limits.bytesMax}`);
    try {
      this.writeDurably(entryName(item.seq), item.bytes);
      this.writeDurably(SEQ_FILE, new TextEncoder().encode(`${item.seq + 1}\n`));
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "ENOSPC" || code === "EDQUOT") {
        try {
          unlinkSync(join(this.dir, entryName(item.seq)));
        } catch {
          // not written
        }
        return full(`disk full (${code}) writing ${this.dir}`);
      }
      throw e;
    }
    this.index.set(item.seq, { kind: item.kind, byteLength: item.bytes.length });
    this.totalBytes += item.bytes.length;
    this.next = item.seq + 1;
    return { ok: true };
  }

  /** The queued envelope `seq`, read from disk; null if it is not queued. */
  get(seq: number): QueuedEnvelope | null {
    const entry = this.index.get(seq);
    if (entry === undefined) return null;
    const bytes = readFileSync(join(this.dir, entryName(seq)));
    return { seq, kind: entry.kind, bytes: new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength) };
  }

  /** Forgets `seq` (its PUBACK came); unknown seqs are ignored, since a PUBACK may repeat. */
  remove(seq: number): void {
    const entry = this.index.get(seq);
    if (entry === undefined) return;
    this.index.delete(seq);
    this.totalBytes -= entry.byteLength;
    try {
      unlinkSync(join(this.dir, entryName(seq)));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
    }
  }

  private writeDurably(name: string, bytes: Uint8Array): void {
    const tmp = join(this.dir, `.tmp-${name}`);
    const fd = openSync(tmp, "w", 0o600);
    try {
      let at = 0;
      while (at < bytes.length) at += writeSync(fd, bytes, at, bytes.length - at);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, join(this.dir, name));
    syncDirectory(this.dir);
  }
}

function entryName(seq: number): string {
  return `${String(seq).padStart(SEQ_DIGITS, "0")}.cbor`;
}

function full(detail: string): EnqueueResult {
  return { ok: false, error: { code: "JG_ERR_QUEUE_FULL", detail } };
}

/** Makes a rename durable (the new directory entry), as fsync(2) on the directory does on Linux; Windows cannot open a directory, and does not need it. */
function syncDirectory(dir: string): void {
  if (process.platform === "win32") return;
  const fd = openSync(dir, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
