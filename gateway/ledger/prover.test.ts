/**
 * Proofs made by the Prover from a real embedded node, checked offline by proof.ts verifyProof:
 * energy and Wi-Fi ledger entries and balances, and a router's settled seq, from the services'
 * genesis storage; a device's settled seqs and a raw reading from a telemetry package the node
 * refined, made available and accumulated.
 * The ledger index is the in-memory fixture, holding what a real index would for that chain.
 */
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { signEnvelope, signingBytes } from "../../devices/envelope.ts";
import { deviceKeyFromSecret } from "../../devices/keys.ts";
import { nativeCodeHash } from "../../node/chain/genesis.ts";
import { fromHex, toHex } from "../../node/codec/jam.ts";
import { hash } from "../../node/crypto/hash.ts";
import { errorRegistry, JamgateError } from "../../devices/protocol/errors.ts";
import type { JamNode } from "../../node/node.ts";
import { openTestNode, packageFor, submitterKey, waitForStatus } from "../../node/testing/fixtures.ts";
import { builtinServices, ENERGY_SERVICE, TELEMETRY_SERVICE, WIFI_SERVICE } from "../genesis.ts";
import { balanceKey, encodeBalance, encodeLedgerEntries, ledgerKey, type StoredLedgerEntry } from "../../services/energy-trading/storage.ts";
import { deviceKey as telemetryDeviceKey, encodeDeviceRecord } from "../../services/telemetry/storage.ts";
import { accumulateGasLimit, encodeEnvelopesItem, type EnvelopeRecord } from "../../services/telemetry/types.ts";
import {
  accountKey as wifiAccountKey,
  deviceKey as wifiDeviceKey,
  encodeAccount as encodeWifiAccount,
  encodeDeviceRecord as encodeWifiDevice,
  encodeLedgerEntries as encodeWifiLedger,
  ledgerKey as wifiLedgerKey,
  type LedgerEntry as WifiLedgerEntry,
} from "../../services/wifi-billing/storage.ts";
import { buildHttp } from "../http.ts";
import type { Registrations } from "../registration.ts";
import { energyService } from "../services/energy.ts";
import { telemetryService } from "../services/telemetry.ts";
import { wifiService } from "../services/wifi.ts";
import { deviceView, envelopesEntry, FakeLedger, tradeEntry } from "../testing/fake-ledger.ts";
import { type Proof, verifyProof } from "./proof.ts";
import { PROOF_WAIT_SLOTS, PROOFS_IN_FLIGHT_MAX, Prover } from "./prover.ts";
import type { EntryView } from "./types.ts";

const householdA = deviceKeyFromSecret(hash(Uint8Array.of(0xa1)));
const householdB = deviceKeyFromSecret(hash(Uint8Array.of(0xb1)));
const sensor = deviceKeyFromSecret(hash(Uint8Array.of(0x5e)));
const INTERVAL = 7;
const stored: StoredLedgerEntry[] = [
  {
    reason: "trade",
    buyer: fromHex(householdA.deviceId) as never,
    seller: fromHex(householdB.deviceId) as never,
    energyWh: 1_500,
    priceMicrosPerKwh: 250_000,
    amountMicros: 375_000n,
  },
  { reason: "grid-import", buyer: fromHex(householdB.deviceId) as never, seller: "grid", energyWh: 800, priceMicrosPerKwh: 300_000, amountMicros: 240_000n },
];
/** The sensor's window at genesis: seq 100 its highest, the 64 below all settled. */
const GENESIS_HIGHEST_SEQ = 100;
const router = deviceKeyFromSecret(hash(Uint8Array.of(0x70)));
const owner = deviceKeyFromSecret(hash(Uint8Array.of(0x71)));
const client = deviceKeyFromSecret(hash(Uint8Array.of(0x72)));
const WIFI_SLOT = 4;
const ROUTER_HIGHEST_SEQ = 30;
const wifiSession = hash(Uint8Array.of(0x73)).subarray(0, 16);
const NO_ID = new Uint8Array(16);
const wifiStored: WifiLedgerEntry[] = [
  {
    reason: "topup",
    session: NO_ID,
    router: NO_ID as never,
    client: fromHex(client.deviceId) as never,
    inputOctets: 0n,
    outputOctets: 0n,
    priceMicrosPerGb: 0n,
    amountMicros: 5_000_000n,
    feeMicros: 0n,
    attested: false,
  },
  {
    reason: "usage",
    session: wifiSession,
    router: fromHex(router.deviceId) as never,
    client: fromHex(client.deviceId) as never,
    inputOctets: 400_000_000n,
    outputOctets: 600_000_000n,
    priceMicrosPerGb: 500_000n,
    amountMicros: 500_000n,
    feeMicros: 5_000n,
    attested: false,
  },
];

/** A Wi-Fi entry as the ledger index shows it (index.ts wifiEntryFields): the usage entry stored at WIFI_SLOT unless overridden. */
function wifiEntry(id: number, overrides: Partial<EntryView> = {}): EntryView {
  return {
    id,
    service: "wifi-billing",
    serviceId: WIFI_SERVICE.id,
    kind: "usage",
    slot: WIFI_SLOT,
    blockHash: "ab".repeat(32),
    timeMs: 1_700_000_000_000,
    device: null,
    seqs: null,
    packageHash: null,
    interval: null,
    index: null,
    buyer: null,
    seller: null,
    energyWh: null,
    priceMicrosPerKwh: null,
    amountMicros: "500000",
    accounts: [client.deviceId, owner.deviceId],
    reason: "usage",
    session: toHex(wifiSession),
    router: router.deviceId,
    client: client.deviceId,
    inputOctets: "400000000",
    outputOctets: "600000000",
    octets: "1000000000",
    priceMicrosPerGb: "500000",
    feeMicros: "5000",
    attested: false,
    ...overrides,
  };
}

let node: JamNode;
let ledger: FakeLedger;
let prover: Prover;
let packageHash: string;

function record(seq: number): EnvelopeRecord {
  const envelope = signEnvelope(
    {
      version: 1,
      device: sensor.deviceId,
      seq,
      kind: "meter.reading",
      timeMs: 1_700_000_000_000 + seq,
      body: Uint8Array.of(0x81, 0xa1, 0x61, 0x74, seq & 0x17),
    },
    sensor.secretKey,
  );
  return { publicKey: sensor.publicKey, signingBytes: signingBytes(envelope), signature: envelope.signature.slice() };
}

beforeAll(async () => {
  const [telemetry, energy, wifi] = builtinServices([submitterKey.publicKey]);
  node = await openTestNode({
    services: [
      {
        ...telemetry!,
        storage: [
          {
            key: telemetryDeviceKey(sensor.deviceId),
            value: encodeDeviceRecord({
              publicKey: sensor.publicKey,
              kind: 0,
              registeredSlot: 0,
              window: { highestSeq: BigInt(GENESIS_HIGHEST_SEQ), bitmap: (1n << 64n) - 1n },
              envelopesSettled: 65n,
              lastSettledSlot: 0,
            }),
          },
        ],
      },
      {
        ...energy!,
        storage: [
          { key: ledgerKey(INTERVAL), value: encodeLedgerEntries(stored) },
          { key: balanceKey(householdA.deviceId), value: encodeBalance(-375_000n) },
          { key: balanceKey(householdB.deviceId), value: encodeBalance(135_000n) },
        ],
      },
      {
        ...wifi!,
        storage: [
          { key: wifiLedgerKey(WIFI_SLOT), value: encodeWifiLedger(wifiStored) },
          { key: wifiAccountKey(client.deviceId), value: encodeWifiAccount({ balanceMicros: 4_500_000n, lockedMicros: 0n, registeredSlot: 0 }) },
          { key: wifiAccountKey(owner.deviceId), value: encodeWifiAccount({ balanceMicros: 495_000n, lockedMicros: 20_000_000n, registeredSlot: 0 }) },
          {
            key: wifiDeviceKey(router.deviceId),
            value: encodeWifiDevice({
              publicKey: router.publicKey,
              kind: 1,
              registeredSlot: 0,
              window: { highestSeq: BigInt(ROUTER_HIGHEST_SEQ), bitmap: (1n << 64n) - 1n },
              envelopesSettled: 31n,
            }),
          },
        ],
      },
    ],
  });
  node.start();
  // Two readings of the sensor, refined, reported, made available and accumulated: its window moves to 102.
  const item = {
    serviceId: TELEMETRY_SERVICE.id,
    codeHash: nativeCodeHash("telemetry"),
    payload: encodeEnvelopesItem([record(101), record(102)]),
    refineGasLimit: 100_000_000n,
    accumulateGasLimit: accumulateGasLimit({ devices: 1, envelopes: 2 }),
  };
  const pkg = await packageFor(node, [item]);
  packageHash = toHex(pkg.hash);
  await node.submitWorkPackage(0, pkg.bytes, []);
  const status = await waitForStatus(node, pkg.hash, ["accumulated"]);
  if (status.kind !== "accumulated") throw new Error(`package ${status.kind}: ${JSON.stringify(status)}`);

  // What the ledger index holds for this chain.
  ledger = new FakeLedger();
  ledger.addDevice(deviceView("sensor", { id: sensor.deviceId, publicKey: toHex(sensor.publicKey), serviceId: TELEMETRY_SERVICE.id, settledHighestSeq: 102 }));
  ledger.addEntry(envelopesEntry(0, sensor.deviceId, { serviceId: TELEMETRY_SERVICE.id, seqs: [101, 102], packageHash }));
  const trade = {
    interval: INTERVAL,
    buyer: householdA.deviceId,
    seller: householdB.deviceId,
    energyWh: 1_500,
    priceMicrosPerKwh: 250_000,
    amountMicros: "375000",
    serviceId: ENERGY_SERVICE.id,
  };
  ledger.addEntry(tradeEntry(1, householdA.deviceId, householdB.deviceId, { ...trade, index: 0 }));
  ledger.addEntry(
    tradeEntry(2, householdB.deviceId, "grid", {
      ...trade,
      kind: "grid-import",
      buyer: householdB.deviceId,
      seller: "grid",
      energyWh: 800,
      priceMicrosPerKwh: 300_000,
      amountMicros: "240000",
      index: 1,
    }),
  );
  // An interval whose ledger is not in state (older than the service keeps), and an entry the state disagrees with.
  ledger.addEntry(tradeEntry(3, householdA.deviceId, householdB.deviceId, { ...trade, interval: 3, index: 0 }));
  ledger.addEntry(tradeEntry(4, householdA.deviceId, householdB.deviceId, { ...trade, index: 0, amountMicros: "375001" }));
  // Wi-Fi: the usage and the top-up of WIFI_SLOT; one the state disagrees with; one of a slot whose ledger is not in state; the router's settled envelopes.
  ledger.addEntry(wifiEntry(5));
  ledger.addEntry(
    wifiEntry(6, {
      kind: "topup",
      reason: "topup",
      session: null,
      router: null,
      inputOctets: "0",
      outputOctets: "0",
      octets: "0",
      priceMicrosPerGb: "0",
      amountMicros: "5000000",
      feeMicros: "0",
      accounts: [client.deviceId],
    }),
  );
  ledger.addEntry(wifiEntry(7, { amountMicros: "500001" }));
  ledger.addEntry(wifiEntry(8, { slot: WIFI_SLOT + 1 }));
  ledger.addDevice(
    deviceView("router", {
      id: router.deviceId,
      publicKey: toHex(router.publicKey),
      kind: "router",
      service: "wifi-billing",
      serviceId: WIFI_SERVICE.id,
      settledHighestSeq: ROUTER_HIGHEST_SEQ,
    }),
  );
  ledger.addEntry(
    envelopesEntry(9, router.deviceId, { service: "wifi-billing", serviceId: WIFI_SERVICE.id, seqs: [29, ROUTER_HIGHEST_SEQ], packageHash: "cd".repeat(32) }),
  );
  prover = new Prover({
    api: node,
    reader: ledger,
    chain: "tiny",
    services: [
      telemetryService(TELEMETRY_SERVICE.id),
      energyService(ENERGY_SERVICE.id, { marketStartMs: 0n, intervalMs: 900_000 }),
      wifiService(WIFI_SERVICE.id),
    ],
  });
}, 60_000);

afterAll(async () => {
  await node?.stop();
});

/** The prover's own proof for a state route's URL, to compare with what HTTP served. */
function proofOf(url: string): Promise<Proof> {
  const [, , , what, a, b, c] = url.split("/");
  if (what === "entries") return prover.entryProof(Number(a));
  if (what === "balances") return prover.balanceProof(a!, b!);
  return prover.seqProof(a!, Number(c));
}

function verified(proof: unknown) {
  const result = verifyProof(proof);
  if (!result.ok) throw new Error(`${result.error.code}: ${result.error.detail}`);
  return result;
}

async function codeOf(make: Promise<unknown>): Promise<string> {
  try {
    await make;
    return "ok";
  } catch (e) {
    if (e instanceof JamgateError) return e.code;
    throw e;
  }
}

describe("Prover, on a real embedded node", () => {
  it("proves an energy entry: its place in its interval's stored ledger, under a state root the next header commits to", async () => {
    const proof = await prover.entryProof(2);
    const result = verified(proof);
    expect(result.claim).toEqual({
      kind: "energy-entry",
      service: "energy-trading",
      interval: INTERVAL,
      index: 1,
      entry: { reason: "grid-import", buyer: householdB.deviceId, seller: "grid", energyWh: 800, priceMicrosPerKwh: 300_000, amountMicros: "240000" },
    });
    expect(proof.state!.storageKey).toBe(toHex(ledgerKey(INTERVAL)));
    expect(proof.headers.length).toBeGreaterThanOrEqual(1);
    // Anchored at the state root or at any header it carries; a changed claim fails.
    expect(verifyProof(proof, { root: fromHex(proof.state!.root) }).ok).toBe(true);
    const tampered = JSON.parse(JSON.stringify(proof)) as Proof & { claim: { entry: { amountMicros: string } } };
    tampered.claim.entry.amountMicros = "240001";
    expect(verifyProof(tampered)).toMatchObject({ ok: false, error: { code: "JG_ERR_PROOF_CLAIM" } });
  });

  it("proves a balance, and an envelopes entry as its last seq settled in the device's window", async () => {
    const balance = await prover.balanceProof("energy-trading", householdA.deviceId);
    expect(verified(balance).claim).toEqual({ kind: "balance", service: "energy-trading", account: householdA.deviceId, balanceMicros: "-375000" });
    const entry = await prover.entryProof(0);
    expect(verified(entry).claim).toEqual({ kind: "settled-seq", service: "telemetry", device: sensor.deviceId, seq: 102 });
    for (const seq of [102, 101, GENESIS_HIGHEST_SEQ, 102 - 64]) {
      expect(verified(await prover.seqProof(sensor.deviceId, seq)).claim).toMatchObject({ kind: "settled-seq", seq });
    }
  });

  it("proves a Wi-Fi entry: the stored entry of its slot's ledger equal to it in every field, at its place there", async () => {
    const proof = await prover.entryProof(5);
    const result = verified(proof);
    expect(result.claim).toEqual({
      kind: "wifi-entry",
      service: "wifi-billing",
      slot: WIFI_SLOT,
      index: 1,
      entry: {
        reason: "usage",
        session: toHex(wifiSession),
        router: router.deviceId,
        client: client.deviceId,
        inputOctets: "400000000",
        outputOctets: "600000000",
        priceMicrosPerGb: "500000",
        amountMicros: "500000",
        feeMicros: "5000",
        attested: false,
      },
    });
    expect(proof.state!.storageKey).toBe(toHex(wifiLedgerKey(WIFI_SLOT)));
    expect(proof.state!.serviceId).toBe(WIFI_SERVICE.id);
    expect(verifyProof(proof, { root: fromHex(proof.state!.root) }).ok).toBe(true);
    const tampered = JSON.parse(JSON.stringify(proof)) as Proof & { claim: { entry: { amountMicros: string } } };
    tampered.claim.entry.amountMicros = "500001";
    expect(verifyProof(tampered)).toMatchObject({ ok: false, error: { code: "JG_ERR_PROOF_CLAIM" } });
    // A top-up: no session, no router.
    expect(verified(await prover.entryProof(6)).claim).toMatchObject({
      kind: "wifi-entry",
      slot: WIFI_SLOT,
      index: 0,
      entry: { reason: "topup", session: null, router: null, amountMicros: "5000000" },
    });
  });

  it("proves a Wi-Fi account's balance and locked stakes, and a router's highest settled seq (an envelopes entry's last)", async () => {
    const balance = await prover.balanceProof("wifi-billing", owner.deviceId);
    expect(verified(balance).claim).toEqual({
      kind: "balance",
      service: "wifi-billing",
      account: owner.deviceId,
      balanceMicros: "495000",
      lockedMicros: "20000000",
    });
    expect(balance.state!.storageKey).toBe(toHex(wifiAccountKey(owner.deviceId)));
    expect(verified(await prover.seqProof(router.deviceId, ROUTER_HIGHEST_SEQ)).claim).toEqual({
      kind: "settled-seq",
      service: "wifi-billing",
      device: router.deviceId,
      seq: ROUTER_HIGHEST_SEQ,
    });
    expect(verified(await prover.entryProof(9)).claim).toEqual({
      kind: "settled-seq",
      service: "wifi-billing",
      device: router.deviceId,
      seq: ROUTER_HIGHEST_SEQ,
    });
  });

  it("proves a raw reading through data availability, anchored at the headers after the block that guaranteed it", async () => {
    const proof = await prover.readingProof(sensor.deviceId, 101);
    const result = verified(proof);
    expect(result.claim).toEqual({ kind: "reading", service: "telemetry", device: sensor.deviceId, seq: 101 });
    expect(proof.da!.packageHash).toBe(packageHash);
    expect(proof.state).toBeUndefined();
  });

  it("answers coded errors for what it cannot prove", async () => {
    expect(await codeOf(prover.entryProof(3))).toBe("JG_ERR_PROOF_UNAVAILABLE"); // the interval's ledger left state
    expect(await codeOf(prover.entryProof(4))).toBe("JG_ERR_PROOF_UNAVAILABLE"); // the index says another amount than state
    expect(await codeOf(prover.entryProof(99))).toBe("JG_ERR_NOT_FOUND");
    expect(await codeOf(prover.balanceProof("energy-trading", sensor.deviceId))).toBe("JG_ERR_NOT_FOUND");
    expect(await codeOf(prover.balanceProof("telemetry", householdA.deviceId))).toBe("JG_ERR_NOT_FOUND");
    expect(await codeOf(prover.seqProof(sensor.deviceId, 103))).toBe("JG_ERR_NOT_FOUND"); // not settled
    expect(await codeOf(prover.seqProof(sensor.deviceId, 102 - 65))).toBe("JG_ERR_PROOF_UNAVAILABLE"); // below the window
    expect(await codeOf(prover.seqProof(householdA.deviceId, 1))).toBe("JG_ERR_NOT_FOUND"); // unknown device
    expect(await codeOf(prover.readingProof(sensor.deviceId, 100))).toBe("JG_ERR_NOT_FOUND"); // no entry holds it
    expect(await codeOf(prover.entryProof(7))).toBe("JG_ERR_PROOF_UNAVAILABLE"); // the index says another amount than the slot's ledger
    expect(await codeOf(prover.entryProof(8))).toBe("JG_ERR_PROOF_UNAVAILABLE"); // the slot's ledger is not in state
    expect(await codeOf(prover.balanceProof("wifi-billing", householdA.deviceId))).toBe("JG_ERR_NOT_FOUND");
    expect(await codeOf(prover.seqProof(router.deviceId, ROUTER_HIGHEST_SEQ + 1))).toBe("JG_ERR_NOT_FOUND"); // not settled
    // Below the highest: proven from the router's whole window, as a meter's is.
    expect(verified(await prover.seqProof(router.deviceId, ROUTER_HIGHEST_SEQ - 1)).claim).toMatchObject({
      kind: "settled-seq",
      service: "wifi-billing",
      seq: ROUTER_HIGHEST_SEQ - 1,
    });
  });

  it(`waits at most PROOF_WAIT_SLOTS (${PROOF_WAIT_SLOTS}) slots for the block after the proven one: JG_ERR_PROOF_UNAVAILABLE past it`, async () => {
    // A node that authors no blocks: its best block stays genesis, whose state holds the balance.
    const [telemetry, energy] = builtinServices([submitterKey.publicKey]);
    const stopped = await openTestNode({
      services: [telemetry!, { ...energy!, storage: [{ key: balanceKey(householdA.deviceId), value: encodeBalance(1n) }] }],
    });
    try {
      const idle = new Prover({
        api: stopped,
        reader: ledger,
        chain: "tiny",
        services: [energyService(ENERGY_SERVICE.id, { marketStartMs: 0n, intervalMs: 900_000 })],
      });
      expect(await stopped.serviceValueProof(ENERGY_SERVICE.id, balanceKey(householdA.deviceId))).not.toBeNull();
      expect(await codeOf(idle.balanceProof("energy-trading", householdA.deviceId))).toBe("JG_ERR_PROOF_UNAVAILABLE");
    } finally {
      await stopped.stop();
    }
  });

  it(`makes at most PROOFS_IN_FLIGHT_MAX (${PROOFS_IN_FLIGHT_MAX}) proofs at once: past it JG_ERR_HTTP_BUSY`, async () => {
    const made = Array.from({ length: PROOFS_IN_FLIGHT_MAX + 2 }, () => codeOf(prover.balanceProof("energy-trading", householdB.deviceId)));
    const codes = await Promise.all(made);
    expect(codes).toEqual([...Array(PROOFS_IN_FLIGHT_MAX).fill("ok"), "JG_ERR_HTTP_BUSY", "JG_ERR_HTTP_BUSY"]);
    expect(await codeOf(prover.balanceProof("energy-trading", householdB.deviceId))).toBe("ok");
  });

  it("serves proofs over HTTP whole: the routes' response schema drops nothing verifyProof needs", async () => {
    const app: FastifyInstance = buildHttp({
      operatorToken: "T",
      registrations: { view: async () => null } as unknown as Registrations,
      metrics: {} as never,
      count: () => {},
      ledger,
      prover,
    });
    try {
      for (const url of [
        "/v1/proofs/entries/1",
        `/v1/proofs/balances/energy-trading/${householdB.deviceId}`,
        `/v1/proofs/devices/${sensor.deviceId}/seqs/101`,
        `/v1/proofs/readings/${sensor.deviceId}/102`,
        "/v1/proofs/entries/5",
        "/v1/proofs/entries/6",
        `/v1/proofs/balances/wifi-billing/${owner.deviceId}`,
        `/v1/proofs/devices/${router.deviceId}/seqs/${ROUTER_HIGHEST_SEQ}`,
      ]) {
        const reply = await app.inject({ url });
        expect(reply.statusCode, `${url}: ${reply.body.slice(0, 300)}`).toBe(200);
        const direct = url.startsWith("/v1/proofs/readings/") ? null : url;
        expect(verified(reply.json()).claim, url).toEqual(direct === null ? expect.anything() : verified(await proofOf(direct)).claim);
      }
      const gone = await app.inject({ url: "/v1/proofs/entries/3" });
      expect(gone.statusCode).toBe(errorRegistry.JG_ERR_PROOF_UNAVAILABLE.httpStatus);
      expect(gone.json().error.code).toBe("JG_ERR_PROOF_UNAVAILABLE");
    } finally {
      await app.close();
    }
  });
});
