/**
 * The gateway's durable log (LMDB): every envelope the gateway accepts is written here before
 * its PUBACK, with the device's sequence window, and stays until its settlement (receipt or
 * refusal) has been told. lmdb-js batches asynchronous puts into one transaction per turn of
 * the event loop and resolves them once the transaction is committed to disk, so thousands of
 * envelopes a second share a commit (group commit) while each PUBACK still waits for its write.
 */
import { open, type Database, type RootDatabase } from "lmdb";
import { EMPTY_WINDOW, type SeqWindow } from "./window.ts";

/** Reserved address space for the log; LMDB takes disk only as it is used. */
const MAP_SIZE_BYTES = 16 * 1024 ** 3;

export type EntryState = "pending" | "submitted";

/** An accepted envelope. */
export interface LogEntry {
  readonly deviceId: string;
  readonly seq: number;
  /** The envelope as received (CBOR). */
  readonly envelope: Uint8Array;
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

interface StoredWindow {
  readonly highest: number;
  readonly below: string;
}

export class DurableLog {
  private readonly root: RootDatabase;
  private readonly entries: Database<LogEntry, [string, number]>;
  private readonly windows: Database<StoredWindow, string>;
  private nextOrder = 0;

  constructor(path: string) {
    this.root = open({ path, mapSize: MAP_SIZE_BYTES, compression: false });
    this.entries = this.root.openDB({ name: "envelopes" });
    this.windows = this.root.openDB({ name: "seq-windows" });
    // The log holds only unsettled entries (a bounded backlog), so one scan at start is cheap.
    for (const { value } of this.entries.getRange()) this.nextOrder = Math.max(this.nextOrder, value.order + 1);
  }

  window(deviceId: string): SeqWindow {
    const w = this.windows.get(deviceId);
    return w === undefined ? EMPTY_WINDOW : { highest: w.highest, below: BigInt(`0x${w.below}`) };
  }

  /**
   * Appends an accepted envelope and the device's new window; resolves once both are on disk.
   * The caller has already moved its in-memory window, so a second copy of the envelope arriving
   * before this resolves is judged a replay.
   */
  async append(entry: Omit<LogEntry, "order" | "state" | "attempts">, window: SeqWindow): Promise<LogEntry> {
    const full: LogEntry = { ...entry, order: this.nextOrder++, state: "pending", attempts: 0 };
    await Promise.all([
      this.entries.put([entry.deviceId, entry.seq], full),
      this.windows.put(entry.deviceId, { highest: window.highest, below: window.below.toString(16) }),
    ]);
    return full;
  }

  /** Marks entries as submitted in `packageHash` (durably, before the package is sent). */
  async markSubmitted(entries: readonly LogEntry[], packageHash: string): Promise<LogEntry[]> {
    const updated = entries.map((e) => ({ ...e, state: "submitted" as const, packageHash }));
    await this.root.transaction(() => {
      for (const e of updated) this.entries.put([e.deviceId, e.seq], e);
    });
    return updated;
  }

  /** Puts entries back to pending after their package failed. */
  async markPending(entries: readonly LogEntry[], countAttempt: boolean): Promise<LogEntry[]> {
    const updated = entries.map((e) => {
      const { packageHash: _, ...rest } = e;
      return { ...rest, state: "pending" as const, attempts: e.attempts + (countAttempt ? 1 : 0) };
    });
    await this.root.transaction(() => {
      for (const e of updated) this.entries.put([e.deviceId, e.seq], e);
    });
    return updated;
  }

  /** Removes settled (or refused) entries: their outcome has been told and their seq is in the window. */
  async remove(entries: readonly LogEntry[]): Promise<void> {
    await this.root.transaction(() => {
      for (const e of entries) this.entries.remove([e.deviceId, e.seq]);
    });
  }

  /** Every entry, for recovery after a restart. */
  *all(): Generator<LogEntry> {
    for (const { value } of this.entries.getRange()) yield value;
  }

  get count(): number {
    return this.entries.getCount();
  }

  async close(): Promise<void> {
    await this.root.close();
  }
}
