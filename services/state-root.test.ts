/**
 * The state bytes of telemetry and energy-trading, pinned: a fixed, seeded workload runs through
 * both services (refine, then accumulate on the in-memory host, services/common/testing.ts), and
 * the digest of each service's final storage (SHA-256 over its key/value pairs sorted by key) must
 * equal a hex recorded from the code before the services moved onto the service kit
 * (services/common codec and store, issue 17). Any change to a stored layout, a key, or what
 * accumulate decides changes the digest; a refactor that keeps the bytes keeps it.
 *
 * The workload touches every kind of stored value: registrations (meters, agents, telemetry
 * devices; refused duplicates and an agent without a household), envelopes (readings, orders, a
 * withdrawn order set, a meter reset, telemetry envelopes), replays and refusals (bad signature,
 * unregistered device, an order for a closed interval, a replayed seq), several packages per
 * accumulate call, and energy intervals cleared and settled (order pages, trades, metered energy,
 * interval summaries, ledger entries, balances, the grid balance, stats, outcomes).
 *
 * The recorded hexes must never be re-recorded to make a change pass: a different digest means
 * the change altered state bytes.
 */
import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { encodeCbor } from "../devices/cbor.ts";
import { type DeviceId, deviceIdOf, type EnvelopeKind, signingBytes } from "../devices/envelope.ts";
import { type Ed25519KeyPair, keyPairFromSeed, signEd25519, verifyEd25519 } from "../node/crypto/ed25519.ts";
import { hash } from "../node/crypto/hash.ts";
import { toHex } from "./common/bytes.ts";
import { MemoryStorage, memoryRefineContext, resultItem } from "./common/testing.ts";
import { accumulate as energyAccumulate, accumulateGasLimit as energyGasLimit, ALWAYS_ACCUMULATE_GAS } from "./energy-trading/accumulate.ts";
import { encodeEnvelopesItem as energyEnvelopes, encodeRegistrationsItem as energyRegistrations } from "./energy-trading/payload.ts";
import { refine as energyRefine } from "./energy-trading/refine.ts";
import { CONFIG_KEY, encodeMarketConfig, type MarketConfig } from "./energy-trading/storage.ts";
import { accumulate as telemetryAccumulate, accumulateGasLimit as telemetryGasLimit } from "./telemetry/accumulate.ts";
import { encodeEnvelopesItem as telemetryEnvelopes, encodeRegistrationsItem as telemetryRegistrations } from "./telemetry/payload.ts";
import { refine as telemetryRefine } from "./telemetry/refine.ts";
import { decodeRefineOutput as decodeTelemetryOutput, encodeRefineOutput as encodeTelemetryOutput, REGISTRATION_KEYS_OUTPUT } from "./telemetry/output.ts";
import type { RawDeviceId } from "./telemetry/payload.ts";

/** Recorded from the services before they moved onto services/common codec.ts and store.ts. */
const ENERGY_STATE_DIGEST = "b90efcdd65de620550c709ed2089bab64cb97564f0734d7de37878775e6e3b2b";
const TELEMETRY_STATE_DIGEST = "5ae55c0aff0af2a39466142a1d1647fee324c71fe0ed7ca251310345618c796b";
/** Recorded from the services' refine before their outputs were encoded by descriptors. */
const ENERGY_OUTPUTS_DIGEST = "c66b347b39d582138d0e27ec479e160f407fdef7b97ef8c6afcd474af883bc2c";
const TELEMETRY_OUTPUTS_DIGEST = "3cc5b4e882d799cd282df16cec1940fc9f59b1ea84ed3e8da0730bbe5589e4f5";

const crypto = { hash, verifyEd25519 };
const text = new TextEncoder();

/** SHA-256 over (u32 |output| ⌢ output) of each refine output, in order. */
/** A telemetry keys output as the output with ids it replaced (each id the first 16 bytes of H(key)); any other output as it is. */
function withDerivedIds(output: Uint8Array): Uint8Array {
  if (output[0] !== REGISTRATION_KEYS_OUTPUT) return output;
  const decoded = decodeTelemetryOutput(output);
  if (!decoded.ok || decoded.value.kind !== REGISTRATION_KEYS_OUTPUT) throw new Error("a keys output that does not decode");
  return encodeTelemetryOutput({
    kind: 1,
    registrations: decoded.value.registrations.map((r) => ({
      deviceId: hash(r.publicKey).subarray(0, 16) as RawDeviceId,
      publicKey: r.publicKey,
      kind: r.kind,
    })),
  });
}

function outputsDigest(outputs: readonly Uint8Array[]): string {
  const digest = createHash("sha256");
  const length = Buffer.alloc(4);
  for (const output of outputs) {
    length.writeUInt32LE(output.length);
    digest.update(length).update(output);
  }
  return digest.digest("hex");
}

/** SHA-256 over (u32 |key| ⌢ key ⌢ u32 |value| ⌢ value) of every entry, keys ascending. */
function storageDigest(storage: MemoryStorage): string {
  const digest = createHash("sha256");
  const length = Buffer.alloc(4);
  for (const key of [...storage.values.keys()].sort()) {
    const keyBytes = Buffer.from(key, "hex");
    const value = storage.values.get(key)!;
    length.writeUInt32LE(keyBytes.length);
    digest.update(length).update(keyBytes);
    length.writeUInt32LE(value.length);
    digest.update(length).update(value);
  }
  return digest.digest("hex");
}

interface Device {
  readonly key: Ed25519KeyPair;
  readonly id: DeviceId;
  seq: number;
}

function device(name: string): Device {
  const key = keyPairFromSeed(hash(text.encode(`state-root/${name}`)));
  return { key, id: deviceIdOf(key.publicKey), seq: 0 };
}

function signed(d: Device, kind: EnvelopeKind | string, body: Uint8Array, seq: number) {
  const bytes = signingBytes({ version: 1, device: d.id, seq, kind: kind as EnvelopeKind, timeMs: 1, body });
  return { publicKey: d.key.publicKey, signingBytes: bytes, signature: signEd25519(d.key, bytes) };
}

/** A signed envelope with the device's next seq (or `seq`, for a replay). */
function envelope(d: Device, kind: EnvelopeKind | string, body: unknown, seq = d.seq++) {
  return signed(d, kind, encodeCbor(body), seq);
}

/** An envelope whose signature does not verify (its last byte flipped). */
function forged(d: Device, kind: EnvelopeKind | string, body: unknown) {
  const e = envelope(d, kind, body);
  const signature = e.signature.slice();
  signature[63]! ^= 0x01;
  return { ...e, signature };
}

/** A host that runs refine then accumulate, one block per call, each payload its own package. */
class Host {
  readonly storage = new MemoryStorage();
  /** Every refine output of the run, in order (they enter work reports, so their bytes are pinned too). */
  readonly outputs: Uint8Array[] = [];
  slot = 0;
  private packages = 0;

  constructor(
    private readonly tag: number,
    private readonly refine: typeof energyRefine,
    private readonly accumulate: typeof energyAccumulate,
    private readonly gasLimit: bigint,
    private readonly callGas: bigint | undefined,
  ) {}

  /** One block: these packages (each a list of items), accumulated in one call. */
  block(...packages: Uint8Array[][]): void {
    this.slot++;
    const items = packages.flatMap((payloads) => {
      const packageHash = hash(Uint8Array.of(this.tag, ++this.packages));
      return payloads.map((payload) => {
        const output = this.refine(payload, memoryRefineContext(crypto));
        this.outputs.push(output);
        return resultItem(packageHash, output, this.gasLimit);
      });
    });
    this.storage.accumulate(this.accumulate, items, { slot: this.slot, hash, gasLimit: this.callGas });
  }

  until(slot: number): void {
    while (this.slot < slot) this.block();
  }
}

const START_MS = 1_750_000_000_000;
const INTERVAL_MS = 900_000;
const market: MarketConfig = {
  startMs: BigInt(START_MS),
  intervalMs: INTERVAL_MS,
  startSlot: 10,
  marketMsPerSlot: 300_000, // an interval is 3 slots
  mode: "pay-as-clear",
  importPriceMicrosPerKwh: 300_000,
  exportPriceMicrosPerKwh: 80_000,
  settlementDelayMs: INTERVAL_MS,
};
const clock = { marketStartMs: market.startMs, intervalMs: INTERVAL_MS };
const reading = (offsetMs: number, importWh: number, exportWh: number) => ({ t: START_MS + offsetMs, importWh, exportWh, powerW: 0, voltageV: 230 });
const order = (interval: number, side: "bid" | "ask", energyWh: number, priceMicrosPerKwh: number) => ({
  interval,
  orders: [{ side, energyWh, priceMicrosPerKwh }],
});

/** The fixed energy workload; returns the host after it. */
function energyRun(): Host {
  const chain = new Host(
    0xe1,
    energyRefine,
    energyAccumulate,
    energyGasLimit({ devices: 256, envelopes: 256, registrations: 640 }),
    ALWAYS_ACCUMULATE_GAS + 10_000_000n,
  );
  chain.storage.values.set(toHex(CONFIG_KEY), encodeMarketConfig(market));
  const meters = ["A", "B", "C", "D"].map((n) => device(`meter ${n}`));
  const agents = ["A", "B", "C", "D"].map((n) => device(`agent ${n}`));
  const stranger = device("stranger");
  // Registrations: meters first, then their agents; then a repeat and an agent without a household.
  chain.block([
    energyRegistrations([
      ...meters.map((m) => ({ publicKey: m.key.publicKey, role: "meter" as const })),
      ...agents.map((a, i) => ({ publicKey: a.key.publicKey, role: "agent" as const, household: Buffer.from(meters[i]!.id, "hex") })),
    ]),
  ]);
  chain.block([
    energyRegistrations([
      { publicKey: meters[0]!.key.publicKey, role: "meter" },
      { publicKey: stranger.key.publicKey, role: "agent", household: Buffer.from(device("nobody").id, "hex") },
    ]),
  ]);
  // Orders for intervals 0 and 1 in two packages of one block; a replayed order; a withdrawn set.
  const [a, b, c, d] = agents as [Device, Device, Device, Device];
  const replayed = envelope(a, "agent.order", order(0, "bid", 1_000, 250_000));
  chain.block(
    [energyEnvelopes(clock, [replayed, envelope(b, "agent.order", order(0, "ask", 600, 150_000)), envelope(c, "agent.order", order(0, "ask", 900, 120_000))])],
    [
      energyEnvelopes(clock, [
        envelope(d, "agent.order", order(0, "bid", 700, 280_000)),
        envelope(a, "agent.order", order(1, "bid", 400, 200_000)),
        envelope(b, "agent.order", order(1, "ask", 300, 100_000)),
      ]),
    ],
  );
  chain.block([
    energyEnvelopes(clock, [
      replayed,
      envelope(c, "agent.order", order(1, "ask", 500, 90_000)),
      envelope(d, "agent.order", { interval: 1, orders: [] }),
      forged(d, "agent.order", order(1, "bid", 1, 1)),
    ]),
  ]);
  // A later seq replaces an agent's set for interval 1; a meter sending an order is the wrong kind.
  chain.block([
    energyEnvelopes(clock, [envelope(c, "agent.order", order(1, "ask", 450, 95_000)), envelope(meters[3]!, "agent.order", order(1, "ask", 10, 1))]),
  ]);
  chain.until(10); // market time reaches interval 0: it clears
  // Readings in interval 0, two packages in one block; an unregistered meter; an order for a cleared interval.
  const [mA, mB, mC, mD] = meters as [Device, Device, Device, Device];
  chain.block(
    [
      energyEnvelopes(clock, [
        envelope(mA, "meter.reading", [reading(10_000, 5_000, 0), reading(400_000, 5_300, 0), reading(800_000, 5_800, 0)]),
        envelope(mB, "meter.reading", [reading(10_000, 100, 2_000), reading(800_000, 100, 2_500)]),
      ]),
    ],
    [
      energyEnvelopes(clock, [
        envelope(mC, "meter.reading", [reading(20_000, 50, 7_000), reading(700_000, 60, 7_800)]),
        envelope(stranger, "meter.reading", [reading(20_000, 1, 1)]),
        envelope(a, "agent.order", order(0, "bid", 5, 5)),
      ]),
    ],
  );
  chain.block([energyEnvelopes(clock, [envelope(mD, "meter.reading", [reading(30_000, 900, 10), reading(850_000, 1_500, 10)])])]);
  chain.until(13); // interval 1 clears
  // Readings into interval 1, a replayed reading, a meter reset, a power-bound breach; orders for intervals 3 and 7.
  const replayedReading = envelope(mA, "meter.reading", [reading(1_000_000, 5_900, 0), reading(1_500_000, 6_100, 0)]);
  chain.block([
    energyEnvelopes(clock, [
      replayedReading,
      envelope(mB, "meter.reading", [reading(1_000_000, 100, 2_600), reading(1_600_000, 150, 2_800)]),
      envelope(a, "agent.order", order(3, "bid", 800, 210_000)),
      envelope(b, "agent.order", order(3, "ask", 350, 110_000)),
      envelope(c, "agent.order", order(7, "ask", 200, 90_000)),
      envelope(d, "agent.order", order(7, "bid", 250, 260_000)),
    ]),
  ]);
  chain.block(
    [energyEnvelopes(clock, [replayedReading, envelope(mC, "meter.reset", [reading(1_000_000, 0, 0)])])],
    [
      energyEnvelopes(clock, [
        envelope(mC, "meter.reading", [reading(1_200_000, 10, 300), reading(1_700_000, 20, 700)]),
        envelope(mD, "meter.reading", [reading(1_100_000, 1_500 + 50_000_000, 10)]),
      ]),
    ],
  );
  chain.until(18);
  // Readings into intervals 2 and 3, which stay unsettled at the end.
  chain.block([
    energyEnvelopes(clock, [
      envelope(mA, "meter.reading", [reading(2_000_000, 6_300, 0), reading(2_900_000, 6_700, 0)]),
      envelope(mB, "meter.reading", [reading(2_000_000, 200, 3_000), reading(2_800_000, 220, 3_400)]),
    ]),
  ]);
  // At slot 21 intervals 0 and 1 are settled, 2 and 3 cleared (3 with trades), 7 still has orders.
  chain.until(21);
  return chain;
}

/** The fixed telemetry workload; returns the host after it. */
function telemetryRun(): Host {
  const chain = new Host(0x7e, telemetryRefine, telemetryAccumulate, telemetryGasLimit({ devices: 64, envelopes: 256, registrations: 64 }), undefined);
  const devices = ["meter", "inverter", "router", "client", "agent"].map((kind) => ({ kind, d: device(`telemetry ${kind}`) }));
  const unregistered = device("telemetry unregistered");
  chain.block([telemetryRegistrations(devices.slice(0, 3).map(({ kind, d }) => ({ publicKey: d.key.publicKey, kind: kind as "meter" })))]);
  chain.block([telemetryRegistrations(devices.slice(2).map(({ kind, d }) => ({ publicKey: d.key.publicKey, kind: kind as "meter" })))]); // the router again: refused
  const [meter, inverter, router, client, agent] = devices.map(({ d }) => d) as [Device, Device, Device, Device, Device];
  const body = (n: number) => ({ n, power: n * 7 });
  const first = envelope(meter, "meter.reading", body(1));
  chain.block(
    [
      telemetryEnvelopes([
        first,
        envelope(meter, "meter.reading", body(2)),
        envelope(inverter, "inverter.status", body(3)),
        envelope(unregistered, "meter.reading", body(4)),
      ]),
    ],
    [
      telemetryEnvelopes([envelope(router, "router.usage", body(5)), forged(client, "client.ping", body(6)), envelope(agent, "agent.note", body(7))]),
      telemetryEnvelopes([envelope(client, "client.ping", body(8))]),
    ],
  );
  // Replays (the first envelope again), a gap in seqs, an envelope far ahead then one inside the window.
  chain.block([
    telemetryEnvelopes([
      first,
      envelope(meter, "meter.reading", body(9), 10),
      envelope(meter, "meter.reading", body(10), 5),
      envelope(inverter, "inverter.status", body(11), 200),
    ]),
  ]);
  chain.block([telemetryEnvelopes([envelope(inverter, "inverter.status", body(12), 150), envelope(inverter, "inverter.status", body(13), 100)])]);
  chain.until(8);
  return chain;
}

describe("state bytes of telemetry and energy-trading (a recorded run)", () => {
  it("energy-trading: the storage after the fixed workload has the recorded digest", () => {
    const { storage } = energyRun();
    // The workload reached every kind of value (so the digest covers them all).
    const prefixes = new Set([...storage.values.keys()].map((k) => Buffer.from(k, "hex").toString("latin1").split("/")[0]));
    expect([...prefixes].sort()).toEqual(
      [
        "balance",
        "config",
        "dev",
        "grid-balance",
        "households",
        "interval",
        "ledger",
        "market",
        "metered",
        "orders",
        "outcome",
        "outcome-fifo",
        "stats",
        "trades",
      ].sort(),
    );
    expect(storageDigest(storage)).toBe(ENERGY_STATE_DIGEST);
  });

  it("telemetry: the storage after the fixed workload has the recorded digest", () => {
    const { storage } = telemetryRun();
    expect(storage.size).toBeGreaterThan(10);
    expect(storageDigest(storage)).toBe(TELEMETRY_STATE_DIGEST);
  });

  it("the refine outputs of both workloads (what enters work reports) have the recorded digests", () => {
    const energy = energyRun();
    const telemetry = telemetryRun();
    expect(energy.outputs.length).toBeGreaterThan(10);
    expect(outputsDigest(energy.outputs)).toBe(ENERGY_OUTPUTS_DIGEST);
    // Telemetry's registrations now refine to keys (REGISTRATION_KEYS_OUTPUT), the ids derived by
    // accumulate: written back with the ids they stand for, the outputs are the recorded ones.
    expect(outputsDigest(telemetry.outputs.map(withDerivedIds))).toBe(TELEMETRY_OUTPUTS_DIGEST);
    expect(telemetry.outputs.some((o) => o[0] === REGISTRATION_KEYS_OUTPUT)).toBe(true);
  });
});
