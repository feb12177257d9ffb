/**
 * Test support for state-db.test.ts: a process that writes blocks of state changes to a Store as
 * fast as it can, printing each block's slot once it has committed, until it is killed. The
 * changes of a slot are a pure function of the slot (`changesOf`), so a test that kills it with
 * SIGKILL can recompute the state of whatever block the store holds after the crash.
 *
 *   node --import tsx node/storage/testing/crash-writer.ts DATA_DIR
 */
import { pathToFileURL } from "node:url";
import { toHex } from "../../codec/jam.ts";
import { Store } from "../store.ts";

/**
 * The blocks' shape: distinct keys, and keys each block changes. Many more keys than changes, so a
 * change is often a key's last for dozens of blocks, and losing one shows.
 */
export interface BlockShape {
  readonly keys: number;
  readonly changesPerBlock: number;
}
export const CRASH_SHAPE: BlockShape = { keys: 20_000, changesPerBlock: 400 };

export function crashKey(i: number): string {
  return toHex(Uint8Array.from({ length: 31 }, (_, b) => (b < 4 ? (i >>> (8 * b)) & 0xff : (i * 131 + b * 7) & 0xff)));
}

/** xorshift32 from `seed` (not 0). */
function generator(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
}

/** The changes block `slot` makes: `shape.changesPerBlock` keys, a fifth removed, the rest set to values of 0–200 bytes. */
export function changesOf(slot: number, shape: BlockShape = CRASH_SHAPE): Map<string, Uint8Array | null> {
  const next = generator(slot * 2_654_435_761);
  const changes = new Map<string, Uint8Array | null>();
  while (changes.size < shape.changesPerBlock) {
    const key = crashKey(next() % shape.keys);
    changes.set(key, next() % 5 === 0 ? null : Uint8Array.from({ length: next() % 200 }, () => next() & 0xff));
  }
  return changes;
}

/** The state after blocks 1..`slot` over an empty genesis. */
export function stateAfter(slot: number, shape: BlockShape = CRASH_SHAPE): Map<string, Uint8Array> {
  const state = new Map<string, Uint8Array>();
  for (let s = 1; s <= slot; s++)
    for (const [key, value] of changesOf(s, shape)) {
      if (value === null) state.delete(key);
      else state.set(key, value);
    }
  return state;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const store = new Store(process.argv[2]!);
  if (store.bestSlot() === null) store.writeGenesis({ slot: 0, hash: new Uint8Array(32), encoded: new Uint8Array(1), stateRoot: new Uint8Array(32) }, []);
  for (let slot = store.bestSlot()! + 1; ; slot++) {
    const hash = new Uint8Array(32);
    new DataView(hash.buffer).setUint32(0, slot, true);
    store.writeBlock({
      block: { slot, hash, encoded: new Uint8Array(1), stateRoot: new Uint8Array(32) },
      stateChanges: changesOf(slot),
      packages: [],
      reports: new Map(),
    });
    process.stdout.write(`${slot}\n`);
  }
}
