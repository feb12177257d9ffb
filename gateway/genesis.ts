/**
 * The built-in genesis of `jamgate start` and `jamgate node start`: the telemetry, energy-trading
 * and wifi-billing services, authorized for the keys their operator names (the gateway's key, kept
 * in its data dir). No key derived from a public seed and no test service is in it: anyone
 * reaching the node could submit with such a key. Tests build their own genesis
 * (node/testing/fixtures.ts; node/testing/counter is the node's test service).
 *
 * Library code that knows the node (its genesis) and the services (their ids, module URLs and
 * market config), so it lives in gateway/, which may import both: scripts/cli.ts wires it into
 * `jamgate start`, and the simulators, bench and gateway tests start their stacks with it.
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { GenesisService } from "../node/chain/genesis.ts";
import { ALWAYS_ACCUMULATE_GAS, CONFIG_KEY, decodeMarketConfig, encodeMarketConfig, type MarketConfig } from "../services/energy-trading/types.ts";
import { ALWAYS_ACCUMULATE_GAS as WIFI_ALWAYS_ACCUMULATE_GAS } from "../services/wifi-billing/types.ts";

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

export const WIFI_SERVICE = {
  id: 4,
  name: "wifi-billing",
  moduleUrl: new URL("../services/wifi-billing/service.ts", import.meta.url).href,
};

/**
 * Genesis of `jamgate start` and `jamgate node start`: the telemetry, energy-trading and
 * wifi-billing services, each authorized for `authorizedKeys` (the keys that may submit work
 * packages for them: the gateway's). The energy service runs the market `market` (its clock, mode
 * and grid prices; `jamgate start` keeps one per data dir), and without one it takes registrations
 * but trades nothing. Wi-Fi billing runs on its defaults (5 % protocol fee, 600-slot stake
 * cool-down) and is always accumulated, so stakes return on the chain's clock.
 */
export function builtinServices(authorizedKeys: readonly Uint8Array[], market: MarketConfig | null = null): GenesisService[] {
  if (authorizedKeys.length === 0) throw new Error("a genesis needs at least one key authorized to submit work packages");
  return [
    {
      id: TELEMETRY_SERVICE.id,
      name: TELEMETRY_SERVICE.name,
      moduleUrl: TELEMETRY_SERVICE.moduleUrl,
      balance: 1_000_000_000n,
      authorizedKeys: [...authorizedKeys],
    },
    {
      id: ENERGY_SERVICE.id,
      name: ENERGY_SERVICE.name,
      moduleUrl: ENERGY_SERVICE.moduleUrl,
      balance: 1_000_000_000n,
      authorizedKeys: [...authorizedKeys],
      alwaysAccumulateGas: ALWAYS_ACCUMULATE_GAS,
      storage: market === null ? [] : [{ key: CONFIG_KEY, value: encodeMarketConfig(market) }],
    },
    {
      id: WIFI_SERVICE.id,
      name: WIFI_SERVICE.name,
      moduleUrl: WIFI_SERVICE.moduleUrl,
      balance: 1_000_000_000n,
      authorizedKeys: [...authorizedKeys],
      alwaysAccumulateGas: WIFI_ALWAYS_ACCUMULATE_GAS,
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
    writeFileSync(path, `${JSON.stringify({ ...market, startMs: market.startMs.toString() }, null, 2)}\n`, { flag: "wx", mode: 0o600 });
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
