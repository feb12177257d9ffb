/**
 * Reads of the energy-trading service's state (services/energy-trading/storage.ts) at a block:
 * the market's progress, and a settled interval's summary and ledger. The service keeps only the
 * last LEDGER_INTERVALS_KEPT intervals' ledgers, so a run reads each interval once, as it settles.
 */
import type { NodeApi } from "../../node/api.ts";
import {
  decodeIntervalSummary,
  decodeLedgerEntries,
  decodeMarketProgress,
  type IntervalSummary,
  intervalKey,
  ledgerKey,
  MARKET_KEY,
  type MarketProgress,
  type StoredLedgerEntry,
} from "../../services/energy-trading/types.ts";

/** An interval as settled on the chain: its clearing (null when the state has none) and its ledger entries. */
export interface SettledInterval {
  readonly summary: IntervalSummary | null;
  readonly entries: readonly StoredLedgerEntry[];
}

/** The next interval to clear and to settle; both 0 before the market's first block. */
export async function readMarketProgress(api: NodeApi, serviceId: number, at: Uint8Array): Promise<MarketProgress> {
  const raw = await api.serviceValue(at, serviceId, MARKET_KEY);
  if (raw === null) return { nextClear: 0, nextSettle: 0 };
  const decoded = decodeMarketProgress(raw);
  if (!decoded.ok) throw new Error(decoded.error);
  return decoded.value;
}

/** Market interval `interval`'s summary and ledger at block `at`. */
export async function readSettledInterval(api: NodeApi, serviceId: number, at: Uint8Array, interval: number): Promise<SettledInterval> {
  return { summary: await readSummary(api, serviceId, at, interval), entries: await readLedger(api, serviceId, at, interval) };
}

async function readSummary(api: NodeApi, serviceId: number, at: Uint8Array, interval: number): Promise<IntervalSummary | null> {
  const raw = await api.serviceValue(at, serviceId, intervalKey(interval));
  if (raw === null) return null;
  const decoded = decodeIntervalSummary(raw);
  if (!decoded.ok) throw new Error(decoded.error);
  return decoded.value;
}

async function readLedger(api: NodeApi, serviceId: number, at: Uint8Array, interval: number): Promise<StoredLedgerEntry[]> {
  const raw = await api.serviceValue(at, serviceId, ledgerKey(interval));
  if (raw === null) return [];
  const decoded = decodeLedgerEntries(raw);
  if (!decoded.ok) throw new Error(decoded.error);
  return decoded.value;
}

/** A ledger party as hex (a device id), or "grid". */
export function partyHex(party: StoredLedgerEntry["buyer"]): string {
  return party === "grid" ? "grid" : Buffer.from(party).toString("hex");
}
