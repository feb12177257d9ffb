/**
 * Replay: rebuilds the state from genesis by importing every stored block through the same
 * state-transition function the author used, checking each block's parent link, prior state
 * root (in the header) and posterior state root (stored beside it). This is the determinism
 * claim made checkable: same blocks ⇒ same state roots.
 */
import { Block } from "@typeberry/lib/block";
import type { ServiceResolver } from "../accumulate/accumulate.ts";
import { bytesEqual, decode, toHex } from "../codec/jam.ts";
import type { Store } from "../storage/store.ts";
import { genesisState, type GenesisService } from "./genesis.ts";
import { headerHash } from "./block.ts";
import type { ChainParams } from "./params.ts";
import { applyBlock } from "./stf.ts";
import { devValidatorKeys } from "./validators.ts";

export interface ReplayReport {
  readonly blocks: number;
  readonly finalStateRoot: Uint8Array;
}

export function replayChain(
  params: ChainParams,
  store: Store,
  services: readonly GenesisService[],
  resolve: ServiceResolver,
  onBlock: (slot: number, stateRoot: Uint8Array) => void = () => {},
): ReplayReport {
  const state = genesisState(
    params,
    devValidatorKeys(params.validatorsCount).map((v) => v.publicKey),
    services,
  );
  const genesis = store.block(0);
  if (genesis === null) throw new Error("store has no genesis block");
  let parentHash = genesis.hash;
  let root = state.root();
  if (!bytesEqual(root, genesis.stateRoot)) throw new Error(`genesis state root ${toHex(root)} differs from the stored ${toHex(genesis.stateRoot)}`);
  let blocks = 0;
  for (const stored of store.blocksFrom(1)) {
    const block = decode(Block.Codec, stored.encoded, params.spec) as Block;
    if (!bytesEqual(headerHash(params, block.header), stored.hash)) throw new Error(`block at slot ${stored.slot}: stored hash does not match its header`);
    const result = applyBlock(state, params, resolve, block, parentHash, root);
    if (!result.ok) throw new Error(`block at slot ${stored.slot} does not import: ${result.error}`);
    root = state.root();
    if (!bytesEqual(root, stored.stateRoot))
      throw new Error(`block at slot ${stored.slot}: replayed state root ${toHex(root)} differs from the stored ${toHex(stored.stateRoot)}`);
    parentHash = stored.hash;
    blocks++;
    onBlock(stored.slot, root);
  }
  return { blocks, finalStateRoot: root };
}
