/**
 * The indexer against a fake node that serves real GP-encoded blocks (sealed by node/chain/block.ts)
 * and an energy market's state: it starts at the first block it sees, fills a gap in the best
 * blocks through parent links (each block's posterior state root taken from its child's header),
 * and catches the market up from the index's mark, skipping the intervals the service pruned.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { BlockDescriptor, NodeApi } from "../../node/api.ts";
import { encodeBlock, headerHash, makeExtrinsic, sealBlock } from "../../node/chain/block.ts";
import { tinyParams } from "../../node/chain/params.ts";
import { keyPairFromSeed } from "../../node/crypto/ed25519.ts";
import { hash } from "../../node/crypto/hash.ts";
import { encodeIntervalSummary, encodeLedgerEntries, encodeMarketConfig, encodeMarketProgress } from "../../services/energy-trading/storage.ts";
import { CONFIG_KEY, intervalKey, LEDGER_INTERVALS_KEPT, ledgerKey, MARKET_KEY, type MarketConfig } from "../../services/energy-trading/types.ts";
import { LedgerIndex } from "./index.ts";
import { indexerLimits, LedgerIndexer } from "./indexer.ts";

const ENERGY_ID = 3;
const author = keyPairFromSeed(new Uint8Array(32).fill(5));
const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
/** The posterior state root of the block at `slot` (any distinct value will do). */
const rootAt = (slot: number) => hash(Uint8Array.of(slot));

/** Blocks 0..n on one chain, each committing to its parent's root as its prior state root. */
function chain(n: number): { readonly hash: Uint8Array; readonly bytes: Uint8Array }[] {
  const out: { hash: Uint8Array; bytes: Uint8Array }[] = [];
  let parent: Uint8Array = new Uint8Array(32);
  for (let slot = 0; slot <= n; slot++) {
    const block = sealBlock(
      tinyParams,
      { parentHash: parent, priorStateRoot: slot === 0 ? new Uint8Array(32) : rootAt(slot - 1), slot, authorIndex: slot % 6 },
      makeExtrinsic([], []),
      author,
    );
    const h = headerHash(tinyParams, block.header);
    out.push({ hash: h, bytes: encodeBlock(tinyParams, block) });
    parent = h;
  }
  return out;
}

const market: MarketConfig = {
  startMs: 0n,
  intervalMs: 60_000,
  startSlot: 0,
  marketMsPerSlot: 1_000,
  mode: "pay-as-clear",
  importPriceMicrosPerKwh: 300_000,
  exportPriceMicrosPerKwh: 80_000,
  settlementDelayMs: 0,
};

let dir: string;
let index: LedgerIndex;
let indexer: LedgerIndexer | null = null;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "jamgate-indexer-"));
  index = new LedgerIndex({
    path: join(dir, "ledger"),
    services: [{ name: "energy-trading", serviceId: ENERGY_ID, codeHash: new Uint8Array(32), kinds: ["meter", "agent"] }],
  });
});

afterEach(async () => {
  await indexer?.stop();
  indexer = null;
  await index.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A node whose best block the test moves; its energy market has cleared below `progress.nextClear` and settled below `progress.nextSettle`. */
function fakeNode(blocks: ReturnType<typeof chain>, progress: { nextClear: number; nextSettle: number }) {
  let best = 0;
  let onBlock: ((b: BlockDescriptor) => void) | null = null;
  const byHash = new Map(blocks.map((b) => [hex(b.hash), b.bytes]));
  const household = new Uint8Array(16).fill(0xaa);
  const reads: string[] = [];
  const state = (key: Uint8Array): Uint8Array | null => {
    if (hex(key) === hex(CONFIG_KEY)) return encodeMarketConfig(market);
    if (hex(key) === hex(MARKET_KEY)) return encodeMarketProgress(progress);
    for (let k = Math.max(0, progress.nextSettle - LEDGER_INTERVALS_KEPT); k < progress.nextClear; k++) {
      const settled = k < progress.nextSettle;
      if (hex(key) === hex(intervalKey(k))) {
        reads.push(`interval ${k}`);
        return encodeIntervalSummary({
          settled,
          clearingPriceMicrosPerKwh: null,
          tradedWh: 0n,
          orders: 0,
          trades: 0,
          ledgerEntries: settled ? 1 : 0,
          clearedSlot: k,
          settledSlot: settled ? k + 1 : 0,
        });
      }
      if (settled && hex(key) === hex(ledgerKey(k)))
        return encodeLedgerEntries([
          { buyer: household as never, seller: "grid", energyWh: k, priceMicrosPerKwh: 300_000, amountMicros: BigInt(300 * k), reason: "grid-import" },
        ]);
    }
    return null;
  };
  const api = {
    bestBlock: async () => ({ headerHash: blocks[best]!.hash, slot: best }),
    subscribeBestBlock: async (cb: (b: BlockDescriptor) => void) => {
      onBlock = cb;
      return () => {
        onBlock = null;
      };
    },
    block: async (h: Uint8Array) => byHash.get(hex(h)) ?? null,
    stateRoot: async (h: Uint8Array) => rootAt(blocks.findIndex((b) => hex(b.hash) === hex(h))),
    serviceValue: async (_at: Uint8Array, serviceId: number, key: Uint8Array) => (serviceId === ENERGY_ID ? state(key) : null),
  } as unknown as NodeApi;
  return {
    api,
    reads,
    /** Makes `slot` the best block and announces it. */
    advance(slot: number) {
      best = slot;
      onBlock?.({ headerHash: blocks[slot]!.hash, slot });
    },
    setBest(slot: number) {
      best = slot;
    },
  };
}

describe("the ledger indexer", () => {
  it("starts at the first block it sees and fills a gap through parent links, each block's root from its child", async () => {
    const blocks = chain(12);
    const node = fakeNode(blocks, { nextClear: 0, nextSettle: 0 });
    node.setBest(3);
    indexer = new LedgerIndexer({ api: node.api, params: tinyParams, index });
    await indexer.start();
    await indexer.idle();
    // No backfill before the first block seen.
    expect((await index.blocks({ limit: 20 })).items.map((b) => b.slot)).toEqual([3]);
    // Blocks 4..8 announced as one (a best block that jumped, or a stop): all five are indexed.
    node.advance(8);
    await indexer.idle();
    const held = (await index.blocks({ limit: 20 })).items;
    expect(held.map((b) => b.slot)).toEqual([8, 7, 6, 5, 4, 3]);
    for (const b of held) {
      expect(b.hash).toBe(hex(blocks[b.slot]!.hash));
      expect(b.stateRoot).toBe(hex(rootAt(b.slot)));
      expect(b.parentHash).toBe(hex(blocks[b.slot - 1]!.hash));
      expect(b.author).toBe(b.slot % 6);
    }
    node.advance(9);
    await indexer.idle();
    expect((await index.head())!.slot).toBe(9);
  });

  it("reads back at most blocksBackMax blocks in a pass, the newest", async () => {
    const blocks = chain(12);
    const node = fakeNode(blocks, { nextClear: 0, nextSettle: 0 });
    indexer = new LedgerIndexer({ api: node.api, params: tinyParams, index, limits: { blocksBackMax: 4 } });
    await indexer.start();
    await indexer.idle();
    node.advance(12);
    await indexer.idle();
    expect((await index.blocks({ limit: 20 })).items.map((b) => b.slot)).toEqual([12, 11, 10, 9, 0]);
  });

  it("catches the market up from its mark, skipping pruned intervals, a bounded number a pass, and holds the open one as cleared", async () => {
    const blocks = chain(40);
    const progress = { nextClear: 681, nextSettle: 680 };
    const node = fakeNode(blocks, progress);
    indexer = new LedgerIndexer({ api: node.api, params: tinyParams, index });
    await indexer.start();
    await indexer.idle();
    const kept = progress.nextSettle - LEDGER_INTERVALS_KEPT;
    // The first pass: the pruned ones skipped, then intervalsPerPassMax from the oldest kept.
    expect(index.marketMark().nextSettled).toBe(kept + indexerLimits.intervalsPerPassMax);
    expect(node.reads[0]).toBe(`interval ${kept}`);
    for (let slot = 1; index.marketMark().nextCleared < progress.nextClear; slot++) {
      node.advance(slot);
      await indexer.idle();
    }
    expect(index.marketMark()).toEqual({ nextCleared: 681, nextSettled: 680 });
    expect(await index.interval(kept - 1)).toBeNull();
    expect(await index.interval(kept)).toMatchObject({ settled: true, settledSlot: kept + 1, startMs: kept * 60_000, endMs: (kept + 1) * 60_000 });
    expect(await index.interval(680)).toMatchObject({ settled: false, households: [] });
    // Each interval read once.
    expect(new Set(node.reads).size).toBe(node.reads.length);
    const entries = await index.entries({ interval: 679 }, { limit: 5 });
    expect(entries.items).toMatchObject([
      { kind: "grid-import", interval: 679, index: 0, seller: "grid", energyWh: 679, amountMicros: String(300 * 679), slot: 680 },
    ]);
    // When the market settles the open interval, the next pass settles it in the index.
    progress.nextClear = 682;
    progress.nextSettle = 681;
    node.advance(39);
    await indexer.idle();
    expect(await index.interval(680)).toMatchObject({ settled: true });
    expect(index.marketMark()).toEqual({ nextCleared: 682, nextSettled: 681 });
  });
});
