import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { encodeCbor } from "../../devices/cbor.ts";
import { type DeviceId, deviceIdOf, type EnvelopeKind, signingBytes } from "../../devices/envelope.ts";
import { type Ed25519KeyPair, keyPairFromSeed, signEd25519, verifyEd25519 } from "../../node/crypto/ed25519.ts";
import { hash } from "../../node/crypto/hash.ts";
import { toHex } from "../common/bytes.ts";
import { decodeOutcome, envelopeRejection, outcomeKey, registrationRejection } from "../common/outcome.ts";
import { MemoryStorage, memoryRefineContext, resultItem } from "../common/testing.ts";
import { accumulate, accumulateGasLimit, ALWAYS_ACCUMULATE_GAS, LEDGER_INTERVALS_KEPT } from "./accumulate.ts";
import { encodeEnvelopesItem, encodeRegistrationsItem } from "./payload.ts";
import { refine } from "./refine.ts";
import { METER_POWER_W_MAX } from "./condense.ts";
import {
  balanceKey,
  CONFIG_KEY,
  decodeBalance,
  decodeDeviceRecord,
  decodeIntervalSummary,
  decodeLedgerEntries,
  decodeMetered,
  deviceKey,
  encodeMarketConfig,
  GRID_BALANCE_KEY,
  intervalKey,
  ledgerKey,
  type MarketConfig,
  meteredKey,
  type StoredLedgerEntry,
} from "./storage.ts";

const START_MS = 1_750_000_000_000;
const INTERVAL_MS = 900_000;
const config: MarketConfig = {
  startMs: BigInt(START_MS),
  intervalMs: INTERVAL_MS,
  startSlot: 10,
  marketMsPerSlot: 300_000, // 5 minutes a slot: an interval is 3 slots
  mode: "pay-as-clear",
  importPriceMicrosPerKwh: 300_000,
  exportPriceMicrosPerKwh: 80_000,
  settlementDelayMs: INTERVAL_MS,
};
const clock = { marketStartMs: config.startMs, intervalMs: INTERVAL_MS };
const crypto = { hash, verifyEd25519 };

interface Device {
  readonly key: Ed25519KeyPair;
  readonly id: DeviceId;
  seq: number;
}

function device(name: string): Device {
  const key = keyPairFromSeed(hash(new TextEncoder().encode(name)));
  return { key, id: deviceIdOf(key.publicKey), seq: 0 };
}

/** A signed envelope record of `body`, with the device's next seq (or `seq`). */
function envelope(d: Device, kind: EnvelopeKind, body: unknown, seq = d.seq++) {
  const signed = signingBytes({ version: 1, device: d.id, seq, kind, timeMs: 1, body: encodeCbor(body) });
  return { publicKey: d.key.publicKey, signingBytes: signed, signature: signEd25519(d.key, signed), seq };
}

const reading = (offsetMs: number, importWh: number, exportWh: number) => ({ t: START_MS + offsetMs, importWh, exportWh, powerW: 0, voltageV: 230 });

/** The service on an in-memory host, one accumulate call per block, every block (χ_Z). */
class Chain {
  readonly storage = new MemoryStorage();
  slot = 0;
  private packages = 0;

  constructor(market: MarketConfig = config) {
    this.storage.values.set(toHex(CONFIG_KEY), encodeMarketConfig(market));
  }

  /** One block carrying these payloads (each its own package); returns the package hashes. */
  block(...payloads: Uint8Array[]): Uint8Array[] {
    this.slot++;
    const hashes = payloads.map(() => hash(Uint8Array.of(0xe7, ++this.packages)));
    const items = payloads.map((payload, i) =>
      resultItem(hashes[i]!, refine(payload, memoryRefineContext(crypto)), accumulateGasLimit({ devices: 256, envelopes: 256, registrations: 640 })),
    );
    this.storage.accumulate(accumulate, items, { slot: this.slot, hash, gasLimit: ALWAYS_ACCUMULATE_GAS + 10_000_000n });
    return hashes;
  }

  until(slot: number): void {
    while (this.slot < slot) this.block();
  }

  outcome(packageHash: Uint8Array) {
    const raw = this.storage.get(outcomeKey(packageHash));
    if (raw === null) throw new Error("no outcome");
    const decoded = decodeOutcome(raw);
    if (!decoded.ok) throw new Error(decoded.error);
    return decoded.value;
  }

  balance(key: Uint8Array): bigint {
    const raw = this.storage.get(key);
    if (raw === null) return 0n;
    const decoded = decodeBalance(raw);
    if (!decoded.ok) throw new Error(decoded.error);
    return decoded.value;
  }

  ledger(interval: number): StoredLedgerEntry[] {
    const raw = this.storage.get(ledgerKey(interval));
    if (raw === null) return [];
    const decoded = decodeLedgerEntries(raw);
    if (!decoded.ok) throw new Error(decoded.error);
    return decoded.value;
  }

  summary(interval: number) {
    const raw = this.storage.get(intervalKey(interval));
    if (raw === null) return null;
    const decoded = decodeIntervalSummary(raw);
    if (!decoded.ok) throw new Error(decoded.error);
    return decoded.value;
  }
}

function registerHouseholds(chain: Chain, ...pairs: [meter: Device, agent: Device][]): Uint8Array {
  const [h] = chain.block(
    encodeRegistrationsItem([
      ...pairs.map(([meter]) => ({ publicKey: meter.key.publicKey, role: "meter" as const })),
      ...pairs.map(([meter, agent]) => ({ publicKey: agent.key.publicKey, role: "agent" as const, household: Buffer.from(meter.id, "hex") })),
    ]),
  );
  return h!;
}

const hexParty = (p: StoredLedgerEntry["buyer"]) => (p === "grid" ? "grid" : toHex(p));

describe("energy-trading accumulate", () => {
  it("registers households and agents, and refuses an agent without a registered meter and a second registration", () => {
    const chain = new Chain();
    const [meterA, agentA, stranger] = [device("meter A"), device("agent A"), device("stranger")];
    const first = registerHouseholds(chain, [meterA, agentA]);
    expect(chain.outcome(first)).toMatchObject({ registrationsSettled: 2, rejectedRegistrations: [] });
    const [second] = chain.block(
      encodeRegistrationsItem([
        { publicKey: meterA.key.publicKey, role: "meter" },
        { publicKey: stranger.key.publicKey, role: "agent", household: Buffer.from(device("nobody").id, "hex") },
      ]),
    );
    const outcome = chain.outcome(second!);
    expect(registrationRejection(outcome, meterA.id)).toBe("JG_ERR_DEVICE_EXISTS");
    expect(registrationRejection(outcome, stranger.id)).toBe("JG_ERR_ENERGY_HOUSEHOLD");
  });

  it("clears a pay-as-clear interval and settles it against the meters (hand-computed)", () => {
    const chain = new Chain();
    const [meterA, agentA, meterB, agentB] = [device("meter A"), device("agent A"), device("meter B"), device("agent B")];
    registerHouseholds(chain, [meterA, agentA], [meterB, agentB]);
    // A wants 1,000 Wh at up to 0.25/kWh; B sells 600 Wh at 0.15/kWh or more.
    const [orders] = chain.block(
      encodeEnvelopesItem(clock, [
        envelope(agentA, "agent.order", { interval: 0, orders: [{ side: "bid", energyWh: 1000, priceMicrosPerKwh: 250_000 }] }),
        envelope(agentB, "agent.order", { interval: 0, orders: [{ side: "ask", energyWh: 600, priceMicrosPerKwh: 150_000 }] }),
      ]),
    );
    expect(chain.outcome(orders!)).toMatchObject({ envelopesSettled: 2, rejectedEnvelopes: [] });
    chain.until(10); // market time reaches interval 0's start: gate closure
    // Uniform price: the midpoint of the marginal bid and ask, (250,000 + 150,000) / 2 = 200,000.
    expect(chain.summary(0)).toMatchObject({ settled: false, clearingPriceMicrosPerKwh: 200_000, tradedWh: 600n, orders: 2, trades: 1 });
    // During the interval: A imports 800 Wh, B exports 500 Wh (the first reading only anchors the counters).
    const [readings] = chain.block(
      encodeEnvelopesItem(clock, [
        envelope(meterA, "meter.reading", [reading(10_000, 5_000, 0), reading(800_000, 5_800, 0)]),
        envelope(meterB, "meter.reading", [reading(10_000, 100, 2_000), reading(800_000, 100, 2_500)]),
      ]),
    );
    expect(chain.outcome(readings!)).toMatchObject({ envelopesSettled: 2, rejectedEnvelopes: [] });
    chain.until(16); // end of interval 0 (slot 13) plus the settlement delay of one interval (3 slots)
    expect(chain.summary(0)).toMatchObject({ settled: true, ledgerEntries: 3 });
    const entries = chain.ledger(0).map((e) => ({ ...e, buyer: hexParty(e.buyer), seller: hexParty(e.seller) }));
    expect(entries).toEqual(
      expect.arrayContaining([
        // 600 Wh × 200,000 µ/kWh = 120,000 µ
        { reason: "trade", buyer: meterA.id, seller: meterB.id, energyWh: 600, priceMicrosPerKwh: 200_000, amountMicros: 120_000n },
        // A used 800 Wh but bought 600: 200 Wh from the grid at 300,000 µ/kWh = 60,000 µ
        { reason: "grid-import", buyer: meterA.id, seller: "grid", energyWh: 200, priceMicrosPerKwh: 300_000, amountMicros: 60_000n },
        // B sold 600 Wh but fed in 500: the grid covered 100 Wh, B pays the import price = 30,000 µ
        { reason: "shortfall", buyer: meterB.id, seller: "grid", energyWh: 100, priceMicrosPerKwh: 300_000, amountMicros: 30_000n },
      ]),
    );
    expect(entries).toHaveLength(3);
    expect(chain.balance(balanceKey(meterA.id))).toBe(-180_000n);
    expect(chain.balance(balanceKey(meterB.id))).toBe(90_000n);
    expect(chain.balance(GRID_BALANCE_KEY)).toBe(90_000n);
    expect(chain.balance(balanceKey(meterA.id)) + chain.balance(balanceKey(meterB.id)) + chain.balance(GRID_BALANCE_KEY)).toBe(0n); // value is conserved
  });

  it("refuses late, far, backwards, replayed and misdirected envelopes, and credits nothing of them", () => {
    const chain = new Chain();
    const [meterA, agentA] = [device("meter A"), device("agent A")];
    registerHouseholds(chain, [meterA, agentA]);
    const first = envelope(meterA, "meter.reading", [reading(10_000, 5_000, 0), reading(20_000, 5_010, 0)]);
    chain.block(encodeEnvelopesItem(clock, [first]));
    chain.until(11);
    const before = new Map(chain.storage.values);
    const late = { ...envelope(agentA, "agent.order", { interval: 0, orders: [{ side: "bid", energyWh: 10, priceMicrosPerKwh: 1 }] }) };
    const far = envelope(agentA, "agent.order", { interval: 500, orders: [{ side: "bid", energyWh: 10, priceMicrosPerKwh: 1 }] });
    const backwards = envelope(meterA, "meter.reading", [reading(30_000, 5_009, 0)]);
    const wrongKind = envelope(meterA, "agent.order", { interval: 5, orders: [{ side: "ask", energyWh: 10, priceMicrosPerKwh: 1 }] });
    const future = envelope(agentA, "meter.reading", [reading(40_000, 1, 0)]);
    const [h] = chain.block(encodeEnvelopesItem(clock, [late, far, backwards, wrongKind, future]), encodeEnvelopesItem(clock, [first]));
    const outcome = chain.outcome(h!);
    expect(envelopeRejection(outcome, agentA.id, late.seq)).toBe("JG_ERR_ENERGY_INTERVAL_CLOSED");
    expect(envelopeRejection(outcome, agentA.id, far.seq)).toBe("JG_ERR_ENERGY_INTERVAL_FAR");
    expect(envelopeRejection(outcome, meterA.id, backwards.seq)).toBe("JG_ERR_ENERGY_COUNTER");
    expect(envelopeRejection(outcome, meterA.id, wrongKind.seq)).toBe("JG_ERR_ENERGY_KIND");
    expect(envelopeRejection(outcome, agentA.id, future.seq)).toBe("JG_ERR_ENERGY_KIND"); // an agent sending readings
    // The replay is in a second package of the same block.
    const replayPackage = hash(Uint8Array.of(0xe7, 4));
    expect(envelopeRejection(chain.outcome(replayPackage), meterA.id, first.seq)).toBe("JG_ERR_ENVELOPE_REPLAY");
    // Nothing changed but the refused packages' outcomes and the bookkeeping of the clock.
    const changed = [...chain.storage.values.keys()].filter((k) => toHex(before.get(k) ?? new Uint8Array()) !== toHex(chain.storage.values.get(k)!));
    const allowed = new Set(["outcome/", "outcome-fifo", "stats", "market", "interval/"].map((p) => toHex(new TextEncoder().encode(p))));
    expect(changed.filter((k) => ![...allowed].some((p) => k.startsWith(p)))).toEqual([]);
  });

  it("refuses readings and orders of devices that are not registered, and settles nothing of them", () => {
    const chain = new Chain();
    const [meter, agent] = [device("unregistered meter"), device("unregistered agent")];
    const reading0 = envelope(meter, "meter.reading", [reading(10_000, 1, 0), reading(20_000, 5, 0)]);
    const order = envelope(agent, "agent.order", { interval: 3, orders: [{ side: "bid", energyWh: 10, priceMicrosPerKwh: 100_000 }] });
    const [h] = chain.block(encodeEnvelopesItem(clock, [reading0, order]));
    const outcome = chain.outcome(h!);
    expect(envelopeRejection(outcome, meter.id, reading0.seq)).toBe("JG_ERR_DEVICE_UNREGISTERED");
    expect(envelopeRejection(outcome, agent.id, order.seq)).toBe("JG_ERR_DEVICE_UNREGISTERED");
    expect(outcome.envelopesSettled).toBe(0);
    const keys = [...chain.storage.values.keys()].map((k) => Buffer.from(k, "hex").toString("latin1"));
    expect(keys.filter((k) => k.startsWith("orders/") || k.startsWith("metered/") || k.startsWith("dev/"))).toEqual([]);
  });

  it("refuses a whole item built for another market clock", () => {
    const chain = new Chain();
    const [meterA, agentA] = [device("meter A"), device("agent A")];
    registerHouseholds(chain, [meterA, agentA]);
    const e = envelope(meterA, "meter.reading", [reading(10_000, 1, 0)]);
    const [h] = chain.block(encodeEnvelopesItem({ marketStartMs: config.startMs, intervalMs: 60_000 }, [e]));
    expect(envelopeRejection(chain.outcome(h!), meterA.id, e.seq)).toBe("JG_ERR_ENERGY_CLOCK");
  });

  it("gives the same ledger whatever order the orders arrive in, and conserves value", () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            bid: fc.boolean(),
            energyWh: fc.integer({ min: 1, max: 5_000 }),
            priceMicrosPerKwh: fc.integer({ min: 80_000, max: 300_000 }),
            usedWh: fc.integer({ min: 0, max: 5_000 }),
          }),
          { minLength: 2, maxLength: 6 },
        ),
        fc.integer({ min: 0, max: 1_000 }),
        (households, shuffleSeed) => {
          const run = (order: number[]) => {
            const chain = new Chain({ ...config, mode: "pay-as-clear" });
            const pairs = households.map((_, i) => [device(`m${i}`), device(`a${i}`)] as [Device, Device]);
            registerHouseholds(chain, ...pairs);
            // Each order in its own package, in the given order, one block each.
            for (const i of order) {
              const o = households[i]!;
              chain.block(
                encodeEnvelopesItem(clock, [
                  envelope(pairs[i]![1], "agent.order", {
                    interval: 0,
                    orders: [{ side: o.bid ? "bid" : "ask", energyWh: o.energyWh, priceMicrosPerKwh: o.priceMicrosPerKwh }],
                  }),
                ]),
              );
            }
            chain.until(11);
            chain.block(
              encodeEnvelopesItem(
                clock,
                pairs.map(([meter], i) =>
                  envelope(meter, "meter.reading", [
                    reading(10_000, 0, 0),
                    reading(800_000, households[i]!.bid ? households[i]!.usedWh : 0, households[i]!.bid ? 0 : households[i]!.usedWh),
                  ]),
                ),
              ),
            );
            chain.until(17);
            const total = pairs.reduce((sum, [meter]) => sum + chain.balance(balanceKey(meter.id)), 0n) + chain.balance(GRID_BALANCE_KEY);
            expect(total).toBe(0n);
            return chain.ledger(0).map((e) => `${e.reason} ${hexParty(e.buyer)} ${hexParty(e.seller)} ${e.energyWh} ${e.priceMicrosPerKwh} ${e.amountMicros}`);
          };
          const forward = households.map((_, i) => i);
          const shuffled = [...forward].sort((a, b) => ((a * 7919 + shuffleSeed) % 101) - ((b * 7919 + shuffleSeed) % 101));
          expect(run(shuffled)).toEqual(run(forward));
        },
      ),
      { numRuns: 15 },
    );
  });

  it("books late readings of a settled interval into the first interval still open", () => {
    const chain = new Chain();
    const [meterA, agentA] = [device("meter A"), device("agent A")];
    registerHouseholds(chain, [meterA, agentA]);
    chain.block(encodeEnvelopesItem(clock, [envelope(meterA, "meter.reading", [reading(0, 1_000, 0), reading(300_000, 1_100, 0)])]));
    chain.until(16); // interval 0 settled with 100 Wh imported
    expect(chain.ledger(0)).toEqual([
      { reason: "grid-import", buyer: expect.anything(), seller: "grid", energyWh: 100, priceMicrosPerKwh: 300_000, amountMicros: 30_000n },
    ]);
    // A reading from the end of interval 0 arrives late (+50 Wh), then one in interval 2 (+20 Wh).
    const [late] = chain.block(encodeEnvelopesItem(clock, [envelope(meterA, "meter.reading", [reading(900_000, 1_150, 0), reading(1_900_000, 1_170, 0)])]));
    expect(chain.outcome(late!)).toMatchObject({ envelopesSettled: 1, rejectedEnvelopes: [] });
    chain.until(22); // interval 1 settled: it got the late 50 Wh
    expect(chain.ledger(1).map((e) => e.energyWh)).toEqual([50]);
    chain.until(25);
    expect(chain.ledger(2).map((e) => e.energyWh)).toEqual([20]);
  });

  it("keeps the ledger of the last LEDGER_INTERVALS_KEPT settled intervals in state, and deletes older ones", () => {
    const chain = new Chain();
    const [meterA, agentA] = [device("meter A"), device("agent A")];
    registerHouseholds(chain, [meterA, agentA]);
    chain.block(encodeEnvelopesItem(clock, [envelope(meterA, "meter.reading", [reading(0, 1_000, 0), reading(300_000, 1_100, 0)])]));
    chain.until(16); // interval 0 settled: 16 = start slot 10 + its end (3 slots) + the delay (3)
    expect(chain.ledger(0)).toHaveLength(1);
    const settledAt = (k: number) => 16 + 3 * k;
    chain.until(settledAt(LEDGER_INTERVALS_KEPT) - 1);
    expect(chain.summary(0)).not.toBeNull();
    chain.until(settledAt(LEDGER_INTERVALS_KEPT)); // interval 672 settles: interval 0 goes
    expect(chain.summary(LEDGER_INTERVALS_KEPT)).toMatchObject({ settled: true });
    expect(chain.summary(0)).toBeNull();
    expect(chain.ledger(0)).toEqual([]);
    expect(chain.summary(1)).toMatchObject({ settled: true });
  });
});

describe("energy-trading accumulate: the power bound and meter resets (issue 15, point 7)", () => {
  // Every test here stays before the market's start slot (10): the clock does not run, so interval
  // 0's metered energy stays in state and nothing but the packages' own effects changes it.

  /** The household's metered energy in interval 0, Wh. */
  function metered(chain: Chain, meter: Device): { importWh: number; exportWh: number } {
    const raw = chain.storage.get(meteredKey(0, Buffer.from(meter.id, "hex")));
    if (raw === null) return { importWh: 0, exportWh: 0 };
    const decoded = decodeMetered(raw);
    if (!decoded.ok) throw new Error(decoded.error);
    return decoded.value;
  }

  function lastReading(chain: Chain, meter: Device) {
    const raw = chain.storage.get(deviceKey(meter.id));
    if (raw === null) throw new Error("meter not registered");
    const decoded = decodeDeviceRecord(raw);
    if (!decoded.ok) throw new Error(decoded.error);
    return decoded.value.lastReading;
  }

  /**
   * A hash of the whole state but what any package writes about itself (its outcome, the outcome
   * FIFO, the service's counters): equal before and after a package that changed nothing else.
   */
  function stateHash(chain: Chain): string {
    const own = ["outcome/", "outcome-fifo", "stats"].map((p) => toHex(new TextEncoder().encode(p)));
    const keys = [...chain.storage.values.keys()].filter((k) => !own.some((p) => k.startsWith(p))).sort();
    const parts = keys.flatMap((k) => [Buffer.from(k, "hex"), Buffer.from(chain.storage.values.get(k)!)]);
    return toHex(hash(Buffer.concat(parts)));
  }

  /** A meter (with its agent) whose last settled reading is (t = +10 s, importWh, exportWh). */
  function settledMeter(importWh: number, exportWh: number): { chain: Chain; meter: Device; agent: Device } {
    const chain = new Chain();
    const [meter, agent] = [device("meter A"), device("agent A")];
    registerHouseholds(chain, [meter, agent]);
    const [h] = chain.block(encodeEnvelopesItem(clock, [envelope(meter, "meter.reading", [reading(10_000, importWh, exportWh)])]));
    expect(chain.outcome(h!)).toMatchObject({ envelopesSettled: 1, rejectedEnvelopes: [] });
    return { chain, meter, agent };
  }

  /** Sends each envelope in its own package of one block; returns each one's refusal code or null (settled). */
  function send(chain: Chain, ...envelopes: ReturnType<typeof envelope>[]): (string | null)[] {
    return envelopes.map((e) => {
      const [h] = chain.block(encodeEnvelopesItem(clock, [e]));
      const outcome = chain.outcome(h!);
      const code = envelopeRejection(outcome, deviceIdOf(e.publicKey), e.seq);
      expect(outcome.envelopesSettled).toBe(code === null ? 1 : 0);
      return code;
    });
  }

  // The bound: 250,000 W × 14,400 ms = 3.6e9 W·ms = 1,000 Wh exactly.
  const BOUND_MS = 14_400;
  const BOUND_WH = (METER_POWER_W_MAX * BOUND_MS) / 3_600_000;

  it("refuses a column body holding absolute values instead of differences, credits nothing of it, and settles the next correct reading", () => {
    // The meter: its counter near 1.2 MWh, one reading a second.
    const { chain, meter } = settledMeter(1_234_560, 0);
    const before = stateHash(chain);
    // It meant 1,234,561, …562, …563 but wrote each value where its difference belongs: read as
    // the column form says, the counter climbs by 1.2 MWh a second (4.4 GW).
    const absolute = envelope(meter, "meter.reading", {
      t0: START_MS + 11_000,
      dtMs: 1_000,
      cols: { importWh: [1_234_561, 1_234_562, 1_234_563], exportWh: [0, 0, 0] },
    });
    const [bad] = chain.block(encodeEnvelopesItem(clock, [absolute]));
    expect(chain.outcome(bad!)).toMatchObject({ envelopesSettled: 0 });
    expect(envelopeRejection(chain.outcome(bad!), meter.id, absolute.seq)).toBe("JG_ERR_ENERGY_POWER");
    // Nothing credited, and the meter's last reading and replay window are as they were, byte for byte.
    expect(stateHash(chain)).toBe(before);
    expect(lastReading(chain, meter)).toEqual({ t: BigInt(START_MS + 10_000), importWh: 1_234_560n, exportWh: 0n });
    // The meter's next correct envelope settles, from the last settled reading: 1,234,566 − 1,234,560 = 6 Wh.
    expect(send(chain, envelope(meter, "meter.reading", [reading(15_000, 1_234_565, 0), reading(16_000, 1_234_566, 0)]))).toEqual([null]);
    expect(metered(chain, meter)).toEqual({ importWh: 6, exportWh: 0 });
  });

  it("refuses a jump from the last settled reading (checked in accumulate), credits nothing, and settles the next correct reading", () => {
    const { chain, meter } = settledMeter(1_234_560, 0);
    const before = stateHash(chain);
    // One reading whose counter is 1,000 times what it should be: refine has nothing in the
    // package to compare it with; accumulate compares it with the last settled reading.
    const jump = envelope(meter, "meter.reading", [reading(11_000, 1_234_561_000, 0)]);
    expect(send(chain, jump)).toEqual(["JG_ERR_ENERGY_POWER"]);
    expect(stateHash(chain)).toBe(before);
    expect(send(chain, envelope(meter, "meter.reading", [reading(12_000, 1_234_561, 0)]))).toEqual([null]);
    expect(metered(chain, meter)).toEqual({ importWh: 1, exportWh: 0 });
  });

  it("settles a package's good envelopes around a refused one: the next counts from the last accepted", () => {
    const { chain, meter } = settledMeter(1_000, 0);
    const good = envelope(meter, "meter.reading", [reading(11_000, 1_010, 0)]);
    const absolute = envelope(meter, "meter.reading", { t0: START_MS + 12_000, dtMs: 1_000, cols: { importWh: [1_011, 1_012], exportWh: [0, 0] } });
    const after = envelope(meter, "meter.reading", [reading(14_000, 1_013, 0)]);
    const [h] = chain.block(encodeEnvelopesItem(clock, [good, absolute, after]));
    const outcome = chain.outcome(h!);
    expect(outcome.envelopesSettled).toBe(2);
    expect(envelopeRejection(outcome, meter.id, absolute.seq)).toBe("JG_ERR_ENERGY_POWER");
    expect(metered(chain, meter)).toEqual({ importWh: 13, exportWh: 0 });
    expect(lastReading(chain, meter)).toEqual({ t: BigInt(START_MS + 14_000), importWh: 1_013n, exportWh: 0n });
  });

  it("settles energy exactly at the bound (import plus export) and refuses one Wh more, in accumulate and in refine", () => {
    expect(Number.isInteger(BOUND_WH)).toBe(true);
    const { chain, meter } = settledMeter(5_000, 0);
    // The gap from the last settled reading (accumulate): 600 + 401 Wh in 14.4 s is one Wh over.
    expect(send(chain, envelope(meter, "meter.reading", [reading(10_000 + BOUND_MS, 5_600, BOUND_WH - 600 + 1)]))).toEqual(["JG_ERR_ENERGY_POWER"]);
    expect(metered(chain, meter)).toEqual({ importWh: 0, exportWh: 0 });
    expect(send(chain, envelope(meter, "meter.reading", [reading(10_000 + BOUND_MS, 5_600, BOUND_WH - 600)]))).toEqual([null]);
    expect(metered(chain, meter)).toEqual({ importWh: 600, exportWh: BOUND_WH - 600 });
    // Two readings of one envelope (refine), from t = +24.4 s: 1,001 Wh in 14.4 s, then 1,000.
    const t = 10_000 + BOUND_MS;
    const e = BOUND_WH - 600;
    expect(send(chain, envelope(meter, "meter.reading", [reading(t + 1_000, 5_600, e), reading(t + 1_000 + BOUND_MS, 5_600 + BOUND_WH + 1, e)]))).toEqual([
      "JG_ERR_ENERGY_POWER",
    ]);
    expect(send(chain, envelope(meter, "meter.reading", [reading(t + 1_000, 5_600, e), reading(t + 1_000 + BOUND_MS, 5_600 + BOUND_WH, e)]))).toEqual([null]);
    expect(metered(chain, meter)).toEqual({ importWh: 600 + BOUND_WH, exportWh: e });
    // Across two envelopes of one package (refine, against the package's last accepted reading).
    const u = t + 1_000 + BOUND_MS;
    const first = envelope(meter, "meter.reading", [reading(u + 1_000, 5_600 + BOUND_WH, e)]);
    const over = envelope(meter, "meter.reading", [reading(u + 1_000 + BOUND_MS, 5_600 + 2 * BOUND_WH + 1, e)]);
    const [h] = chain.block(encodeEnvelopesItem(clock, [first, over]));
    expect(envelopeRejection(chain.outcome(h!), meter.id, over.seq)).toBe("JG_ERR_ENERGY_POWER");
    expect(chain.outcome(h!).envelopesSettled).toBe(1);
  });

  it("takes a signed meter.reset as the meter's new baseline, credits nothing for it, and counts the readings after it from it", () => {
    const { chain, meter } = settledMeter(5_000, 20);
    // The meter's counter was replaced: it now reads from 0. Without a reset it is stuck.
    expect(send(chain, envelope(meter, "meter.reading", [reading(20_000, 3, 0)]))).toEqual(["JG_ERR_ENERGY_COUNTER"]);
    const meteredBefore = metered(chain, meter);
    expect(send(chain, envelope(meter, "meter.reset", [reading(21_000, 0, 0)]))).toEqual([null]);
    expect(metered(chain, meter)).toEqual(meteredBefore); // the reset credits nothing
    expect(lastReading(chain, meter)).toEqual({ t: BigInt(START_MS + 21_000), importWh: 0n, exportWh: 0n });
    expect(send(chain, envelope(meter, "meter.reading", [reading(31_000, 7, 2)]))).toEqual([null]);
    expect(metered(chain, meter)).toEqual({ importWh: 7, exportWh: 2 });
    // In one package: a reading of the old counter (+3), a reset to 100/100, a reading after it (+4, +1).
    const [h] = chain.block(
      encodeEnvelopesItem(clock, [
        envelope(meter, "meter.reading", [reading(40_000, 10, 2)]),
        envelope(meter, "meter.reset", [reading(41_000, 100, 100)]),
        envelope(meter, "meter.reading", [reading(51_000, 104, 101)]),
      ]),
    );
    expect(chain.outcome(h!)).toMatchObject({ envelopesSettled: 3, rejectedEnvelopes: [] });
    expect(metered(chain, meter)).toEqual({ importWh: 7 + 3 + 4, exportWh: 2 + 0 + 1 });
    // A reset goes through the replay window like any envelope.
    const reset = envelope(meter, "meter.reset", [reading(60_000, 0, 0)]);
    expect(send(chain, reset)).toEqual([null]);
    const [again] = chain.block(encodeEnvelopesItem(clock, [reset]));
    expect(envelopeRejection(chain.outcome(again!), meter.id, reset.seq)).toBe("JG_ERR_ENVELOPE_REPLAY");
  });

  it("cannot be used to credit energy: a reset is bounded like a reading, never backdated, never ahead of the clock, and a meter's own", () => {
    const { chain, meter, agent } = settledMeter(5_000, 0);
    const before = stateHash(chain);
    // Reset to 0, then the old counter again a second later: 5,010 Wh in 1 s is over the bound.
    expect(send(chain, envelope(meter, "meter.reset", [reading(11_000, 0, 0)]))).toEqual([null]);
    expect(send(chain, envelope(meter, "meter.reading", [reading(12_000, 5_010, 0)]))).toEqual(["JG_ERR_ENERGY_POWER"]);
    // In one package with the reset too.
    const [h] = chain.block(
      encodeEnvelopesItem(clock, [envelope(meter, "meter.reset", [reading(13_000, 0, 0)]), envelope(meter, "meter.reading", [reading(14_000, 5_010, 0)])]),
    );
    expect(chain.outcome(h!).envelopesSettled).toBe(1); // the reset; the reading is refused
    expect(metered(chain, meter)).toEqual({ importWh: 0, exportWh: 0 });
    // A reset dated at or before the last settled reading (to widen the time readings are bounded by) is refused.
    expect(send(chain, envelope(meter, "meter.reset", [reading(13_000, 0, 0)]))).toEqual(["JG_ERR_ENERGY_COUNTER"]);
    expect(send(chain, envelope(meter, "meter.reset", [reading(12_000, 0, 0)]))).toEqual(["JG_ERR_ENERGY_COUNTER"]);
    // A reset far ahead of the market clock (it would make every later reading "before" it) is refused.
    expect(send(chain, envelope(meter, "meter.reset", [reading(INTERVAL_MS + 1, 0, 0)]))).toEqual(["JG_ERR_ENERGY_INTERVAL_FAR"]);
    // An agent cannot reset its household's meter; a reset of two readings is not a reset.
    expect(send(chain, envelope(agent, "meter.reset", [reading(20_000, 0, 0)]))).toEqual(["JG_ERR_ENERGY_KIND"]);
    expect(send(chain, envelope(meter, "meter.reset", [reading(20_000, 0, 0), reading(21_000, 1, 0)]))).toEqual(["JG_ERR_ENERGY_BODY"]);
    expect(metered(chain, meter)).toEqual({ importWh: 0, exportWh: 0 });
    expect(lastReading(chain, meter)).toEqual({ t: BigInt(START_MS + 13_000), importWh: 0n, exportWh: 0n });
    expect(stateHash(chain)).not.toBe(before); // the resets settled (the meter's record moved), nothing else
  });

  it("credits at most the bound × the time between the first and last settled reading, whatever readings and resets come", () => {
    // Readings of up to 2 × 500 Wh every 1 ms to 20 s (the bound allows 1,000 Wh in 14.4 s): some pass, some do not.
    const dtMs = fc.oneof(fc.integer({ min: 1, max: 20_000 }), fc.constantFrom(1_000, 10_000, 14_400, 20_000));
    const op = fc.oneof(
      fc.record({
        reset: fc.constant(false),
        dtMs,
        importWh: fc.nat(500),
        exportWh: fc.oneof(fc.constant(0), fc.nat(500)),
        readings: fc.integer({ min: 1, max: 3 }),
      }),
      fc.record({
        reset: fc.constant(true),
        dtMs,
        importWh: fc.oneof(fc.nat(10), fc.nat(10_000_000)),
        exportWh: fc.oneof(fc.nat(10), fc.nat(10_000_000)),
        readings: fc.constant(1),
      }),
    );
    let creditedAfterReset = 0; // runs where a reading after a settled reset credited energy: the property is not vacuous
    fc.assert(
      fc.property(fc.array(op, { minLength: 1, maxLength: 7 }), (ops) => {
        const { chain, meter } = settledMeter(5_000, 0);
        let t = 10_000;
        let counters = { importWh: 5_000, exportWh: 0 };
        let resetSettled = false;
        let counted = false;
        for (const o of ops) {
          const readings = [];
          for (let i = 0; i < o.readings; i++) {
            t += o.dtMs;
            // A reading adds to the counters the meter last sent; a reset states new ones.
            counters = o.reset
              ? { importWh: o.importWh, exportWh: o.exportWh }
              : { importWh: counters.importWh + o.importWh, exportWh: counters.exportWh + o.exportWh };
            readings.push(reading(t, counters.importWh, counters.exportWh));
          }
          const before = metered(chain, meter);
          const [code] = send(chain, envelope(meter, o.reset ? "meter.reset" : "meter.reading", readings));
          const after = metered(chain, meter);
          if (o.reset && code === null) {
            expect(after).toEqual(before); // a reset credits nothing
            resetSettled = true;
          }
          if (!o.reset && resetSettled && after.importWh + after.exportWh > before.importWh + before.exportWh && !counted) {
            counted = true;
            creditedAfterReset++;
          }
        }
        const { importWh, exportWh } = metered(chain, meter);
        const last = lastReading(chain, meter)!;
        expect(BigInt(importWh + exportWh) * 3_600_000n <= BigInt(METER_POWER_W_MAX) * (last.t - BigInt(START_MS + 10_000))).toBe(true);
      }),
      { numRuns: 40 },
    );
    expect(creditedAfterReset).toBeGreaterThan(3);
  });
});
