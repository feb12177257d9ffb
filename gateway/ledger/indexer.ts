/**
 * Feeds the ledger index (index.ts) from the chain, off the node's critical path: it follows the
 * node's best block (NodeApi.subscribeBestBlock) and, for each, reads the block (NodeApi.block,
 * decoded with typeberry's Block codec) into a BlockView with its reports (GP 11.1.4: the
 * guarantees' work reports, E_G), its posterior state root (NodeApi.stateRoot), and the energy
 * market's progress (the energy-trading service's "market" key): each interval newly cleared or
 * settled is read from the service's state ("interval/k", and once settled "ledger/k") and written
 * with its ledger entries; and wifi-billing's ledger: the entries each slot's block wrote
 * ("ledger/<slot>"), read slot by slot from the index's mark up to the best block, each usage
 * entry with its router's owner (read once per router: an owner never changes).
 *
 * Blocks are indexed from the first block the index sees: a new index does not backfill the
 * chain before it (the node keeps its blocks, not necessarily the states a view needs). After a
 * stop, the blocks between the last one indexed and the new best are read back through their
 * parent links, at most indexerLimits.blocksBackMax of them (the newest), and the market is caught
 * up from the last interval the index holds, skipping intervals the service has already pruned
 * from its state (it keeps the last LEDGER_INTERVALS_KEPT).
 *
 * One pass at a time, on the newest best block: blocks announced while a pass runs are not
 * queued, the next pass reaches them through the parent links. A failed pass (a node restarting,
 * say) is logged and the next block's pass picks up from the index.
 *
 * Each pass ends by pruning the index to its retention bounds as of the pass's block (index.ts,
 * ledgerIndexLimits.retentionSlots and receiptEntriesKeptMax): at most pruneWritesPerPassMax
 * bounded transactions, so pruning runs off settlement's path, a batch at a time, and a backlog
 * (a lowered retention, a long stop) drains over a few passes.
 */
import type { BlockDescriptor, NodeApi } from "../../node/api.ts";
import { Block, type Block as BlockType, decode, encode, toHex, WorkReport } from "../../node/codec/jam.ts";
import type { ChainParams } from "../../node/chain/params.ts";
import { hash } from "../../node/crypto/hash.ts";
import {
  CONFIG_KEY,
  decodeIntervalSummary,
  decodeLedgerEntries,
  decodeMarketConfig,
  decodeMarketProgress,
  intervalKey,
  intervalStartMs,
  LEDGER_INTERVALS_KEPT,
  ledgerKey,
  MARKET_KEY,
  type MarketConfig,
} from "../../services/energy-trading/types.ts";
import {
  decodeLedgerEntries as decodeWifiLedgerEntries,
  decodeRouter,
  LEDGER_SLOTS_KEPT,
  ledgerKey as wifiLedgerKey,
  routerKey,
} from "../../services/wifi-billing/types.ts";
import type { EnergyEntryInput, LedgerIndex, WifiEntryInput, WifiSlotInput } from "./index.ts";
import type { BlockView, ReportView } from "./types.ts";

export interface IndexerLimits {
  readonly blocksBackMax: number;
  readonly intervalsPerPassMax: number;
  readonly pruneWritesPerPassMax: number;
  readonly wifiSlotsPerPassMax: number;
}

export const indexerLimits: IndexerLimits = {
  /**
   * Blocks read back through parent links in one pass, to the last one indexed: a stop of up to
   * this many slots is filled in (100 s of 100 ms test slots, 100 min of 6 s slots). A pass holds
   * their views (~1 KB each) until it writes them, oldest first.
   */
  blocksBackMax: 1_000,
  /** Energy intervals read and written in one pass: bounds a pass's state reads when catching up (LEDGER_INTERVALS_KEPT = 672 at most); the rest waits for the next block. */
  intervalsPerPassMax: 64,
  /**
   * Prune transactions (ledgerIndexLimits.pruneRowsPerWriteMax rows each) at the end of a pass:
   * 128,000 rows, ten times what a 6-second block adds at the target (~12,000 receipts), so a
   * backlog drains; at most ~1 s of CPU a pass, in 32 pieces with settlement's writes between them
   * (7–8 µs a receipt, measured: bench/ledger-prune.ts).
   */
  pruneWritesPerPassMax: 32,
  /**
   * Wi-Fi ledger slots read in one pass (a state read each, most of them empty or a few entries):
   * one pass keeps pace with a block a slot; catching up after a stop (the service keeps
   * LEDGER_SLOTS_KEPT = 14,400) takes a pass per 256 slots, the rest waiting for the next block.
   */
  wifiSlotsPerPassMax: 256,
};

/** Routers whose owner the indexer remembers (an owner never changes): ten times the 1,000-router network of the simulation's horizon; past it, the oldest are read again. */
const OWNERS_KEPT_MAX = 10_000;
const ZERO_ID = "00".repeat(16);

export interface IndexerDeps {
  readonly api: Pick<NodeApi, "subscribeBestBlock" | "bestBlock" | "block" | "stateRoot" | "serviceValue">;
  readonly params: ChainParams;
  /** Where it writes; the index names the energy-trading service whose market is followed (index.energyServiceId). */
  readonly index: LedgerIndex;
  readonly now?: () => number;
  /** Overrides of indexerLimits (tests). */
  readonly limits?: Partial<IndexerLimits>;
  readonly logger?: { warn(o: object, m: string): void };
}

/** A block as the index holds it, less what settlement adds (`accumulated`). */
export function blockViewOf(
  params: ChainParams,
  headerHash: Uint8Array,
  block: BlockType,
  stateRoot: Uint8Array,
  seenAtMs: number,
): Omit<BlockView, "accumulated"> {
  const reports: ReportView[] = block.extrinsic.guarantees.map((g) => {
    const r = g.report;
    let refineGas = 0n;
    for (const result of r.results) refineGas += BigInt(result.load.gasUsed);
    return {
      packageHash: toHex(r.workPackageSpec.hash.raw),
      reportHash: toHex(hash(encode(WorkReport.Codec, r, params.spec))),
      core: Number(r.coreIndex),
      serviceIds: uniqueSorted(r.results.map((result) => Number(result.serviceId))),
      erasureRoot: toHex(r.workPackageSpec.erasureRoot.raw),
      bundleBytes: Number(r.workPackageSpec.length),
      refineGasUsed: refineGas.toString(),
    };
  });
  return {
    slot: Number(block.header.timeSlotIndex),
    hash: toHex(headerHash),
    parentHash: toHex(block.header.parentHeaderHash.raw),
    priorStateRoot: toHex(block.header.priorStateRoot.raw),
    stateRoot: toHex(stateRoot),
    author: Number(block.header.bandersnatchBlockAuthorIndex),
    reports,
    assurances: block.extrinsic.assurances.length,
    serviceIds: uniqueSorted(reports.flatMap((r) => r.serviceIds)),
    seenAtMs,
  };
}

function uniqueSorted(ids: readonly number[]): number[] {
  return [...new Set(ids)].sort((a, b) => a - b);
}

export class LedgerIndexer {
  private readonly now: () => number;
  private readonly limits: IndexerLimits;
  private unsubscribe: (() => void) | null = null;
  /** The newest best block not yet passed over (one: a pass reaches older ones by parent links). */
  private latest: BlockDescriptor | null = null;
  private running: Promise<void> | null = null;
  private stopped = false;
  /** The market's configuration (set at genesis, never changed): read once. */
  private market: MarketConfig | null = null;
  /** Routers' owners, by router id (set at registration, never changed). */
  private readonly owners = new Map<string, string>();

  constructor(private readonly deps: IndexerDeps) {
    this.now = deps.now ?? Date.now;
    this.limits = { ...indexerLimits, ...deps.limits };
  }

  /** Follows the best block, starting with the current one (which catches the index up). */
  async start(): Promise<void> {
    this.stopped = false;
    this.unsubscribe = await this.deps.api.subscribeBestBlock((block) => this.offer(block));
    this.offer(await this.deps.api.bestBlock());
  }

  /** Stops following and waits for the pass under way. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.unsubscribe?.();
    this.unsubscribe = null;
    this.latest = null;
    await this.running;
  }

  /** Resolves once every block offered so far has been passed over (tests). */
  async idle(): Promise<void> {
    while (this.running !== null) await this.running;
  }

  private offer(block: BlockDescriptor): void {
    if (this.stopped) return;
    if (this.latest === null || block.slot >= this.latest.slot) this.latest = block;
    if (this.running !== null) return;
    this.running = (async () => {
      while (this.latest !== null && !this.stopped) {
        const head = this.latest;
        this.latest = null;
        try {
          await this.pass(head);
        } catch (e) {
          this.deps.logger?.warn({ err: String(e), slot: head.slot }, "ledger indexer: a pass failed; the next block's pass picks up from the index");
        }
      }
    })().finally(() => {
      this.running = null;
    });
  }

  private async pass(head: BlockDescriptor): Promise<void> {
    const seenAtMs = this.now();
    await this.indexBlocks(head, seenAtMs);
    const energy = this.deps.index.energyServiceId;
    if (energy !== null && !this.stopped) await this.indexMarket(head, energy, seenAtMs);
    const wifi = this.deps.index.wifiServiceId;
    if (wifi !== null && !this.stopped) await this.indexWifi(head, wifi, seenAtMs);
    await this.deps.index.prune(head.slot, this.limits.pruneWritesPerPassMax, () => this.stopped);
  }

  /** The head and, back through parent links, the blocks since the last one indexed, written oldest first. */
  private async indexBlocks(head: BlockDescriptor, seenAtMs: number): Promise<void> {
    const { api, index, params } = this.deps;
    if (index.hasBlock(toHex(head.headerHash))) return;
    const last = index.lastBlock();
    const headBlock = await this.readBlock(head.headerHash);
    if (headBlock === null) return;
    const views = [blockViewOf(params, head.headerHash, headBlock, await api.stateRoot(head.headerHash), seenAtMs)];
    // A block's posterior state root is its child's prior state root (GP 5.1 H_r).
    let child = headBlock;
    while (last !== null && views.length < this.limits.blocksBackMax && !this.stopped) {
      const parentHash = child.header.parentHeaderHash.raw;
      if (index.hasBlock(toHex(parentHash))) break;
      const parent = await this.readBlock(parentHash);
      if (parent === null || Number(parent.header.timeSlotIndex) <= last.slot) break;
      views.push(blockViewOf(params, parentHash, parent, child.header.priorStateRoot.raw, seenAtMs));
      child = parent;
    }
    for (const view of views.reverse()) await index.writeBlock(view);
  }

  private async readBlock(headerHash: Uint8Array): Promise<BlockType | null> {
    const bytes = await this.deps.api.block(headerHash);
    return bytes === null ? null : (decode(Block.Codec, bytes, this.deps.params.spec) as BlockType);
  }

  /**
   * wifi-billing's ledger entries of the slots from the index's mark to `head`, read at `head`
   * (the service keeps LEDGER_SLOTS_KEPT slots; older ones are gone), at most wifiSlotsPerPassMax
   * slots, written in one transaction with the mark.
   */
  private async indexWifi(head: BlockDescriptor, serviceId: number, seenAtMs: number): Promise<void> {
    const { api, index } = this.deps;
    const read = (key: Uint8Array) => api.serviceValue(head.headerHash, serviceId, key);
    const from = Math.max(index.wifiMark(), head.slot - LEDGER_SLOTS_KEPT + 1, 0);
    const to = Math.min(head.slot, from + this.limits.wifiSlotsPerPassMax - 1);
    if (from > to) return;
    const readAt = { hash: toHex(head.headerHash), seenAtMs };
    const slots: WifiSlotInput[] = [];
    for (let slot = from; slot <= to && !this.stopped; slot++) {
      const raw = await read(wifiLedgerKey(slot));
      if (raw === null) continue;
      const decoded = decodeWifiLedgerEntries(raw);
      if (!decoded.ok) throw new Error(`wifi-billing ledger ${slot}: ${decoded.error}`);
      const entries: WifiEntryInput[] = [];
      for (const e of decoded.value) {
        const router = toHex(e.router);
        const session = toHex(e.session);
        const hasRouter = router !== ZERO_ID;
        entries.push({
          reason: e.reason,
          session: session === ZERO_ID ? null : session,
          router: hasRouter ? router : null,
          client: toHex(e.client),
          inputOctets: e.inputOctets,
          outputOctets: e.outputOctets,
          priceMicrosPerGb: e.priceMicrosPerGb,
          amountMicros: e.amountMicros,
          feeMicros: e.feeMicros,
          attested: e.attested,
          // Usage pays the router's owner; stakes move the owner's own money (it is `client` there).
          owner: hasRouter && (e.reason === "usage" || e.reason === "balance-exhausted") ? await this.ownerOf(router, read) : null,
        });
      }
      slots.push({ slot, entries, readAt });
    }
    if (this.stopped) return;
    await index.writeWifiSlots(slots, to + 1);
  }

  private async ownerOf(router: string, read: (key: Uint8Array) => Promise<Uint8Array | null>): Promise<string | null> {
    const known = this.owners.get(router);
    if (known !== undefined) return known;
    const raw = await read(routerKey(router));
    const record = raw === null ? null : decodeRouter(raw);
    if (record === null || !record.ok) return null;
    const owner = toHex(record.value.owner);
    if (this.owners.size >= OWNERS_KEPT_MAX) this.owners.delete(this.owners.keys().next().value!);
    this.owners.set(router, owner);
    return owner;
  }

  /** Intervals the market cleared or settled since the index's mark, read at `head`, at most intervalsPerPassMax. */
  private async indexMarket(head: BlockDescriptor, serviceId: number, seenAtMs: number): Promise<void> {
    const { api, index } = this.deps;
    const read = (key: Uint8Array) => api.serviceValue(head.headerHash, serviceId, key);
    if (this.market === null) {
      const raw = await read(CONFIG_KEY);
      if (raw === null) return; // no market: the service takes registrations and trades nothing
      const config = decodeMarketConfig(raw);
      if (!config.ok) throw new Error(`energy-trading: ${config.error}`);
      this.market = config.value;
    }
    const market = this.market;
    const raw = await read(MARKET_KEY);
    if (raw === null) return;
    const progress = decodeMarketProgress(raw);
    if (!progress.ok) throw new Error(`energy-trading: ${progress.error}`);
    const { nextClear, nextSettle } = progress.value;
    const mark = index.marketMark();
    // The service keeps the last LEDGER_INTERVALS_KEPT settled intervals; older ones are gone from state.
    const kept = Math.max(0, nextSettle - LEDGER_INTERVALS_KEPT);
    if (mark.nextSettled < kept) await index.skipIntervals({ nextCleared: kept, nextSettled: kept });
    const readAt = { hash: toHex(head.headerHash), seenAtMs };
    let budget = this.limits.intervalsPerPassMax;
    const write = async (k: number): Promise<void> => {
      const summaryRaw = await read(intervalKey(k));
      if (summaryRaw === null) return;
      const summary = decodeIntervalSummary(summaryRaw);
      if (!summary.ok) throw new Error(`energy-trading interval ${k}: ${summary.error}`);
      const s = summary.value;
      let entries: EnergyEntryInput[] = [];
      if (s.settled) {
        const ledgerRaw = await read(ledgerKey(k));
        const decoded = ledgerRaw === null ? { ok: true as const, value: [] } : decodeLedgerEntries(ledgerRaw);
        if (!decoded.ok) throw new Error(`energy-trading ledger ${k}: ${decoded.error}`);
        entries = decoded.value.map((e) => ({
          reason: e.reason,
          buyer: e.buyer === "grid" ? "grid" : toHex(e.buyer),
          seller: e.seller === "grid" ? "grid" : toHex(e.seller),
          energyWh: e.energyWh,
          priceMicrosPerKwh: e.priceMicrosPerKwh,
          amountMicros: e.amountMicros,
        }));
      }
      await index.writeInterval({
        interval: k,
        startMs: Number(intervalStartMs(market, k)),
        endMs: Number(intervalStartMs(market, k + 1)),
        settled: s.settled,
        clearingPriceMicrosPerKwh: s.clearingPriceMicrosPerKwh,
        tradedWh: s.tradedWh,
        orders: s.orders,
        trades: s.trades,
        clearedSlot: s.clearedSlot,
        settledSlot: s.settledSlot,
        entries,
        readAt,
      });
    };
    let k = Math.max(mark.nextSettled, kept);
    for (; k < nextSettle && budget > 0 && !this.stopped; k++, budget--) await write(k);
    // Past what was summarised (pruned or missing): the mark moves on, so the next pass does not read them again.
    if (k > index.marketMark().nextSettled) await index.skipIntervals({ nextCleared: k, nextSettled: k });
    for (let c = Math.max(index.marketMark().nextCleared, nextSettle); c < nextClear && budget > 0 && !this.stopped; c++, budget--) await write(c);
  }
}
