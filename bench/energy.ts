/**
 * The energy-trading service's own costs, in its real accumulate and refine:
 *
 *   node --import tsx bench/energy.ts [--runs 7]
 *
 * 1. Clearing and settling one interval for 100, 1,000 and 10,000 households, each mode: the
 *    service's accumulate on an in-memory host (the node's gas schedule, its storage codecs),
 *    with every household holding an order and a metered interval. Target (issue): 10,000
 *    households cleared in under 100 ms of accumulate.
 * 2. Refine compression on one-second meter data: a package of meters' envelopes of 60 one-second
 *    readings each (15 envelopes = one 15-minute interval per meter), refined; input bytes (the
 *    work item's payload) ÷ output bytes (the work result). JAM's headline is 166×.
 */
import { seededRandom } from "../devices/simulate.ts";
import { encodeCbor } from "../devices/cbor.ts";
import { deviceIdOf, signingBytes } from "../devices/envelope.ts";
import { keyPairFromSeed, signEd25519, verifyEd25519 } from "../node/crypto/ed25519.ts";
import { hash } from "../node/crypto/hash.ts";
import { toHex } from "../services/common/bytes.ts";
import { MemoryStorage, memoryRefineContext } from "../services/common/testing.ts";
import { accumulate, ALWAYS_ACCUMULATE_GAS } from "../services/energy-trading/accumulate.ts";
import { encodeEnvelopesItem } from "../services/energy-trading/payload.ts";
import { refine } from "../services/energy-trading/refine.ts";
import { CONFIG_KEY, encodeHouseholds, encodeMarketConfig, HOUSEHOLDS_KEY, type MarketConfig, MARKET_MODES } from "../services/energy-trading/storage.ts";
import { parseFlags } from "./lib/args.ts";
import { benchMarket, MARKET_INTERVAL_MS as INTERVAL_MS, MARKET_START_MS as START_MS, seedInterval } from "./lib/market.ts";
import { fmt, machine, median, table } from "./lib/stats.ts";

const flags = parseFlags("bench/energy.ts", "The energy-trading service's own costs, in its real accumulate and refine.", {
  runs: { kind: "number", default: 7, help: "timed runs of each case" },
});
const RUNS = flags.runs;

/** Storage with `n` households, each with an order for interval 0 and metered energy in it. */
function marketWith(n: number, mode: MarketConfig["mode"], seed: number): MemoryStorage {
  const random = seededRandom(seed);
  const storage = new MemoryStorage();
  const ids = Array.from({ length: n }, (_, i) => hash(Uint8Array.of(i & 0xff, (i >> 8) & 0xff, (i >> 16) & 0xff, seed)).slice(0, 16)).sort((a, b) =>
    toHex(a) < toHex(b) ? -1 : 1,
  );
  storage.values.set(toHex(CONFIG_KEY), encodeMarketConfig(benchMarket(mode)));
  storage.values.set(toHex(HOUSEHOLDS_KEY), encodeHouseholds(ids));
  seedInterval(storage, ids, 0, random);
  return storage;
}

function timeBlock(storage: MemoryStorage, slot: number): { ms: number; gas: bigint } {
  const started = process.hrtime.bigint();
  const { gasUsed } = storage.accumulate(accumulate, [], { slot, hash, gasLimit: ALWAYS_ACCUMULATE_GAS });
  return { ms: Number(process.hrtime.bigint() - started) / 1e6, gas: gasUsed };
}

const info = machine();
console.log(`# energy-trading service — node ${info.node}, ${info.cpus} × ${info.cpuModel}, runs ${RUNS} (after 1 warm-up)\n`);
const rows: string[][] = [];
for (const n of [100, 1_000, 10_000]) {
  for (const mode of MARKET_MODES) {
    const clear: number[] = [];
    const settle: number[] = [];
    let gasClear = 0n;
    let gasSettle = 0n;
    for (let run = 0; run <= RUNS; run++) {
      const storage = marketWith(n, mode, run + 1);
      const c = timeBlock(storage, 10); // market time = start: interval 0 is cleared
      const s = timeBlock(storage, 16); // end of interval 0 + one interval: settled
      if (run === 0) continue;
      clear.push(c.ms);
      settle.push(s.ms);
      gasClear = c.gas;
      gasSettle = s.gas;
    }
    rows.push([
      fmt(n),
      mode,
      fmt(median(clear), 1),
      fmt(Math.max(...clear), 1),
      (Number(gasClear) / 1e6).toFixed(1),
      fmt(median(settle), 1),
      fmt(Math.max(...settle), 1),
      (Number(gasSettle) / 1e6).toFixed(1),
    ]);
  }
}
console.log("accumulate of one interval (ms; gas in millions)");
console.log(table(["households", "mode", "clear p50", "clear max", "clear gas", "settle p50", "settle max", "settle gas"], rows));
console.log("target: 10,000 households cleared in < 100 ms of accumulate\n");

// Refine compression on one-second data.
const METERS = 230;
const ENVELOPES_PER_METER = 15;
const READINGS = 60;
const records = [];
for (let m = 0; m < METERS; m++) {
  const key = keyPairFromSeed(hash(Uint8Array.of(m & 0xff, m >> 8, 0xee)));
  const device = deviceIdOf(key.publicKey);
  const random = seededRandom(m + 1);
  let importJ = Math.floor(random() * 1e10);
  let exportJ = Math.floor(random() * 1e9);
  for (let e = 0; e < ENVELOPES_PER_METER; e++) {
    const readings = [];
    for (let r = 0; r < READINGS; r++) {
      const second = e * READINGS + r + 1;
      const powerW = Math.floor(random() * 6_000) - 2_500;
      if (powerW > 0) importJ += powerW;
      else exportJ -= powerW;
      readings.push({
        t: START_MS + second * 1000,
        importWh: Math.floor(importJ / 3600),
        exportWh: Math.floor(exportJ / 3600),
        powerW,
        voltageV: 228 + Math.floor(random() * 6),
      });
    }
    const signed = signingBytes({ version: 1, device, seq: e, kind: "meter.reading", timeMs: START_MS, body: encodeCbor(readings) });
    records.push({ publicKey: key.publicKey, signingBytes: signed, signature: signEd25519(key, signed) });
  }
}
const payload = encodeEnvelopesItem({ marketStartMs: BigInt(START_MS), intervalMs: INTERVAL_MS }, records);
const times: number[] = [];
let output: Uint8Array = new Uint8Array();
for (let run = 0; run <= Math.min(RUNS, 3); run++) {
  const started = process.hrtime.bigint();
  output = refine(payload, memoryRefineContext({ hash, verifyEd25519 }, 10_000_000_000n));
  if (run > 0) times.push(Number(process.hrtime.bigint() - started) / 1e6);
}
const readingsTotal = METERS * ENVELOPES_PER_METER * READINGS;
console.log("refine of one package of one-second meter readings (one thread)");
console.log(
  table(
    ["meters", "envelopes", "readings", "input bytes", "output bytes", "ratio", "bytes/reading in", "refine p50 ms"],
    [
      [
        fmt(METERS),
        fmt(records.length),
        fmt(readingsTotal),
        fmt(payload.length),
        fmt(output.length),
        `${fmt(payload.length / output.length)}×`,
        (payload.length / readingsTotal).toFixed(1),
        fmt(median(times)),
      ],
    ],
  ),
);
console.log("JAM's headline: 166× (15 MB in, 90 KB out per core per 6 s slot)");
