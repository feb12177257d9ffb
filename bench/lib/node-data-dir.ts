/**
 * A node data dir whose best block's state is its genesis plus given entries, for benchmarks of the
 * node at a size no test reaches block by block (1,000,000 device records; a week of market
 * history). The node writes its genesis as it always does (JamNode.open on a new dir); the entries
 * are then written through the node's Store as one block's state changes, in one transaction, at
 * slot 1, with the state root the node's State gives them. That block record is a stand-in: its
 * bytes are the genesis block's, so the chain does not replay (`jamgate node replay`), but
 * everything JamNode.open reads (the best block's slot, hash and state root, the state entries)
 * is as after real blocks, and the node checks the entries against the root when it opens.
 */
import { type GenesisService, nativeCodeHash } from "../../node/chain/genesis.ts";
import type { ChainName } from "../../node/chain/params.ts";
import { hashParts } from "../../node/crypto/hash.ts";
import { JamNode } from "../../node/node.ts";
import type { KeyHex } from "../../node/state/kv.ts";
import { State } from "../../node/state/kv.ts";
import { Store } from "../../node/storage/store.ts";

export interface DataDirWritten {
  /** State entries in the best block's state: the genesis's and the given ones. */
  readonly stateEntries: number;
  readonly stateRoot: Uint8Array;
  /** The one transaction that wrote the given entries. */
  readonly writeMs: number;
}

export async function writeDataDirWithEntries(
  dataDir: string,
  services: readonly GenesisService[],
  entries: Iterable<readonly [KeyHex, Uint8Array]>,
  chain: ChainName = "tiny",
): Promise<DataDirWritten> {
  const node = await JamNode.open({ dataDir, chain, services });
  await node.stop();
  const store = new Store(dataDir);
  try {
    const state = State.fromEntries(store.stateEntries());
    const changes = new Map<KeyHex, Uint8Array>();
    for (const [key, value] of entries) {
      state.set(key, value);
      changes.set(key, value);
    }
    const stateRoot = state.root();
    const genesis = store.block(0);
    if (genesis === null) throw new Error(`${dataDir} has no genesis block after the node opened it`);
    const hash = hashParts(nativeCodeHash("bench-stand-in-block"), stateRoot);
    const started = performance.now();
    store.writeBlock({ block: { slot: 1, hash, encoded: genesis.encoded, stateRoot }, stateChanges: changes, packages: [], reports: new Map() });
    return { stateEntries: state.size, stateRoot, writeMs: performance.now() - started };
  } finally {
    await store.close();
  }
}
