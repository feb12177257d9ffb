/**
 * Wall-clock time per unit of gas of real refines, for the refine watchdog's bound
 * (node/guarantor/refine-pool.ts, `REFINE_NS_PER_GAS_MAX`):
 *
 *   node --import tsx bench/refine-gas.ts [--runs 5]
 *
 * Each case is one work item refined on a warmed 1-thread RefinePool, as the node runs it (the
 * task cloned to the worker, the result back), timed from `run()` to its outcome, and set
 * against the gas the host charged it. Cases: the packages the gateway sends (telemetry: 12,000
 * envelopes of the SDK's 60-reading column body, 497 bytes; 3,384 envelopes of the row body, 3,808
 * bytes, about W_B; energy-trading: 256 meters (ENVELOPE_DEVICES_PER_ITEM_MAX) × 12 envelopes of 60 one-second readings;
 * registrations: 512), a refine that only makes host calls (the counter's burn-gas op), and a
 * tiny one (one increment: the fixed cost of a task). Then, on the main thread, the guarantor's
 * erasure coding of a W_B bundle per byte (tiny and full chain), and the start-up of a refine
 * thread (a new pool, warmed): what a watchdog armed at submission would have to allow.
 */
import { encodeCbor } from "../devices/cbor.ts";
import { deviceIdOf, signingBytes } from "../devices/envelope.ts";
import { seededRandom } from "../devices/simulate.ts";
import { encodeBundle } from "../node/availability/bundle.ts";
import { keyPairFromSeed, signEd25519 } from "../node/crypto/ed25519.ts";
import { hash } from "../node/crypto/hash.ts";
import { RefinePool } from "../node/guarantor/refine-pool.ts";
import type { RefineTask } from "../node/refine/task.ts";
import { counterPayload } from "../node/testing/counter/types.ts";
import { encodeEnvelopesItem as energyEnvelopesItem } from "../services/energy-trading/payload.ts";
import { encodeEnvelopesItem as telemetryEnvelopesItem, encodeRegistrationsItem } from "../services/telemetry/payload.ts";
import { parseFlags } from "./lib/args.ts";
import { fmt, machine, median, table } from "./lib/stats.ts";

const flags = parseFlags("bench/refine-gas.ts", "Wall-clock ns per unit of gas of real refines, for the refine watchdog's bound.", {
  runs: { kind: "number", default: 5, help: "timed runs of each case (after one cold run)" },
});
const RUNS = flags.runs;
const W_B = 13_791_360;
const GAS_LIMIT = 10_000_000_000n;
const url = (path: string) => new URL(path, import.meta.url).href;
const TELEMETRY_URL = url("../services/telemetry/service.ts");
const ENERGY_URL = url("../services/energy-trading/service.ts");
const COUNTER_URL = url("../node/testing/counter/service.ts");
const START_MS = 1_750_000_000_000;
const INTERVAL_MS = 900_000;

const keys = Array.from({ length: 1_000 }, (_, i) => keyPairFromSeed(hash(new TextEncoder().encode(`refine-gas-device-${i}`))));

/** `count` telemetry envelopes with bodies of `bodyBytes`, round-robin over the keys, sorted as the gateway sends them. */
function telemetryPayload(count: number, bodyBytes: number): Uint8Array {
  const random = seededRandom(count);
  const records = Array.from({ length: count }, (_, i) => {
    const key = keys[i % keys.length]!;
    const body = Uint8Array.from({ length: bodyBytes }, () => Math.floor(random() * 256));
    const signed = signingBytes({
      version: 1,
      device: deviceIdOf(key.publicKey),
      seq: Math.floor(i / keys.length),
      kind: "meter.reading",
      timeMs: START_MS + i,
      body,
    });
    return {
      id: deviceIdOf(key.publicKey),
      seq: Math.floor(i / keys.length),
      publicKey: key.publicKey,
      signingBytes: signed,
      signature: signEd25519(key, signed),
    };
  }).sort((a, b) => (a.id !== b.id ? (a.id < b.id ? -1 : 1) : a.seq - b.seq));
  return telemetryEnvelopesItem(records);
}

/** `meters` meters × `envelopes` envelopes of 60 one-second readings (CBOR rows), as bench/energy.ts makes them. */
function energyPayload(meters: number, envelopes: number): Uint8Array {
  const records = [];
  for (let m = 0; m < meters; m++) {
    const key = keys[m % keys.length]!;
    const device = deviceIdOf(key.publicKey);
    const random = seededRandom(m + 1);
    let importJ = Math.floor(random() * 1e10);
    let exportJ = Math.floor(random() * 1e9);
    for (let e = 0; e < envelopes; e++) {
      const readings = [];
      for (let r = 0; r < 60; r++) {
        const powerW = Math.floor(random() * 6_000) - 2_500;
        if (powerW > 0) importJ += powerW;
        else exportJ -= powerW;
        readings.push({
          t: START_MS + (e * 60 + r + 1) * 1000,
          importWh: Math.floor(importJ / 3600),
          exportWh: Math.floor(exportJ / 3600),
          powerW,
          voltageV: 228 + Math.floor(random() * 6),
        });
      }
      const signed = signingBytes({ version: 1, device, seq: e, kind: "meter.reading", timeMs: START_MS, body: encodeCbor(readings) });
      records.push({ id: device, seq: e, publicKey: key.publicKey, signingBytes: signed, signature: signEd25519(key, signed) });
    }
  }
  records.sort((a, b) => (a.id !== b.id ? (a.id < b.id ? -1 : 1) : a.seq - b.seq));
  return energyEnvelopesItem({ marketStartMs: BigInt(START_MS), intervalMs: INTERVAL_MS }, records);
}

const cases: { name: string; moduleUrl: string; payload: Uint8Array; gasLimit: bigint; expect: "ok" | "out-of-gas" }[] = [
  { name: "telemetry: 12,000 envelopes, 497-byte bodies", moduleUrl: TELEMETRY_URL, payload: telemetryPayload(12_000, 497), gasLimit: GAS_LIMIT, expect: "ok" },
  {
    name: "telemetry: 3,384 envelopes, 3,808-byte bodies",
    moduleUrl: TELEMETRY_URL,
    payload: telemetryPayload(3_384, 3_808),
    gasLimit: GAS_LIMIT,
    expect: "ok",
  },
  { name: "energy: 256 meters × 12 envelopes of 60 readings", moduleUrl: ENERGY_URL, payload: energyPayload(256, 12), gasLimit: GAS_LIMIT, expect: "ok" },
  {
    name: "telemetry: 512 registrations",
    moduleUrl: TELEMETRY_URL,
    payload: encodeRegistrationsItem(keys.slice(0, 512).map((k) => ({ publicKey: k.publicKey, kind: "meter" as const }))),
    gasLimit: GAS_LIMIT,
    expect: "ok",
  },
  { name: "counter: burn 200M gas in hash calls", moduleUrl: COUNTER_URL, payload: counterPayload.burnGas(), gasLimit: 200_000_000n, expect: "out-of-gas" },
  { name: "counter: one increment (fixed cost)", moduleUrl: COUNTER_URL, payload: counterPayload.increment(1n), gasLimit: GAS_LIMIT, expect: "ok" },
];

const pool = new RefinePool({ coresCount: 1, refineTimeoutMs: 600_000, preloadModuleUrls: [TELEMETRY_URL, ENERGY_URL, COUNTER_URL] });
await pool.warm();

const rows: string[][] = [];
const summary: Record<string, unknown>[] = [];
for (const c of cases) {
  const task: RefineTask = {
    packageHash: hash(c.payload),
    coreIndex: 0,
    items: [{ serviceId: 1, moduleUrl: c.moduleUrl, payload: c.payload, gasLimit: c.gasLimit }],
    availability: null,
  };
  const times: number[] = [];
  let gasUsed = 0n;
  let coldMs = 0;
  for (let run = 0; run <= RUNS; run++) {
    const started = performance.now();
    const outcome = await pool.run(task);
    const ms = performance.now() - started;
    if (!outcome.ok) throw new Error(`${c.name}: ${outcome.detail}`);
    const item = outcome.result.items[0]!;
    if (c.expect === "ok" && !item.ok) throw new Error(`${c.name}: ${item.detail}`);
    if (c.expect === "out-of-gas" && (item.ok || item.code !== "JG_ERR_REFINE_OUT_OF_GAS")) throw new Error(`${c.name}: did not run out of gas`);
    gasUsed = item.gasUsed;
    if (run === 0) coldMs = ms;
    else times.push(ms);
    process.stderr.write(`${c.name}: run ${run}/${RUNS} ${ms.toFixed(1)} ms\n`);
  }
  const nsPerGas = times.map((ms) => (ms * 1e6) / Number(gasUsed));
  rows.push([
    c.name,
    fmt(c.payload.length),
    fmt(Number(gasUsed)),
    `${fmt(median(times), 1)} (${fmt(Math.min(...times), 1)}–${fmt(Math.max(...times), 1)})`,
    fmt(coldMs, 1),
    `${fmt(median(nsPerGas), 2)} (max ${fmt(Math.max(...nsPerGas), 2)})`,
  ]);
  summary.push({
    case: c.name,
    payloadBytes: c.payload.length,
    gasUsed: Number(gasUsed),
    msMedian: Number(median(times).toFixed(1)),
    msMax: Number(Math.max(...times).toFixed(1)),
    coldMs: Number(coldMs.toFixed(1)),
    nsPerGasMedian: Number(median(nsPerGas).toFixed(3)),
    nsPerGasMax: Number(Math.max(...nsPerGas).toFixed(3)),
  });
}
await pool.close();

// Erasure coding of a W_B bundle on this thread, as the refine worker does it after refine.
const bundle = Uint8Array.from({ length: W_B }, (_, i) => (i * 31) & 0xff);
const coding: string[][] = [];
for (const chain of ["tiny", "full"] as const) {
  const times: number[] = [];
  for (let run = 0; run <= RUNS; run++) {
    const started = performance.now();
    encodeBundle(chain, bundle);
    if (run > 0) times.push(performance.now() - started);
  }
  coding.push([
    `encodeBundle(${chain}), ${fmt(W_B)} bytes`,
    `${fmt(median(times), 1)} (${fmt(Math.min(...times), 1)}–${fmt(Math.max(...times), 1)})`,
    `${fmt((median(times) * 1e6) / W_B, 1)} (max ${fmt((Math.max(...times) * 1e6) / W_B, 1)})`,
  ]);
  summary.push({ case: `encodeBundle ${chain}`, bytes: W_B, msMedian: Number(median(times).toFixed(1)), msMax: Number(Math.max(...times).toFixed(1)) });
}

// Start-up of a refine thread: tsx registered, worker and services loaded.
const startups: number[] = [];
for (let run = 0; run < Math.min(RUNS, 3); run++) {
  const started = performance.now();
  const fresh = new RefinePool({ coresCount: 1, refineTimeoutMs: 600_000, preloadModuleUrls: [TELEMETRY_URL, ENERGY_URL, COUNTER_URL] });
  await fresh.warm();
  startups.push(performance.now() - started);
  await fresh.close();
}
summary.push({ case: "refine thread start-up", msMedian: Number(median(startups).toFixed(1)), msMax: Number(Math.max(...startups).toFixed(1)) });

const mc = machine();
console.log(`bench/refine-gas.ts — node ${mc.node}, ${mc.cpus} cores (${mc.cpuModel}), ${RUNS} runs after a cold one (medians, min–max)`);
console.log("");
console.log(table(["refine on a 1-thread RefinePool", "payload bytes", "gas used", "ms per run", "cold ms", "ns per gas"], rows));
console.log("");
console.log(table(["erasure coding (main thread)", "ms per run", "ns per byte"], coding));
console.log("");
console.log(`refine thread start-up (new pool, warm()): ${fmt(median(startups), 1)} ms median, ${fmt(Math.max(...startups), 1)} ms max`);
console.log(JSON.stringify({ bench: "refine-gas", node: mc.node, cpus: mc.cpus, runs: RUNS, cases: summary }));
