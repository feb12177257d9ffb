/**
 * The built-in genesis of `jamgate node start`: the counter test service (id 1), authorized for
 * the devnet submitter key. That key is derived from a public seed, like the validators' dev
 * keys: anyone can sign with it, which is what a local devnet wants and a real network must not.
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { nativeCodeHash, type GenesisService } from "../node/chain/genesis.ts";
import { ALWAYS_ACCUMULATE_GAS, CONFIG_KEY, decodeMarketConfig, encodeMarketConfig, type MarketConfig } from "../services/energy-trading/types.ts";
import { keyPairFromSeed } from "../node/crypto/ed25519.ts";
import { hash } from "../node/crypto/hash.ts";

export const DEV_SUBMITTER_KEY = keyPairFromSeed(hash(new TextEncoder().encode("jamgate-dev-submitter")));

export const COUNTER_SERVICE = {
  id: 1,
  name: "counter",
  codeHash: nativeCodeHash("counter"),
  moduleUrl: new URL("../services/counter/service.ts", import.meta.url).href,
};

export const TELEMETRY_SERVICE = {
  id: 2,
  name: "telemetry",
  moduleUrl: new URL("../services/telemetry/service.ts", import.meta.url).href,
};

export const ENERGY_SERVICE = {
  id: 3,
  name: "energy-trading",
  moduleUrl: new URL("../services/energy-trading/service.ts", import.meta.url).href,
};

/**
 * Genesis of `jamgate node start` and `jamgate start`: the counter, the telemetry and the
 * energy-trading service. `gatewayKey` is the key the gateway submits envelopes and registrations
 * with; `node start` alone authorizes the dev submitter key instead. The energy service runs the
 * market `market` (its clock, mode and grid prices; `jamgate start` keeps one per data dir), and
 * without one it takes registrations but trades nothing.
 */
export function builtinServices(gatewayKey: Uint8Array = DEV_SUBMITTER_KEY.publicKey, market: MarketConfig | null = null): GenesisService[] {
  return [
    { id: COUNTER_SERVICE.id, name: COUNTER_SERVICE.name, moduleUrl: COUNTER_SERVICE.moduleUrl, balance: 1_000_000_000n, authorizedKeys: [DEV_SUBMITTER_KEY.publicKey] },
    { id: TELEMETRY_SERVICE.id, name: TELEMETRY_SERVICE.name, moduleUrl: TELEMETRY_SERVICE.moduleUrl, balance: 1_000_000_000n, authorizedKeys: [gatewayKey] },
    {
      id: ENERGY_SERVICE.id,
      name: ENERGY_SERVICE.name,
      moduleUrl: ENERGY_SERVICE.moduleUrl,
      balance: 1_000_000_000n,
      authorizedKeys: [gatewayKey],
      alwaysAccumulateGas: ALWAYS_ACCUMULATE_GAS,
      storage: market === null ? [] : [{ key: CONFIG_KEY, value: encodeMarketConfig(market) }],
    },
  ];
}

/**
 * The market `jamgate start` runs when a data dir is new: real time (one slot of market time per
 * slot), 15-minute intervals from the quarter hour it starts in, pay-as-clear, 0.30 import and
 * 0.08 feed-in per kWh, settled one interval after each ends.
 */
export function defaultMarket(nowMs: number, slotMs: number): MarketConfig {
  const intervalMs = 15 * 60_000;
  return {
    startMs: BigInt(Math.floor(nowMs / intervalMs) * intervalMs),
    intervalMs,
    startSlot: 0,
    marketMsPerSlot: slotMs,
    mode: "pay-as-clear",
    importPriceMicrosPerKwh: 300_000,
    exportPriceMicrosPerKwh: 80_000,
    settlementDelayMs: intervalMs,
  };
}

/**
 * The market of a `jamgate start` data dir: made once, at its first start (`market.json`), so the
 * node's genesis stays the same across restarts. Edit it before the first start to run another
 * market; once the chain exists, a changed file is refused as another genesis (JG_ERR_GENESIS).
 */
export function marketOfDataDir(dataDir: string, slotMs: number, nowMs: number = Date.now()): MarketConfig {
  const path = join(dataDir, "market.json");
  if (!existsSync(path)) {
    const market = defaultMarket(nowMs, slotMs);
    writeFileSync(path, `${JSON.stringify({ ...market, startMs: market.startMs.toString() }, null, 2)}\n`, { flag: "wx" });
  }
  const raw = JSON.parse(readFileSync(path, "utf8")) as Record<string, unknown>;
  const market = { ...raw, startMs: BigInt(String(raw.startMs)) } as MarketConfig;
  // Round trip through the service's codec: what it would refuse in state is refused here.
  const checked = decodeMarketConfig(encodeMarketConfigChecked(market, path));
  if (!checked.ok) throw new Error(`${path}: ${checked.error}`);
  return checked.value;
}

function encodeMarketConfigChecked(market: MarketConfig, path: string): Uint8Array {
  try {
    return encodeMarketConfig(market);
  } catch (e) {
    throw new Error(`${path}: ${(e as Error).message}`);
  }
}
