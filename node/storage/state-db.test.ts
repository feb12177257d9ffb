/**
 * The store's state entries (state-db.ts): whatever blocks were written, a store opened on the dir
 * reads back the last block's state — after the journal has wrapped many times, after a block
 * written through, from a version 1 data dir, and after the writing process was killed with
 * SIGKILL at an arbitrary point.
 */
import { spawn } from "node:child_process";
import { rmSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { open } from "lmdb";
import { afterEach, describe, expect, it } from "vitest";
import { toHex } from "../codec/jam.ts";
import { tempDir } from "../testing/fixtures.ts";
import { JOURNAL_CHANGES_MAX, STATE_SLICES, StateDb } from "./state-db.ts";
import { Store } from "./store.ts";
import { type BlockShape, changesOf, stateAfter } from "./testing/crash-writer.ts";

/** Sparse changes: a key changed in one block is left alone by the next ~200 on average, so a lost journal record or slice write leaves a stale value. */
const SPARSE: BlockShape = { keys: 20_000, changesPerBlock: 100 };

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function newDir(): string {
  const dir = tempDir("jamgate-state-db-");
  dirs.push(dir);
  return dir;
}

const noRoot = new Uint8Array(32);

function genesis(store: Store, state: Iterable<readonly [string, Uint8Array]> = []): void {
  store.writeGenesis({ slot: 0, hash: new Uint8Array(32), encoded: new Uint8Array(1), stateRoot: noRoot }, state);
}

function writeBlock(store: Store, slot: number, changes: ReadonlyMap<string, Uint8Array | null>): void {
  const hash = new Uint8Array(32);
  new DataView(hash.buffer).setUint32(0, slot, true);
  store.writeBlock({ block: { slot, hash, encoded: new Uint8Array(1), stateRoot: noRoot }, stateChanges: changes, packages: [], reports: new Map() });
}

/** A store's (or its StateDb's) state against `expected`: same keys, same bytes (compared by Buffer.compare). */
function expectState(store: { stateEntries(): Iterable<[string, Uint8Array]> }, expected: ReadonlyMap<string, Uint8Array>): void {
  const read = new Map(store.stateEntries());
  expect(read.size).toBe(expected.size);
  const differing = [...expected].filter(([key, value]) => read.get(key) === undefined || Buffer.compare(read.get(key)!, value) !== 0);
  expect(differing.map(([key]) => key)).toEqual([]);
}

describe("state entries in the store", () => {
  it("reads back the last block's state when reopened, after the journal has wrapped many times", async () => {
    const dir = newDir();
    let store = new Store(dir);
    genesis(store);
    const blocks = 5 * STATE_SLICES;
    // Reopened in the middle of a sweep, at its end, and after several.
    const reopenAt = new Set([7, STATE_SLICES, STATE_SLICES + 1, 3 * STATE_SLICES + 5, blocks]);
    for (let slot = 1; slot <= blocks; slot++) {
      writeBlock(store, slot, changesOf(slot, SPARSE));
      if (reopenAt.has(slot)) {
        expectState(store, stateAfter(slot, SPARSE));
        await store.close();
        store = new Store(dir);
        expect(store.bestSlot()).toBe(slot);
        expectState(store, stateAfter(slot, SPARSE));
      }
    }
    await store.close();
  });

  it("writes a block of more than JOURNAL_CHANGES_MAX changes through, with what was pending, and goes on from there", async () => {
    const dir = newDir();
    let store = new Store(dir);
    genesis(store);
    for (let slot = 1; slot <= 10; slot++) writeBlock(store, slot, changesOf(slot));
    const expected = stateAfter(10);
    const bulk = new Map<string, Uint8Array | null>();
    for (let i = 0; bulk.size <= JOURNAL_CHANGES_MAX; i++) {
      const key = toHex(Uint8Array.from({ length: 31 }, (_, b) => (b < 4 ? (i >>> (8 * b)) & 0xff : 0xb0)));
      bulk.set(key, Uint8Array.of(i & 0xff, 1));
    }
    // Some of the earlier blocks' keys removed by the bulk block too.
    for (const key of [...expected.keys()].slice(0, 50)) bulk.set(key, null);
    writeBlock(store, 11, bulk);
    for (const [key, value] of bulk) {
      if (value === null) expected.delete(key);
      else expected.set(key, value);
    }
    for (let slot = 12; slot <= 20; slot++)
      for (const [key, value] of changesOf(slot)) {
        if (value === null) expected.delete(key);
        else expected.set(key, value);
      }
    for (let slot = 12; slot <= 20; slot++) writeBlock(store, slot, changesOf(slot));
    await store.close();
    store = new Store(dir);
    expectState(store, expected);
    await store.close();
  });

  it("moves a version 1 data dir's entries (hex keys in 'state') and reads them back; the old database is dropped", async () => {
    const dir = newDir();
    const expected = stateAfter(3);
    const v1 = open({ path: dir, compression: false });
    const state = v1.openDB<Uint8Array, string>({ name: "state", encoding: "binary" });
    await v1.transaction(() => {
      for (const [key, value] of expected) state.put(key, value);
    });
    await v1.close();
    let store = new Store(dir);
    expect(store.migratedStateEntries).toBe(expected.size);
    expectState(store, expected);
    writeBlock(store, 4, changesOf(4));
    await store.close();
    store = new Store(dir);
    expect(store.migratedStateEntries).toBe(0);
    expectState(store, stateAfter(4));
    await store.close();
  });

  it("reads back the state when the number of slices changed between opens, up and down", async () => {
    const dir = newDir();
    let slot = 0;
    // Each number of slices opened twice: 3 blocks after the change (records written under the old
    // number still needed), then more blocks than either number.
    for (const [slices, blocks] of [16, 64, 8, 64].flatMap((n) => [[n, 3] as const, [n, 70] as const])) {
      const root = open({ path: dir, compression: false, maxDbs: 8 });
      const db = new StateDb(root, root.openDB({ name: "meta" }), slices);
      expectState(db, stateAfter(slot, SPARSE));
      for (const end = slot + blocks; slot < end; ) {
        const prepared = db.prepareBlock(++slot, changesOf(slot, SPARSE));
        root.transactionSync(() => prepared.write());
        prepared.committed();
      }
      expectState(db, stateAfter(slot, SPARSE));
      await root.close();
    }
  });

  it("holds a whole block's state after the writing process is killed with SIGKILL while it writes", async () => {
    const dir = newDir();
    const writer = spawn(process.execPath, ["--import", "tsx", fileURLToPath(new URL("./testing/crash-writer.ts", import.meta.url)), dir], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    // Killed once the journal has wrapped (more than STATE_SLICES blocks), in the middle of whatever it is doing.
    let written = 0;
    const exited = new Promise<NodeJS.Signals | null>((resolve) => writer.on("exit", (_code, signal) => resolve(signal)));
    await new Promise<void>((resolve, reject) => {
      writer.stdout.on("data", (chunk: Buffer) => {
        written += chunk
          .toString()
          .split("\n")
          .filter((l) => l !== "").length;
        if (written > STATE_SLICES + 20) resolve();
      });
      writer.on("exit", (code) => reject(new Error(`the writer exited (${code}) after ${written} blocks`)));
    });
    writer.kill("SIGKILL");
    expect(await exited).toBe("SIGKILL");
    const store = new Store(dir);
    const best = store.bestSlot()!;
    expect(best).toBeGreaterThanOrEqual(written);
    expectState(store, stateAfter(best));
    await store.close();
  }, 120_000);
});
