/**
 * jamgate-proof/1 state proofs, checked against a real state (node/state/kv.ts, its GP D.2 trie
 * and State.proof) and real sealed headers (node/chain/block.ts): each claim kind verifies, for
 * energy-trading and wifi-billing alike (ledger entries, balances, settled seqs), and each
 * tampering fails with its own code. Readings (DA) are in da-proof.test.ts.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { headerHash, makeExtrinsic, sealBlock } from "../../node/chain/block.ts";
import { nativeCodeHash } from "../../node/chain/genesis.ts";
import { tinyParams } from "../../node/chain/params.ts";
import { encode, Header, toHex } from "../../node/codec/jam.ts";
import { keyPairFromSeed } from "../../node/crypto/ed25519.ts";
import { hash } from "../../node/crypto/hash.ts";
import { errorRegistry } from "../../devices/protocol/errors.ts";
import { StateComponents, storageKey } from "../../node/state/components.ts";
import { State } from "../../node/state/kv.ts";
import {
  balanceKey,
  deviceKey as energyDeviceKey,
  encodeBalance,
  encodeDeviceRecord as encodeEnergyDevice,
  encodeLedgerEntries,
  ledgerKey,
  type StoredLedgerEntry,
} from "../../services/energy-trading/storage.ts";
import { deviceKey as telemetryDeviceKey, encodeDeviceRecord as encodeTelemetryDevice } from "../../services/telemetry/storage.ts";
import {
  accountKey as wifiAccountKey,
  deviceKey as wifiDeviceKey,
  encodeAccount as encodeWifiAccount,
  encodeDeviceRecord as encodeWifiDevice,
  encodeLedgerEntries as encodeWifiLedger,
  ledgerKey as wifiLedgerKey,
  type LedgerEntry as WifiLedgerEntry,
} from "../../services/wifi-billing/storage.ts";
import { type Proof, type ProofClaim, PROOF_FORMAT, verifyProof } from "./proof.ts";

const params = tinyParams;
const author = keyPairFromSeed(new Uint8Array(32).fill(7));
const TELEMETRY_ID = 2;
const ENERGY_ID = 3;
const WIFI_ID = 4;

const id = (n: number) => hash(Uint8Array.of(n)).subarray(0, 16);
const household = id(1);
const other = id(2);
const meter = id(3);
const sensor = id(4);
const router = id(5);
const client = id(6);
const session = id(7);
const WIFI_SLOT = 9;
/** An energy interval and a Wi-Fi slot whose ledger keys hold bytes that are no ledger. */
const GARBAGE_PLACE = 11;

const entries: StoredLedgerEntry[] = [
  { reason: "trade", buyer: household as never, seller: other as never, energyWh: 1_200, priceMicrosPerKwh: 150_000, amountMicros: 180_000n },
  { reason: "grid-import", buyer: other as never, seller: "grid", energyWh: 800, priceMicrosPerKwh: 300_000, amountMicros: 240_000n },
  { reason: "grid-export", buyer: "grid", seller: household as never, energyWh: 50, priceMicrosPerKwh: 80_000, amountMicros: 4_000n },
];
const NO_ID = new Uint8Array(16);
const wifiEntries: WifiLedgerEntry[] = [
  {
    reason: "topup",
    session: NO_ID,
    router: NO_ID as never,
    client: client as never,
    inputOctets: 0n,
    outputOctets: 0n,
    priceMicrosPerGb: 0n,
    amountMicros: 5_000_000n,
    feeMicros: 0n,
    attested: false,
  },
  {
    reason: "usage",
    session,
    router: router as never,
    client: client as never,
    inputOctets: 300_000_000n,
    outputOctets: 1_200_000_000n,
    priceMicrosPerGb: 500_000n,
    amountMicros: 750_000n,
    feeMicros: 7_500n,
    attested: true,
  },
];
/** Settled: 41 (the highest), 40 (bit 0), 38 (bit 2); 39 is not. */
const window = { highestSeq: 41n, bitmap: 0b101n };

/** A state as the node keeps it: two services, their values, and filler so the trie is a few levels deep. */
function makeState(): State {
  const state = new State();
  const s = new StateComponents(state, params);
  s.createService(TELEMETRY_ID, nativeCodeHash("telemetry"), 1_000n, 0);
  s.createService(ENERGY_ID, nativeCodeHash("energy-trading"), 1_000n, 0);
  s.createService(WIFI_ID, nativeCodeHash("wifi-billing"), 1_000n, 0);
  for (let i = 0; i < 300; i++) s.storageSet([TELEMETRY_ID, ENERGY_ID, WIFI_ID][i % 3]!, hash(Uint8Array.of(i, 9)), new Uint8Array(i % 50).fill(i));
  s.storageSet(ENERGY_ID, ledgerKey(7), encodeLedgerEntries(entries));
  s.storageSet(ENERGY_ID, balanceKey(household), encodeBalance(-123_456_789n));
  s.storageSet(
    ENERGY_ID,
    energyDeviceKey(meter),
    encodeEnergyDevice({
      publicKey: new Uint8Array(32).fill(3),
      role: 0,
      household: meter as never,
      registeredSlot: 2,
      window,
      lastReading: null,
      envelopesSettled: 3n,
    }),
  );
  s.storageSet(
    TELEMETRY_ID,
    telemetryDeviceKey(sensor),
    encodeTelemetryDevice({ publicKey: new Uint8Array(32).fill(4), kind: 0, registeredSlot: 2, window, envelopesSettled: 3n, lastSettledSlot: 5 }),
  );
  s.storageSet(WIFI_ID, wifiLedgerKey(WIFI_SLOT), encodeWifiLedger(wifiEntries));
  s.storageSet(WIFI_ID, wifiLedgerKey(GARBAGE_PLACE), Uint8Array.of(1, 2, 3));
  s.storageSet(ENERGY_ID, ledgerKey(GARBAGE_PLACE), Uint8Array.of(1, 2, 3));
  s.storageSet(WIFI_ID, wifiAccountKey(client), encodeWifiAccount({ balanceMicros: 4_250_000n, lockedMicros: 0n, registeredSlot: 1 }));
  s.storageSet(WIFI_ID, wifiAccountKey(other), encodeWifiAccount({ balanceMicros: 742_500n, lockedMicros: 20_000_000n, registeredSlot: 1 }));
  s.storageSet(
    WIFI_ID,
    wifiDeviceKey(router),
    encodeWifiDevice({ publicKey: new Uint8Array(32).fill(5), kind: 1, registeredSlot: 2, window, envelopesSettled: 3n }),
  );
  return state;
}

const state = makeState();
const root = state.root();

/** The state block (slot 5), its child that commits to `root` (slot 6), and one more (slot 8): the anchor. */
function chain(priorStateRoot = root, stateBlockHash?: Uint8Array) {
  const stateBlock = sealBlock(
    params,
    { parentHash: hash(Uint8Array.of(1)), priorStateRoot: hash(Uint8Array.of(2)), slot: 5, authorIndex: 5 },
    makeExtrinsic([], []),
    author,
  );
  const blockHash = stateBlockHash ?? headerHash(params, stateBlock.header);
  const child = sealBlock(params, { parentHash: blockHash, priorStateRoot, slot: 6, authorIndex: 0 }, makeExtrinsic([], []), author);
  const next = sealBlock(
    params,
    { parentHash: headerHash(params, child.header), priorStateRoot: hash(Uint8Array.of(3)), slot: 8, authorIndex: 2 },
    makeExtrinsic([], []),
    author,
  );
  return { stateBlockHash: headerHash(params, stateBlock.header), child: child.header, next: next.header };
}

const headerHex = (h: Header) => toHex(encode<Header>(Header.Codec, h, params.spec));

function stateProof(serviceId: number, key: Uint8Array, claim: ProofClaim, from: State = state): Proof {
  const stateKey = storageKey(serviceId, key);
  const path = from.proof(stateKey)!;
  const c = chain(from.root());
  return {
    format: PROOF_FORMAT,
    chain: "tiny",
    claim,
    state: {
      serviceId,
      storageKey: toHex(key),
      stateKey,
      value: toHex(path.value),
      root: toHex(from.root()),
      siblings: path.siblings.map(toHex),
      block: { hash: toHex(c.stateBlockHash), slot: 5 },
    },
    headers: [headerHex(c.child), headerHex(c.next)],
  };
}

const entryClaim: ProofClaim = {
  kind: "energy-entry",
  service: "energy-trading",
  interval: 7,
  index: 0,
  entry: { reason: "trade", buyer: toHex(household), seller: toHex(other), energyWh: 1_200, priceMicrosPerKwh: 150_000, amountMicros: "180000" },
};
const balanceClaim: ProofClaim = { kind: "balance", service: "energy-trading", account: toHex(household), balanceMicros: "-123456789" };
const energySeqClaim: ProofClaim = { kind: "settled-seq", service: "energy-trading", device: toHex(meter), seq: 40 };
const telemetrySeqClaim: ProofClaim = { kind: "settled-seq", service: "telemetry", device: toHex(sensor), seq: 38 };
const wifiEntryClaim: ProofClaim = {
  kind: "wifi-entry",
  service: "wifi-billing",
  slot: WIFI_SLOT,
  index: 1,
  entry: {
    reason: "usage",
    session: toHex(session),
    router: toHex(router),
    client: toHex(client),
    inputOctets: "300000000",
    outputOctets: "1200000000",
    priceMicrosPerGb: "500000",
    amountMicros: "750000",
    feeMicros: "7500",
    attested: true,
  },
};
const wifiBalanceClaim: ProofClaim = { kind: "balance", service: "wifi-billing", account: toHex(other), balanceMicros: "742500", lockedMicros: "20000000" };
/** A router's record: through wifi-billing's public API it tells its highest settled seq, which is what is proven. */
const routerSeqClaim: ProofClaim = { kind: "settled-seq", service: "wifi-billing", device: toHex(router), seq: 41 };

const proofs = {
  entry: () => stateProof(ENERGY_ID, ledgerKey(7), entryClaim),
  balance: () => stateProof(ENERGY_ID, balanceKey(household), balanceClaim),
  energySeq: () => stateProof(ENERGY_ID, energyDeviceKey(meter), energySeqClaim),
  telemetrySeq: () => stateProof(TELEMETRY_ID, telemetryDeviceKey(sensor), telemetrySeqClaim),
  wifiEntry: () => stateProof(WIFI_ID, wifiLedgerKey(WIFI_SLOT), wifiEntryClaim),
  wifiBalance: () => stateProof(WIFI_ID, wifiAccountKey(other), wifiBalanceClaim),
  routerSeq: () => stateProof(WIFI_ID, wifiDeviceKey(router), routerSeqClaim),
};

/** A deep copy to tamper with. */
const copy = (p: Proof): { -readonly [K in keyof Proof]: any } => JSON.parse(JSON.stringify(p));
const flipHex = (hex: string, at: number) =>
  hex.slice(0, 2 * at) + (parseInt(hex.slice(2 * at, 2 * at + 2), 16) ^ 0x01).toString(16).padStart(2, "0") + hex.slice(2 * at + 2);
const codeOf = (p: unknown, root?: Uint8Array) => {
  const r = verifyProof(p, root === undefined ? {} : { root });
  return r.ok ? "ok" : r.error.code;
};

describe("verifyProof: state claims", () => {
  it("verifies each claim kind, anchored at the last header", () => {
    const anchor = toHex(headerHash(params, chain().next));
    for (const [name, make] of Object.entries(proofs)) {
      const proof = make();
      expect(proof.state!.siblings.length, name).toBeGreaterThan(4); // a real path, not a lone leaf
      const result = verifyProof(JSON.parse(JSON.stringify(proof)));
      expect(result, name).toEqual({ ok: true, anchor: { hash: anchor, slot: 8 }, claim: proof.claim });
    }
  });

  it("takes another entry of the same ledger, and each settled seq of the window", () => {
    const p = copy(proofs.entry());
    p.claim.index = 1;
    p.claim.entry = { reason: "grid-import", buyer: toHex(other), seller: "grid", energyWh: 800, priceMicrosPerKwh: 300_000, amountMicros: "240000" };
    expect(codeOf(p)).toBe("ok");
    const topup = copy(proofs.wifiEntry());
    topup.claim.index = 0;
    topup.claim.entry = {
      reason: "topup",
      session: null,
      router: null,
      client: toHex(client),
      inputOctets: "0",
      outputOctets: "0",
      priceMicrosPerGb: "0",
      amountMicros: "5000000",
      feeMicros: "0",
      attested: false,
    };
    expect(codeOf(topup)).toBe("ok");
    for (const seq of [41, 40, 38]) {
      const s = copy(proofs.energySeq());
      s.claim.seq = seq;
      expect(codeOf(s), `seq ${seq}`).toBe("ok");
    }
  });

  it.each(["balance", "wifiBalance", "wifiEntry", "routerSeq"] as const)(
    "fails JG_ERR_PROOF_STATE when the value, a sibling, the root, the state key or the storage key is changed (%s)",
    (kind) => {
      const p = proofs[kind]();
      const value = copy(p);
      value.state.value = flipHex(value.state.value, 3);
      expect(codeOf(value)).toBe("JG_ERR_PROOF_STATE");
      for (const at of [0, 2, p.state!.siblings.length - 1]) {
        const sibling = copy(p);
        sibling.state.siblings[at] = flipHex(sibling.state.siblings[at], 31);
        expect(codeOf(sibling), `sibling ${at}`).toBe("JG_ERR_PROOF_STATE");
      }
      const shorter = copy(p);
      shorter.state.siblings.pop();
      expect(codeOf(shorter)).toBe("JG_ERR_PROOF_STATE");
      const rootChanged = copy(p);
      rootChanged.state.root = flipHex(rootChanged.state.root, 10);
      expect(codeOf(rootChanged)).toBe("JG_ERR_PROOF_STATE");
      const stateKey = copy(p);
      stateKey.state.stateKey = flipHex(stateKey.state.stateKey, 30);
      expect(codeOf(stateKey)).toBe("JG_ERR_PROOF_STATE");
      const serviceId = copy(p);
      serviceId.state.serviceId = TELEMETRY_ID;
      expect(codeOf(serviceId)).toBe("JG_ERR_PROOF_STATE");
      const storage = copy(p);
      storage.state.storageKey = toHex(
        kind === "wifiEntry"
          ? wifiLedgerKey(WIFI_SLOT + 1)
          : kind === "routerSeq"
            ? wifiDeviceKey(client)
            : kind === "wifiBalance"
              ? wifiAccountKey(household)
              : balanceKey(other),
      );
      expect(codeOf(storage)).toBe("JG_ERR_PROOF_STATE");
    },
  );

  it.each(["entry", "wifiEntry", "wifiBalance"] as const)(
    "fails JG_ERR_PROOF_CHAIN when a header's parent, the child's prior state root or the state block's hash is changed (%s)",
    (kind) => {
      const p = proofs[kind]();
      const c = chain();
      // The child names another parent (sealed again, so the header itself is well-formed).
      const elsewhere = chain(root, hash(Uint8Array.of(99)));
      const reparented = copy(p);
      reparented.headers = [headerHex(elsewhere.child), headerHex(elsewhere.next)];
      expect(codeOf(reparented)).toBe("JG_ERR_PROOF_CHAIN");
      // The anchor names another parent than the child.
      const next = sealBlock(params, { parentHash: hash(Uint8Array.of(98)), priorStateRoot: root, slot: 8, authorIndex: 2 }, makeExtrinsic([], []), author);
      const broken = copy(p);
      broken.headers[1] = headerHex(next.header);
      expect(codeOf(broken)).toBe("JG_ERR_PROOF_CHAIN");
      // The child commits to another prior state root (and the anchor follows that child).
      const otherRoot = chain(hash(Uint8Array.of(97)));
      const prior = copy(p);
      prior.headers = [headerHex(otherRoot.child), headerHex(otherRoot.next)];
      expect(codeOf(prior)).toBe("JG_ERR_PROOF_CHAIN");
      // A byte of the child's encoding (its prior state root, octets 32..63) flipped in place.
      const flipped = copy(p);
      flipped.headers[0] = flipHex(flipped.headers[0], 40);
      expect(codeOf(flipped)).toBe("JG_ERR_PROOF_CHAIN");
      const blockHash = copy(p);
      blockHash.state.block.hash = flipHex(blockHash.state.block.hash, 0);
      expect(codeOf(blockHash)).toBe("JG_ERR_PROOF_CHAIN");
      // Out of order: the anchor before the child.
      const swapped = copy(p);
      swapped.headers = [p.headers[1], p.headers[0]];
      expect(codeOf(swapped)).toBe("JG_ERR_PROOF_CHAIN");
      // The child's slot must be after the state block's.
      const late = copy(p);
      late.state.block.slot = 6;
      expect(codeOf(late)).toBe("JG_ERR_PROOF_CHAIN");
      expect(c.child.priorStateRoot.raw).toEqual(root);
    },
  );

  it("fails JG_ERR_PROOF_CLAIM when the claim is not what the value says", () => {
    const tamper = (make: () => Proof, change: (claim: any) => void) => {
      const p = copy(make());
      change(p.claim);
      return codeOf(p);
    };
    expect(tamper(proofs.entry, (c) => (c.entry.amountMicros = "180001"))).toBe("JG_ERR_PROOF_CLAIM");
    expect(tamper(proofs.entry, (c) => (c.entry.energyWh = 1_201))).toBe("JG_ERR_PROOF_CLAIM");
    expect(tamper(proofs.entry, (c) => (c.entry.seller = "grid"))).toBe("JG_ERR_PROOF_CLAIM");
    expect(tamper(proofs.entry, (c) => (c.entry.reason = "surplus"))).toBe("JG_ERR_PROOF_CLAIM");
    expect(tamper(proofs.entry, (c) => (c.index = 3))).toBe("JG_ERR_PROOF_CLAIM");
    expect(tamper(proofs.entry, (c) => (c.interval = 8))).toBe("JG_ERR_PROOF_CLAIM");
    expect(tamper(proofs.balance, (c) => (c.balanceMicros = "123456789"))).toBe("JG_ERR_PROOF_CLAIM");
    expect(tamper(proofs.balance, (c) => (c.account = toHex(other)))).toBe("JG_ERR_PROOF_CLAIM");
    expect(tamper(proofs.energySeq, (c) => (c.seq = 39))).toBe("JG_ERR_PROOF_CLAIM"); // its bit is clear
    expect(tamper(proofs.energySeq, (c) => (c.seq = 42))).toBe("JG_ERR_PROOF_CLAIM"); // above the highest
    expect(tamper(proofs.energySeq, (c) => (c.seq = 0))).toBe("JG_ERR_PROOF_CLAIM"); // in the window, its bit clear
    expect(tamper(proofs.telemetrySeq, (c) => (c.device = toHex(meter)))).toBe("JG_ERR_PROOF_CLAIM");
    // The energy record read as a telemetry one: another layout.
    expect(tamper(proofs.energySeq, (c) => (c.service = "telemetry"))).toBe("JG_ERR_PROOF_CLAIM");
  });

  it("fails JG_ERR_PROOF_CLAIM when a Wi-Fi claim is not what the value says", () => {
    const tamper = (make: () => Proof, change: (claim: any) => void) => {
      const p = copy(make());
      change(p.claim);
      return codeOf(p);
    };
    expect(tamper(proofs.wifiEntry, (c) => (c.entry.amountMicros = "750001"))).toBe("JG_ERR_PROOF_CLAIM");
    expect(tamper(proofs.wifiEntry, (c) => (c.entry.feeMicros = "0"))).toBe("JG_ERR_PROOF_CLAIM");
    expect(tamper(proofs.wifiEntry, (c) => (c.entry.outputOctets = "1200000001"))).toBe("JG_ERR_PROOF_CLAIM");
    expect(tamper(proofs.wifiEntry, (c) => (c.entry.priceMicrosPerGb = "400000"))).toBe("JG_ERR_PROOF_CLAIM");
    expect(tamper(proofs.wifiEntry, (c) => (c.entry.client = toHex(household)))).toBe("JG_ERR_PROOF_CLAIM");
    expect(tamper(proofs.wifiEntry, (c) => (c.entry.router = null))).toBe("JG_ERR_PROOF_CLAIM");
    expect(tamper(proofs.wifiEntry, (c) => (c.entry.session = toHex(router)))).toBe("JG_ERR_PROOF_CLAIM");
    expect(tamper(proofs.wifiEntry, (c) => (c.entry.attested = false))).toBe("JG_ERR_PROOF_CLAIM");
    expect(tamper(proofs.wifiEntry, (c) => (c.entry.reason = "disputed"))).toBe("JG_ERR_PROOF_CLAIM");
    expect(tamper(proofs.wifiEntry, (c) => (c.index = 0))).toBe("JG_ERR_PROOF_CLAIM"); // the top-up is there
    expect(tamper(proofs.wifiEntry, (c) => (c.index = 2))).toBe("JG_ERR_PROOF_CLAIM");
    expect(tamper(proofs.wifiEntry, (c) => (c.slot = WIFI_SLOT + 1))).toBe("JG_ERR_PROOF_CLAIM");
    expect(tamper(proofs.wifiBalance, (c) => (c.balanceMicros = "742501"))).toBe("JG_ERR_PROOF_CLAIM");
    expect(tamper(proofs.wifiBalance, (c) => (c.lockedMicros = "0"))).toBe("JG_ERR_PROOF_CLAIM");
    expect(tamper(proofs.wifiBalance, (c) => (c.account = toHex(client)))).toBe("JG_ERR_PROOF_CLAIM");
    expect(tamper(proofs.routerSeq, (c) => (c.seq = 42))).toBe("JG_ERR_PROOF_CLAIM"); // above the highest
    expect(tamper(proofs.routerSeq, (c) => (c.seq = 40))).toBe("ok"); // settled: the window's bit for it is set
    expect(tamper(proofs.routerSeq, (c) => (c.seq = 39))).toBe("JG_ERR_PROOF_CLAIM"); // its bit is clear
    expect(tamper(proofs.routerSeq, (c) => (c.device = toHex(client)))).toBe("JG_ERR_PROOF_CLAIM");
    // The same ledger, account or record read as the other service's: another key, another layout.
    expect(
      tamper(proofs.wifiBalance, (c) => {
        c.service = "energy-trading";
        delete c.lockedMicros;
      }),
    ).toBe("JG_ERR_PROOF_CLAIM");
    expect(tamper(proofs.routerSeq, (c) => (c.service = "telemetry"))).toBe("JG_ERR_PROOF_CLAIM");
    expect(tamper(proofs.energySeq, (c) => (c.service = "wifi-billing"))).toBe("JG_ERR_PROOF_CLAIM");
    // A ledger's key whose value is no ledger.
    expect(codeOf(stateProof(WIFI_ID, wifiLedgerKey(GARBAGE_PLACE), { ...wifiEntryClaim, slot: GARBAGE_PLACE } as ProofClaim))).toBe("JG_ERR_PROOF_CLAIM");
    expect(codeOf(stateProof(ENERGY_ID, ledgerKey(GARBAGE_PLACE), { ...entryClaim, interval: GARBAGE_PLACE } as ProofClaim))).toBe("JG_ERR_PROOF_CLAIM");
  });

  it.each(["balance", "wifiEntry", "wifiBalance", "routerSeq"] as const)(
    "takes a trusted root that is the state root or a header's hash, and fails JG_ERR_PROOF_ANCHOR otherwise (%s)",
    (kind) => {
      const p = proofs[kind]();
      const c = chain();
      expect(codeOf(p, root)).toBe("ok");
      expect(codeOf(p, headerHash(params, c.child))).toBe("ok");
      expect(codeOf(p, headerHash(params, c.next))).toBe("ok");
      expect(codeOf(p, hash(Uint8Array.of(5)))).toBe("JG_ERR_PROOF_ANCHOR");
      // The state block's own hash: its header is not in the proof and does not commit to its posterior root.
      expect(codeOf(p, c.stateBlockHash)).toBe("JG_ERR_PROOF_ANCHOR");
    },
  );

  it("refuses a made-up value under a made-up root hung below a trusted block, given that block as the root", () => {
    // A forger knows a real block's hash and makes a state, a child naming that block, and a proof.
    const forged = new State();
    new StateComponents(forged, params).createService(ENERGY_ID, nativeCodeHash("energy-trading"), 0n, 0);
    new StateComponents(forged, params).storageSet(ENERGY_ID, balanceKey(household), encodeBalance(1_000_000_000n));
    const p = stateProof(ENERGY_ID, balanceKey(household), { ...balanceClaim, balanceMicros: "1000000000" } as ProofClaim, forged);
    expect(codeOf(p)).toBe("ok"); // consistent in itself: without a root, the anchor printed is the forger's
    expect(codeOf(p, chain().stateBlockHash)).toBe("JG_ERR_PROOF_ANCHOR");
    expect(codeOf(p, root)).toBe("JG_ERR_PROOF_ANCHOR"); // the real root is not this proof's
  });

  it("fails JG_ERR_PROOF_FORMAT on what is not a jamgate-proof/1 document", () => {
    const p = proofs.entry();
    const cases: [string, (p: any) => unknown][] = [
      ["null", () => null],
      ["a string", () => "jamgate-proof/1"],
      ["an array", (x) => [x]],
      ["another format", (x) => ({ ...x, format: "jamgate-proof/2" })],
      ["another chain", (x) => ({ ...x, chain: "polkadot" })],
      ["an unknown field", (x) => ({ ...x, note: "trust me" })],
      ["an unknown claim kind", (x) => ({ ...x, claim: { ...x.claim, kind: "wifi-session" } })],
      ["no headers", (x) => ({ ...x, headers: [] })],
      ["no state", (x) => ({ ...x, state: undefined })],
      ["state and da", (x) => ({ ...x, da: { packageHash: "00".repeat(32), bundle: "", envelope: { offset: 0, length: 1 }, report: "", reportBlock: "" } })],
      ["uppercase hex", (x) => ({ ...x, state: { ...x.state, root: x.state.root.toUpperCase() } })],
      ["an odd number of hex digits", (x) => ({ ...x, state: { ...x.state, value: `${x.state.value}0` } })],
      ["a short root", (x) => ({ ...x, state: { ...x.state, root: x.state.root.slice(2) } })],
      ["more siblings than key bits", (x) => ({ ...x, state: { ...x.state, siblings: new Array(249).fill("00".repeat(32)) } })],
      ["a negative slot", (x) => ({ ...x, state: { ...x.state, block: { ...x.state.block, slot: -1 } } })],
      ["a fractional seq", () => ({ ...proofs.energySeq(), claim: { ...energySeqClaim, seq: 40.5 } })],
      ["a balance that is not a decimal", () => ({ ...proofs.balance(), claim: { ...balanceClaim, balanceMicros: "1e3" } })],
      ["an amount past u64", (x) => ({ ...x, claim: { ...x.claim, entry: { ...x.claim.entry, amountMicros: "184467440737095516150" } } })],
      ["a Wi-Fi entry with an energy entry's fields", (x) => ({ ...proofs.wifiEntry(), claim: { ...wifiEntryClaim, entry: x.claim.entry } })],
      ["a Wi-Fi entry of the energy service", () => ({ ...proofs.wifiEntry(), claim: { ...wifiEntryClaim, service: "energy-trading" } })],
      ["a Wi-Fi entry with an interval", () => ({ ...proofs.wifiEntry(), claim: { ...wifiEntryClaim, interval: WIFI_SLOT } })],
      [
        "a Wi-Fi entry's session in uppercase",
        () => ({ ...proofs.wifiEntry(), claim: { ...wifiEntryClaim, entry: { ...(wifiEntryClaim as any).entry, session: toHex(session).toUpperCase() } } }),
      ],
      [
        "a Wi-Fi entry's octets as a number",
        () => ({ ...proofs.wifiEntry(), claim: { ...wifiEntryClaim, entry: { ...(wifiEntryClaim as any).entry, inputOctets: 300_000_000 } } }),
      ],
      [
        "a Wi-Fi entry's attested as a string",
        () => ({ ...proofs.wifiEntry(), claim: { ...wifiEntryClaim, entry: { ...(wifiEntryClaim as any).entry, attested: "true" } } }),
      ],
      ["a Wi-Fi balance without lockedMicros", () => ({ ...proofs.wifiBalance(), claim: { ...wifiBalanceClaim, lockedMicros: undefined } })],
      ["an energy balance with lockedMicros", () => ({ ...proofs.balance(), claim: { ...balanceClaim, lockedMicros: "0" } })],
      ["a negative Wi-Fi lockedMicros", () => ({ ...proofs.wifiBalance(), claim: { ...wifiBalanceClaim, lockedMicros: "-1" } })],
      ["a reading of a router", () => ({ ...proofs.routerSeq(), claim: { ...routerSeqClaim, kind: "reading" } })],
      ["a header that does not decode", (x) => ({ ...x, headers: ["00ff"] })],
      ["a header with bytes after it", (x) => ({ ...x, headers: [`${x.headers[0]}00`] })],
      ["too many headers", (x) => ({ ...x, headers: new Array(14_401).fill(x.headers[0]) })],
    ];
    for (const [name, change] of cases) expect(codeOf(change(JSON.parse(JSON.stringify(p)))), name).toBe("JG_ERR_PROOF_FORMAT");
  });

  it("never throws on random JSON, nor on a proof with a field replaced by random JSON: always a JG_ERR_PROOF_ code", () => {
    const proofCodes = Object.keys(errorRegistry).filter((c) => c.startsWith("JG_ERR_PROOF_") && c !== "JG_ERR_PROOF_UNAVAILABLE");
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        const r = verifyProof(value);
        return !r.ok && proofCodes.includes(r.error.code);
      }),
      { numRuns: 500 },
    );
    const base = proofs.telemetrySeq();
    const paths = [
      ["format"],
      ["chain"],
      ["claim"],
      ["claim", "kind"],
      ["claim", "seq"],
      ["claim", "device"],
      ["state"],
      ["state", "siblings"],
      ["state", "siblings", "0"],
      ["state", "value"],
      ["state", "block"],
      ["state", "serviceId"],
      ["headers"],
      ["headers", "0"],
      ["da"],
    ];
    fc.assert(
      fc.property(fc.constantFrom(...paths), fc.jsonValue({ maxDepth: 2 }), (path, value) => {
        const p: any = JSON.parse(JSON.stringify(base));
        let at = p;
        for (const key of path.slice(0, -1)) at = at[key];
        at[path[path.length - 1]!] = value;
        const r = verifyProof(p);
        return r.ok
          ? JSON.stringify(p) === JSON.stringify(base) || JSON.stringify(value) === JSON.stringify(path.reduce((o: any, k) => o?.[k], base))
          : proofCodes.includes(r.error.code);
      }),
      { numRuns: 500 },
    );
  });
});
