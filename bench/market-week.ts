/**
 * The node with a full week of energy-market history in state: the energy-trading service keeps
 * the ledger and summary of the last LEDGER_INTERVALS_KEPT (672) settled 15-minute intervals.
 *
 *   node --import tsx bench/market-week.ts [--households 1000] [--intervals 673] [--runs 3]
 *
 * 1. The week, in the service's real accumulate on an in-memory host (services/common/testing.ts
 *    MemoryStorage, as bench/energy.ts): `--households` households, each a meter and an agent
 *    with their device records; before each interval's gate closure every household's order for it
 *    and its metered energy, seeded as bench/energy.ts seeds interval 0 (lib/market.ts); accumulate at
 *    each gate closure (every 3 slots), which clears that interval and settles the one two before.
 *    Package outcomes (a bounded FIFO) are not in it: no packages are submitted.
 * 2. The service's storage at the market's start (the households registered, nothing traded) and
 *    after `--intervals` intervals, by kind of entry.
 * 3. For each of the two: a data dir of `jamgate start`'s genesis (gateway/genesis.ts, the energy
 *    service as service 3 with the same market) whose best block's state holds that storage
 *    (lib/node-data-dir.ts), opened by the node in a fresh process `--runs` times
 *    (lib/node-open.ts): RSS after a full GC with the node open (its refine threads included), V8
 *    heap, start-up, and the LMDB file. The difference between the two is what a week of history
 *    costs the node. The last line is JSON.
 */
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { seededRandom } from "../devices/simulate.ts";
import { builtinServices, ENERGY_SERVICE } from "../gateway/genesis.ts";
import { fromHex } from "../node/codec/jam.ts";
import { hash } from "../node/crypto/hash.ts";
import { storageKey } from "../node/state/components.ts";
import { toHex } from "../services/common/bytes.ts";
import type { RawDeviceId } from "../services/common/envelope.ts";
import { EMPTY_WINDOW } from "../services/common/window.ts";
import { MemoryStorage } from "../services/common/testing.ts";
import { accumulate, ALWAYS_ACCUMULATE_GAS, LEDGER_INTERVALS_KEPT } from "../services/energy-trading/accumulate.ts";
import { DeviceRole } from "../services/energy-trading/payload.ts";
import { CONFIG_KEY, deviceKey, encodeDeviceRecord, encodeHouseholds, encodeMarketConfig, HOUSEHOLDS_KEY } from "../services/energy-trading/storage.ts";
import { parseFlags } from "./lib/args.ts";
import { benchMarket, MARKET_INTERVAL_MS, MARKET_MS_PER_SLOT, MARKET_START_SLOT, seedInterval } from "./lib/market.ts";
import { writeDataDirWithEntries } from "./lib/node-data-dir.ts";
import type { OpenMeasured } from "./lib/node-open.ts";
import { Child } from "./lib/proc.ts";
import { fmt, machine, median, table } from "./lib/stats.ts";

const flags = parseFlags("bench/market-week.ts", "The node's memory and state with a week of energy-market history.", {
  households: { kind: "number", default: 1_000, help: "households trading (a meter and an agent each)" },
  intervals: { kind: "number", default: LEDGER_INTERVALS_KEPT + 1, help: "15-minute intervals traded and settled" },
  runs: { kind: "number", default: 3, help: "node opens per state, each in a fresh process" },
});

const SLOTS_PER_INTERVAL = MARKET_INTERVAL_MS / MARKET_MS_PER_SLOT;
const MB = 1024 ** 2;

const market = benchMarket("pay-as-clear");
const operatorKey = hash(new TextEncoder().encode("bench-market-week-operator"));
const services = builtinServices([operatorKey], market);

const idOf = (i: number, role: number) => hash(Uint8Array.of(i & 0xff, (i >> 8) & 0xff, (i >> 16) & 0xff, role)).slice(0, 16) as RawDeviceId;

/** The registered households: config, household list and each meter's and agent's device record. */
function registered(n: number): { storage: MemoryStorage; households: Uint8Array[] } {
  const storage = new MemoryStorage();
  const households = Array.from({ length: n }, (_, i) => idOf(i, 0)).sort((a, b) => (toHex(a) < toHex(b) ? -1 : 1));
  storage.values.set(toHex(CONFIG_KEY), encodeMarketConfig(market));
  storage.values.set(toHex(HOUSEHOLDS_KEY), encodeHouseholds(households));
  households.forEach((household, i) => {
    const record = { registeredSlot: 1, window: EMPTY_WINDOW, lastReading: null, envelopesSettled: 0n };
    storage.values.set(toHex(deviceKey(household)), encodeDeviceRecord({ ...record, publicKey: hash(household), role: DeviceRole.meter, household }));
    const agent = idOf(i, 1);
    storage.values.set(toHex(deviceKey(agent)), encodeDeviceRecord({ ...record, publicKey: hash(agent), role: DeviceRole.agent, household }));
  });
  return { storage, households };
}

interface StorageFigures {
  readonly entries: number;
  readonly bytes: number;
  /** By the key's text prefix ("ledger/", "dev/", …). */
  readonly byKind: Record<string, { entries: number; bytes: number }>;
}

function figures(storage: MemoryStorage): StorageFigures {
  const byKind: Record<string, { entries: number; bytes: number }> = {};
  let bytes = 0;
  for (const [hex, value] of storage.values) {
    const key = Buffer.from(hex, "hex");
    const slash = key.indexOf(0x2f);
    const kind = slash > 0 ? key.subarray(0, slash + 1).toString("latin1") : key.toString("latin1").replace(/[^ -~]/g, "?");
    byKind[kind] ??= { entries: 0, bytes: 0 };
    const k = byKind[kind];
    k.entries++;
    k.bytes += key.length + value.length;
    bytes += key.length + value.length;
  }
  return { entries: storage.values.size, bytes, byKind };
}

interface NodeFigures {
  readonly stateEntries: number;
  readonly lmdbFileBytes: number;
  readonly runs: readonly OpenMeasured[];
}

/** The node opened on a data dir whose state holds `storage` as the energy service's. */
async function nodeWith(storage: MemoryStorage, label: string): Promise<NodeFigures> {
  const dataDir = mkdtempSync(join(tmpdir(), "jamgate-market-week-"));
  try {
    const entries = [...storage.values].map(([hex, value]) => [storageKey(ENERGY_SERVICE.id, fromHex(hex)), value] as const);
    const written = await writeDataDirWithEntries(dataDir, services, entries);
    const lmdbFileBytes = statSync(join(dataDir, "data.mdb")).size;
    const runs: OpenMeasured[] = [];
    for (let run = 0; run < flags.runs; run++) {
      const child = await Child.start("node-open", new URL("./lib/node-open.ts", import.meta.url));
      try {
        runs.push(await child.call<OpenMeasured>("open", { dataDir, services }));
      } finally {
        await child.stop();
      }
      process.stderr.write(`[market-week] ${label}: node open ${fmt(runs.at(-1)!.openMs)} ms, RSS ${fmt(runs.at(-1)!.rssBytes / MB)} MB\n`);
    }
    return { stateEntries: written.stateEntries, lmdbFileBytes, runs };
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}

process.stderr.write(`[market-week] ${JSON.stringify(machine())}\n`);
const { storage, households } = registered(flags.households);
const atStart = figures(storage);
const nodeAtStart = await nodeWith(storage, "at the start");

const random = seededRandom(19);
const accumulateMs: number[] = [];
let lastInterval = -1;
for (let k = 0; k < flags.intervals + 2; k++) {
  if (k < flags.intervals) seedInterval(storage, households, k, random);
  const started = performance.now();
  storage.accumulate(accumulate, [], { slot: MARKET_START_SLOT + SLOTS_PER_INTERVAL * k, hash, gasLimit: ALWAYS_ACCUMULATE_GAS });
  accumulateMs.push(performance.now() - started);
  lastInterval = k;
  if (k % 100 === 0) process.stderr.write(`[market-week] interval ${k}: ${fmt(storage.values.size)} entries\n`);
}
const afterWeek = figures(storage);
const nodeAfterWeek = await nodeWith(storage, "after the week");

const med = (n: NodeFigures, pick: (r: OpenMeasured) => number) => median(n.runs.map(pick));
const rows = [
  ["market start (registered, nothing traded)", atStart, nodeAtStart],
  [`after ${fmt(flags.intervals)} intervals`, afterWeek, nodeAfterWeek],
] as const;
console.log(
  `\nthe energy service's storage and the node holding it: ${fmt(flags.households)} households, pay-as-clear, ${fmt(flags.runs)} node opens each (median)\n`,
);
console.log(
  table(
    ["state", "service entries", "service MB", "node state entries", "LMDB MB", "node RSS MB", "V8 heap MB", "array buffers MB", "node open ms"],
    rows.map(([label, s, n]) => [
      label,
      fmt(s.entries),
      fmt(s.bytes / MB, 1),
      fmt(n.stateEntries),
      fmt(n.lmdbFileBytes / MB, 1),
      fmt(med(n, (r) => r.rssBytes) / MB),
      fmt(med(n, (r) => r.heapUsedBytes) / MB),
      fmt(med(n, (r) => r.arrayBuffersBytes) / MB),
      fmt(med(n, (r) => r.openMs)),
    ]),
  ),
);
console.log(`\nservice storage after the week, by kind (accumulate per gate closure: median ${fmt(median(accumulateMs), 1)} ms)\n`);
console.log(
  table(
    ["kind", "entries", "MB"],
    Object.entries(afterWeek.byKind)
      .sort((a, b) => b[1].bytes - a[1].bytes)
      .map(([kind, k]) => [kind, fmt(k.entries), fmt(k.bytes / MB, 2)]),
  ),
);
console.log(
  JSON.stringify({
    machine: machine(),
    households: flags.households,
    intervals: flags.intervals,
    lastGateClosure: lastInterval,
    accumulateMsMedian: median(accumulateMs),
    atStart: { service: atStart, node: nodeAtStart },
    afterWeek: { service: afterWeek, node: nodeAfterWeek },
  }),
);
