/**
 * The gateway's durable log (LMDB): every envelope the gateway accepts is written here before
 * its PUBACK, with the device's sequence window, and stays until its settlement (receipt or
 * refusal) has been told. Appends made within a few milliseconds share one transaction and one
 * disk sync (group commit, logLimits); each append waits until its transaction is synced to disk
 * before its PUBACK.
 *
 * Layout (log version 2): an accepted envelope is written once, as what its work item needs
 * (the signed bytes and the signature, built at acceptance), and is never rewritten. Its state
 * is kept apart, in small keys: a package's membership list while it is submitted, and a count
 * of failed attempts once a package holding it has failed. So marking a package submitted
 * writes ~40 bytes per envelope instead of rewriting each 3.8 KB entry.
 *
 * | database | key | value |
 * |---|---|---|
 * | `records` | [deviceId, seq] | binary: u8 version 2 ⌢ u32 serviceId ⌢ f64 order ⌢ f64 acceptedAtMs ⌢ signature 64 ⌢ signingBytes |
 * | `packages` | package hash (hex) | `{ serviceId, members: [deviceId, seq][] }`: submitted, not yet settled |
 * | `attempts` | [deviceId, seq] | failed settlements so far (absent = 0) |
 * | `seq-windows` | deviceId | `{ highest, below (hex) }` (unchanged from version 1) |
 *
 * A data dir of version 1 (one `envelopes` database of whole entries) is converted when opened,
 * in one transaction, and its old database dropped (see `migrateVersion1`).
 */
import { type Database, type DatabaseOptions, open, type RootDatabase } from "lmdb";
import { decodeEnvelope, type SigningBytesWriter, signingBytes } from "../devices/envelope.ts";
import { makeLmdbFilesPrivate, makePrivateDir } from "../node/storage/data-dir.ts";
import { acceptSeq, EMPTY_WINDOW, judgeSeq, type SeqWindow } from "./window.ts";

/** Reserved address space for the log; LMDB takes disk only as it is used. */
const MAP_SIZE_BYTES = 16 * 1024 ** 3;

export const logLimits = {
  /**
   * Appends wait up to this long to share one LMDB transaction and one disk sync (group commit).
   * lmdb-js on its own commits once per event-loop turn that wrote, and the gateway's turns each
   * carry a few envelopes: measured here at 3,000 appends/s, the log cost 105–112 µs of CPU per
   * envelope (main thread and lmdb-js's commit and sync threads) with a commit per 1 ms, against
   * 50–63 µs with the appends of 5–10 ms in one transaction. It adds at most this much to a PUBACK.
   */
  commitDelayMs: 5,
  /** Appends in one transaction at most: a full batch commits at once, so the wait holds at most this many envelopes (~4 KB each). */
  batchMax: 1_000,
} as const;

interface QueuedAppend {
  readonly entry: NewLogEntry;
  readonly order: number;
  readonly record: Uint8Array;
  readonly resolve: () => void;
  readonly reject: (e: unknown) => void;
}

export type EntryState = "pending" | "submitted";

/** An accepted envelope, as settlement needs it. */
export interface LogEntry {
  readonly deviceId: string;
  readonly seq: number;
  /** The envelope's signed bytes (devices/envelope.ts `signingBytes`), written once, into its log record, at acceptance: the work item carries them as they are. */
  readonly signingBytes: Uint8Array;
  /** The envelope's Ed25519 signature (64 bytes), checked by the service's refine. */
  readonly signature: Uint8Array;
  readonly serviceId: number;
  /** Order of acceptance across all devices: the batcher's order. */
  readonly order: number;
  readonly acceptedAtMs: number;
  readonly state: EntryState;
  /** While submitted: the hex hash of the work package holding it. */
  readonly packageHash?: string;
  /** Failed settlements so far (packages that failed and were retried). */
  readonly attempts: number;
}

/** What the gateway hands the log when it accepts an envelope. */
export type NewLogEntry = Pick<LogEntry, "deviceId" | "seq" | "signature" | "serviceId" | "acceptedAtMs"> & {
  /** The signed bytes, or their writer (devices/envelope.ts): then they are written straight into the record. */
  readonly signingBytes: Uint8Array | SigningBytesWriter;
};

interface StoredWindow {
  readonly highest: number;
  readonly below: string;
}

interface StoredPackage {
  readonly serviceId: number;
  readonly members: readonly (readonly [string, number])[];
}

/** An entry of log version 1 (one msgpack object per envelope, rewritten on every state change). */
interface Version1Entry {
  readonly deviceId: string;
  readonly seq: number;
  readonly envelope: Uint8Array;
  readonly serviceId: number;
  readonly order: number;
  readonly acceptedAtMs: number;
  readonly state: EntryState;
  readonly packageHash?: string;
  readonly attempts?: number;
}

// --- record codec ----------------------------------------------------------------------------

/** First byte of every record: the log layout it was written by. */
export const LOG_RECORD_VERSION = 2;
const SIGNATURE_BYTES = 64;
/** u8 version ⌢ u32 serviceId ⌢ f64 order ⌢ f64 acceptedAtMs. */
const RECORD_HEADER_BYTES = 1 + 4 + 8 + 8;

/** The stored form of an accepted envelope (its key holds deviceId and seq). */
export function encodeLogRecord(entry: Pick<LogEntry, "serviceId" | "order" | "acceptedAtMs" | "signature"> & Pick<NewLogEntry, "signingBytes">): Uint8Array {
  if (entry.signature.length !== SIGNATURE_BYTES) throw new Error(`a signature is ${SIGNATURE_BYTES} bytes, got ${entry.signature.length}`);
  // Every byte is written below, so no zero fill; under 4 KiB this comes from Node's buffer pool
  // rather than a fresh ArrayBuffer (one per accepted envelope, on the main thread).
  const out = Buffer.allocUnsafe(RECORD_HEADER_BYTES + SIGNATURE_BYTES + entry.signingBytes.length);
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  view.setUint8(0, LOG_RECORD_VERSION);
  view.setUint32(1, entry.serviceId, true);
  view.setFloat64(5, entry.order, true);
  view.setFloat64(13, entry.acceptedAtMs, true);
  out.set(entry.signature, RECORD_HEADER_BYTES);
  const signed = entry.signingBytes;
  if (signed instanceof Uint8Array) out.set(signed, RECORD_HEADER_BYTES + SIGNATURE_BYTES);
  else signed.write(out.subarray(RECORD_HEADER_BYTES + SIGNATURE_BYTES));
  return out;
}

/** The fields of a stored record; its signature and signed bytes are views into `bytes`. Throws on a record this code did not write (a bug or a damaged log). */
export function decodeLogRecord(bytes: Uint8Array): Pick<LogEntry, "serviceId" | "order" | "acceptedAtMs" | "signingBytes" | "signature"> {
  if (bytes.length < RECORD_HEADER_BYTES + SIGNATURE_BYTES || bytes[0] !== LOG_RECORD_VERSION)
    throw new Error(`gateway log: a record of ${bytes.length} bytes, version ${bytes[0]}, is not a version ${LOG_RECORD_VERSION} record`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return {
    serviceId: view.getUint32(1, true),
    order: view.getFloat64(5, true),
    acceptedAtMs: view.getFloat64(13, true),
    signature: bytes.subarray(RECORD_HEADER_BYTES, RECORD_HEADER_BYTES + SIGNATURE_BYTES),
    signingBytes: bytes.subarray(RECORD_HEADER_BYTES + SIGNATURE_BYTES),
  };
}

// --- the log ---------------------------------------------------------------------------------

export class DurableLog {
  private readonly root: RootDatabase;
  private readonly records: Database<Uint8Array, [string, number]>;
  private readonly packages: Database<StoredPackage, string>;
  private readonly attemptCounts: Database<number, [string, number]>;
  private readonly windows: Database<StoredWindow, string>;
  private nextOrder = 0;
  /** Appends waiting for the next group commit (at most logLimits.batchMax). */
  private queued: QueuedAppend[] = [];
  /** Batches handed to LMDB whose outcome is not known yet: their seqs are accepted, not yet durable. */
  private readonly committing = new Set<readonly QueuedAppend[]>();
  private commitTimer: NodeJS.Timeout | null = null;
  /** Entries converted from a version 1 data dir when it was opened (0 for a new or version 2 one). */
  readonly migratedEntries: number;

  /** `commitDelayMs` other than logLimits.commitDelayMs is for tests. */
  constructor(
    path: string,
    private readonly commitDelayMs: number = logLimits.commitDelayMs,
  ) {
    // Private: the log holds every device's signed envelopes until settled (0700 dir, 0600 files).
    makePrivateDir(path);
    this.root = open({ path, mapSize: MAP_SIZE_BYTES, compression: false });
    makeLmdbFilesPrivate(path);
    this.records = this.root.openDB({ name: "records", encoding: "binary" });
    this.packages = this.root.openDB({ name: "packages" });
    this.attemptCounts = this.root.openDB({ name: "attempts" });
    this.windows = this.root.openDB({ name: "seq-windows" });
    try {
      this.migratedEntries = this.migrateVersion1();
    } catch (e) {
      void this.root.close();
      throw e;
    }
    // The log holds only unsettled entries (a bounded backlog), so one scan at start is cheap.
    for (const { value } of this.records.getRange()) this.nextOrder = Math.max(this.nextOrder, decodeLogRecord(value).order + 1);
  }

  /**
   * The device's window: the seqs on disk and those of its appends still on their way there
   * (queued or being committed). Not those of a failed append: after a failed transaction the
   * gateway takes its window from here again, so the device's resend is new, not a replay.
   */
  window(deviceId: string): SeqWindow {
    let w = this.storedWindow(deviceId);
    for (const batch of [...this.committing, this.queued]) for (const q of batch) if (q.entry.deviceId === deviceId) w = withSeq(w, q.entry.seq);
    return w;
  }

  /** The window on disk (in a write transaction: including that transaction's writes). */
  private storedWindow(deviceId: string): SeqWindow {
    const w = this.windows.get(deviceId);
    return w === undefined ? EMPTY_WINDOW : { highest: w.highest, below: BigInt(`0x${w.below}`) };
  }

  /**
   * Appends an accepted envelope and adds its seq to the device's window on disk; resolves once
   * both are on disk. The caller has already moved its in-memory window, so a second copy of the
   * envelope arriving before this resolves is judged a replay. Appends made within the commit
   * delay (logLimits.commitDelayMs) share one transaction (record and window of each together, so
   * a crash keeps both or neither) and one disk sync.
   */
  async append(entry: NewLogEntry): Promise<LogEntry> {
    const order = this.nextOrder++;
    const record = encodeLogRecord({ ...entry, order });
    const stored = decodeLogRecord(record); // views into the one buffer kept, so the caller's copies can go
    await new Promise<void>((resolve, reject) => {
      this.queued.push({ entry, order, record, resolve, reject });
      if (this.queued.length >= logLimits.batchMax) this.commitQueued();
      else this.commitTimer ??= setTimeout(() => this.commitQueued(), this.commitDelayMs);
    });
    return {
      deviceId: entry.deviceId,
      seq: entry.seq,
      serviceId: entry.serviceId,
      acceptedAtMs: entry.acceptedAtMs,
      signingBytes: stored.signingBytes,
      signature: stored.signature,
      order,
      state: "pending",
      attempts: 0,
    };
  }

  /** Writes the queued appends in one transaction and resolves them once it is synced to disk. */
  private commitQueued(): void {
    if (this.commitTimer !== null) clearTimeout(this.commitTimer);
    this.commitTimer = null;
    const batch = this.queued;
    this.queued = [];
    if (batch.length === 0) return;
    this.committing.add(batch);
    this.root
      .transaction(() => {
        // Each window on disk is the one on disk plus this batch's seqs, read in the transaction:
        // never the gateway's in-memory window, which may hold the seq of an append whose
        // transaction failed (written by a later batch, it would make the device's resend a replay).
        // Reads first, writes after: lmdb-js commits an asynchronous transaction's writes made
        // before its callback throws (measured with lmdb 3), so nothing may throw after the first write.
        const windows = new Map<string, SeqWindow>();
        for (const { entry } of batch) windows.set(entry.deviceId, withSeq(windows.get(entry.deviceId) ?? this.storedWindow(entry.deviceId), entry.seq));
        for (const q of batch) this.records.put([q.entry.deviceId, q.entry.seq], q.record);
        for (const [deviceId, w] of windows) this.windows.put(deviceId, { highest: w.highest, below: w.below.toString(16) });
      })
      // lmdb-js (overlappingSync, its default on Linux) resolves a transaction once it is
      // committed — visible, and safe from a process crash — and syncs to disk after. A PUBACK
      // promises more: the envelope survives the machine going down too, so wait for the sync.
      .then(() => this.root.flushed)
      .then(
        () => {
          this.committing.delete(batch);
          for (const q of batch) q.resolve();
        },
        (e: unknown) => {
          this.committing.delete(batch);
          for (const q of batch) q.reject(e);
        },
      );
  }

  /**
   * Marks entries as submitted in `packageHash` (durably, before the package is sent): one key
   * listing the package's members, ~40 bytes per envelope; the envelopes are not rewritten.
   */
  async markSubmitted(entries: readonly LogEntry[], packageHash: string): Promise<LogEntry[]> {
    if (entries.length === 0) return [];
    const members = entries.map((e) => [e.deviceId, e.seq] as const);
    await this.packages.put(packageHash, { serviceId: entries[0]!.serviceId, members });
    return entries.map((e) => ({ ...e, state: "submitted" as const, packageHash }));
  }

  /** Puts entries back to pending after their package failed (or never reached the node): drops its membership key. */
  async markPending(entries: readonly LogEntry[], countAttempt: boolean): Promise<LogEntry[]> {
    const updated = entries.map((e) => {
      const { packageHash: _, ...rest } = e;
      return { ...rest, state: "pending" as const, attempts: e.attempts + (countAttempt ? 1 : 0) };
    });
    await this.root.transaction(() => {
      for (const hash of packageHashesOf(entries)) this.packages.remove(hash);
      if (countAttempt) for (const e of updated) this.attemptCounts.put([e.deviceId, e.seq], e.attempts);
    });
    return updated;
  }

  /** Removes settled (or refused) entries: their outcome has been told and their seq is in the window. */
  async remove(entries: readonly LogEntry[]): Promise<void> {
    await this.root.transaction(() => {
      for (const hash of packageHashesOf(entries)) this.packages.remove(hash);
      for (const e of entries) {
        this.records.remove([e.deviceId, e.seq]);
        if (e.attempts > 0) this.attemptCounts.remove([e.deviceId, e.seq]);
      }
    });
  }

  /** Every entry, for recovery after a restart: in key order, each with its state. */
  *all(): Generator<LogEntry> {
    const packageOf = new Map<string, string>();
    for (const { key, value } of this.packages.getRange()) {
      for (const [deviceId, seq] of value.members) {
        const member = memberKey(deviceId, seq);
        // A bug if it happens: an envelope is in at most one package at a time.
        if (packageOf.has(member)) throw new Error(`gateway log: ${member} is in packages ${packageOf.get(member)} and ${key}`);
        packageOf.set(member, key);
      }
    }
    const attempts = new Map<string, number>();
    for (const { key, value } of this.attemptCounts.getRange()) attempts.set(memberKey(key[0], key[1]), value);
    for (const { key, value } of this.records.getRange()) {
      const [deviceId, seq] = key;
      const member = memberKey(deviceId, seq);
      const packageHash = packageOf.get(member);
      const fields = decodeLogRecord(value);
      const base = { deviceId, seq, ...fields, attempts: attempts.get(member) ?? 0 };
      yield packageHash === undefined ? { ...base, state: "pending" } : { ...base, state: "submitted", packageHash };
    }
  }

  /** Entries in the log: LMDB's own count (mdb_stat), not a scan, so it is cheap to ask each second with a large backlog. */
  get count(): number {
    return (this.records.getStats() as { entryCount: number }).entryCount;
  }

  async close(): Promise<void> {
    this.commitQueued();
    await this.root.close();
  }

  /**
   * Converts a version 1 log (database `envelopes`: whole entries, the envelope as received) to
   * this layout, in one transaction, and drops the old database; a crash during it leaves the
   * version 1 log as it was. Each logged envelope was accepted, so it decodes; one that does
   * not is a damaged log, and opening fails loudly rather than drop a PUBACKed envelope.
   */
  private migrateVersion1(): number {
    // lmdb-js: with `create: false`, openDB returns undefined for a database that does not exist.
    const legacy = this.root.openDB<Version1Entry, [string, number]>({ name: "envelopes", create: false } as DatabaseOptions & { name: string }) as
      | Database<Version1Entry, [string, number]>
      | undefined;
    if (legacy === undefined) return 0;
    let converted = 0;
    this.root.transactionSync(() => {
      const members = new Map<string, { serviceId: number; members: [string, number][] }>();
      for (const { value: old } of legacy.getRange()) {
        const decoded = decodeEnvelope(old.envelope);
        if (!decoded.ok)
          throw new Error(`gateway log: version 1 entry ${old.deviceId}/${old.seq} no longer decodes (${decoded.error.code}); the log is damaged`);
        this.records.putSync(
          [old.deviceId, old.seq],
          encodeLogRecord({
            serviceId: old.serviceId,
            order: old.order,
            acceptedAtMs: old.acceptedAtMs,
            signingBytes: signingBytes(decoded.envelope),
            signature: decoded.envelope.signature,
          }),
        );
        if ((old.attempts ?? 0) > 0) this.attemptCounts.putSync([old.deviceId, old.seq], old.attempts!);
        if (old.state === "submitted" && old.packageHash !== undefined) {
          const p = members.get(old.packageHash) ?? { serviceId: old.serviceId, members: [] };
          p.members.push([old.deviceId, old.seq]);
          members.set(old.packageHash, p);
        }
        converted++;
      }
      for (const [hash, p] of members) this.packages.putSync(hash, p);
      legacy.dropSync();
    });
    return converted;
  }
}

function memberKey(deviceId: string, seq: number): string {
  return `${deviceId}/${seq}`;
}

function packageHashesOf(entries: readonly LogEntry[]): Set<string> {
  const hashes = new Set<string>();
  for (const e of entries) if (e.packageHash !== undefined) hashes.add(e.packageHash);
  return hashes;
}

/** `w` with `seq` accepted; unchanged if it already holds it or it is too old to tell apart. */
function withSeq(w: SeqWindow, seq: number): SeqWindow {
  const verdict = judgeSeq(w, seq);
  return verdict === "new" || verdict === "too-far-ahead" ? acceptSeq(w, seq) : w;
}
