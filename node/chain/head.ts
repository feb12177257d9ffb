/**
 * The head of the node's chain: the best block, the state as of it (the node's one live State,
 * which each imported block changes in place) and the undo logs of the most recent blocks, so a
 * client can read the state of a block that is no longer the best. One author, no forks: the
 * best block is the last one imported (README, "What is out of scope").
 */
import { JamgateError } from "../../devices/protocol/errors.ts";
import { bytesEqual, toHex } from "../codec/jam.ts";
import type { IntakeView } from "../intake/intake.ts";
import { StateComponents } from "../state/components.ts";
import { type Kv, PastState, type State, type UndoLog } from "../state/kv.ts";
import type { Store } from "../storage/store.ts";
import type { ChainParams } from "./params.ts";

/**
 * Blocks whose state can still be read (JIP-2 queries take a header hash): a client that asks
 * for the best block and then reads its state must not lose a race with the next block. GP's
 * recent history H is 8 blocks; 32 covers more than 3 s of 100 ms slots.
 */
export const RECENT_STATES_MAX = 32;

export interface BestBlock {
  readonly slot: number;
  readonly hash: Uint8Array;
  /** Posterior state root: the state's root now. */
  readonly stateRoot: Uint8Array;
}

export class ChainHead {
  private current: BestBlock;
  /** Undo logs of the most recent blocks, newest first (at most RECENT_STATES_MAX). */
  private readonly undoLogs: UndoLog[] = [];

  constructor(
    private readonly params: ChainParams,
    private readonly store: Store,
    /** The state as of the best block. */
    readonly state: State,
  ) {
    const bestSlot = store.bestSlot();
    const stored = bestSlot === null ? null : store.block(bestSlot);
    if (stored === null) throw new Error("store has no best block after genesis");
    this.current = { slot: stored.slot, hash: stored.hash, stateRoot: stored.stateRoot };
  }

  get best(): BestBlock {
    return this.current;
  }

  /** A block was imported into `state` and stored: it is the best now; `previous` undoes it. */
  advance(best: BestBlock, previous: UndoLog["previous"]): void {
    this.current = best;
    this.undoLogs.unshift({ slot: best.slot, previous });
    if (this.undoLogs.length > RECENT_STATES_MAX) this.undoLogs.pop();
  }

  /** Throws if the state's root is not the best block's: the store or the in-memory state is corrupt. */
  checkStateRoot(): void {
    const root = this.state.root();
    if (!bytesEqual(root, this.current.stateRoot))
      throw new Error(`stored state root ${toHex(root)} is not the best block's ${toHex(this.current.stateRoot)}: store corrupt`);
  }

  /** The best block's state with its slot, and the blocks intake may take as anchors. */
  intakeView(): IntakeView {
    return {
      state: new StateComponents(this.state, this.params),
      bestSlot: this.current.slot,
      block: (hash: Uint8Array) => {
        const slot = this.store.slotOf(hash);
        const stored = slot === null ? null : this.store.block(slot);
        return stored === null ? null : { slot: stored.slot, stateRoot: stored.stateRoot };
      },
    };
  }

  /**
   * The state as of `headerHash`: the best block's, or a recent one's through the undo logs.
   * Older states are not kept (their blocks and state roots are): JG_ERR_RPC_BLOCK_UNKNOWN.
   */
  stateAt(headerHash: Uint8Array): { kv: Kv & { keys(): Iterable<string> }; components: StateComponents } {
    const slot = this.store.slotOf(headerHash);
    if (slot === null) throw new JamgateError("JG_ERR_RPC_BLOCK_UNKNOWN", `no block ${toHex(headerHash)}`);
    const later = this.undoLogs.filter((log) => log.slot > slot);
    const earliest = (this.undoLogs.at(-1)?.slot ?? this.current.slot + 1) - 1;
    if (slot < earliest) {
      throw new JamgateError("JG_ERR_RPC_BLOCK_UNKNOWN", `the node keeps the state of the last ${RECENT_STATES_MAX} blocks; slot ${slot} is older`);
    }
    const kv = new PastState(this.state, later);
    return { kv, components: new StateComponents(kv, this.params) };
  }
}
