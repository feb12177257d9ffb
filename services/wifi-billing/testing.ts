/**
 * Test support (not loaded by the node): a small world of accounts, routers and sessions on the
 * in-memory host (services/common/testing.ts), one accumulate call per block. What a service may
 * not import is injected by the test: crypto (keys, signatures, blake2b) and the device side's
 * encoders (devices/envelope.ts `signingBytes`, devices/wifi.ts `encodeUsageBody`), so the tests
 * drive the service with the bytes real devices send.
 */
import { ascii, toHex } from "../common/bytes.ts";
import type { EnvelopeRecord, RawDeviceId } from "../common/envelope.ts";
import { decodeOutcome, outcomeKey, type PackageOutcome } from "../common/outcome.ts";
import { type Hash, MemoryStorage, memoryRefineContext, resultItem, type VerifyEd25519 } from "../common/testing.ts";
import { accumulate, accumulateWith, type RingCapacities } from "./accumulate.ts";
import { ALWAYS_ACCUMULATE_GAS, wifiActionsGas, wifiEnvelopesGas, wifiRegistrationsGas } from "./gas.ts";
import { type RouterTerms, type WifiAction, wifiActionsPayload, wifiEnvelopesPayload, WifiItemKind, wifiRegistrationsPayload } from "./payload.ts";
import { refine } from "./refine.ts";
import {
  type AccountRecord,
  accountKey,
  decodeAccount,
  decodeLedgerEntries,
  decodeMicros,
  decodeRouter,
  decodeSession,
  decodeStats,
  decodeStoredAction,
  feesKey,
  actionKey,
  type LedgerEntry,
  ledgerKey,
  type RouterRecord,
  routerKey,
  type SessionRecord,
  sessionKey,
  statsKey,
  type StoredAction,
  type WifiStats,
} from "./storage.ts";
import { FIRST_PREV, voucherSigningBytes } from "./voucher.ts";

export interface TestKey {
  readonly publicKey: Uint8Array;
  sign(message: Uint8Array): Uint8Array;
}

export interface TestCrypto {
  readonly hash: Hash;
  readonly verifyEd25519: VerifyEd25519;
  /** A key pair derived from a name (deterministic). */
  keyOf(name: string): TestKey;
}

/** The device side's encoders, as devices/ has them. */
export interface DeviceSide {
  envelopeSigningBytes(fields: { device: string; seq: number; kind: string; timeMs: number; body: Uint8Array }): Uint8Array;
  usageBody(update: {
    session: Uint8Array;
    client: Uint8Array;
    status: 1 | 2 | 3;
    inOctets: number;
    outOctets: number;
    inGigawords: number;
    outGigawords: number;
    seconds: number;
    cause: number;
    prev: Uint8Array;
    voucher?: Uint8Array;
    clientKey?: Uint8Array;
  }): Uint8Array;
}

/**
 * What a test hands in from node/crypto (`hash`, `verifyEd25519`, `keyPairFromSeed`, `signEd25519`)
 * and devices/ (envelope.ts `signingBytes`, wifi.ts `encodeUsageBody`): the real primitives and
 * encoders, which the service may not import (scripts/architecture.test.ts).
 */
export interface RealSides<Pair> {
  readonly hash: Hash;
  readonly verifyEd25519: VerifyEd25519;
  keyPairFromSeed(seed: Uint8Array): Pair & { readonly publicKey: Uint8Array };
  signEd25519(pair: Pair, message: Uint8Array): Uint8Array;
  /** Envelope signing bytes; devices/envelope.ts brands the device id and kind, plain strings here. */
  signingBytes(fields: { version: number; device: string; seq: number; kind: string; timeMs: number; body: Uint8Array }): Uint8Array;
  encodeUsageBody(update: Parameters<DeviceSide["usageBody"]>[0]): Uint8Array;
}

/**
 * The world's crypto and device side from the real ones: a name's key is the Ed25519 key of the
 * seed blake2b(name) (made once per name: signing is deterministic, so a cached key signs the
 * same bytes), envelopes are version 1.
 */
export function realSides<Pair>(real: RealSides<Pair>): { readonly crypto: TestCrypto; readonly deviceSide: DeviceSide } {
  const keys = new Map<string, TestKey>();
  const crypto: TestCrypto = {
    hash: real.hash,
    verifyEd25519: real.verifyEd25519,
    keyOf(name) {
      let key = keys.get(name);
      if (key === undefined) {
        const pair = real.keyPairFromSeed(real.hash(ascii(name)));
        key = { publicKey: pair.publicKey, sign: (message) => real.signEd25519(pair, message) };
        keys.set(name, key);
      }
      return key;
    },
  };
  const deviceSide: DeviceSide = {
    envelopeSigningBytes: (f) => real.signingBytes({ version: 1, device: f.device, seq: f.seq, kind: f.kind, timeMs: f.timeMs, body: f.body }),
    usageBody: (u) => real.encodeUsageBody(u),
  };
  return { crypto, deviceSide };
}

export interface Party {
  readonly name: string;
  readonly key: TestKey;
  readonly id: RawDeviceId;
  readonly hex: string;
}

export interface RouterParty extends Party {
  seq: number;
}

/** One update of a session, as the test wants it sent. */
export interface UpdateSpec {
  readonly inputOctets: bigint;
  readonly outputOctets: bigint;
  readonly seconds: number;
  /** Default: Start for the first update, Interim-Update after. */
  readonly status?: 1 | 2 | 3;
  readonly cause?: number;
  /** "client" (default): the client signs; "none": router-attested; "wrong-key": signed by another key. */
  readonly voucher?: "client" | "none" | "wrong-key" | "forged";
  /** Overrides the `prev` the update chains to. */
  readonly prev?: Uint8Array;
  /** Overrides the split of input octets (to send a wrong gigaword wrap). */
  readonly split?: { readonly inOctets: number; readonly inGigawords: number };
  /** The seq to send with (default: the router's next). */
  readonly seq?: number;
}

/** A session as its router keeps it: the hash of its last update sent. */
export class TestSession {
  lastHash: Uint8Array = FIRST_PREV;
  updates = 0;

  constructor(
    private readonly world: WifiWorld,
    readonly router: RouterParty,
    readonly client: Party,
    readonly id: Uint8Array,
  ) {}

  /** The envelope record of the next update; the session's last hash moves to it. */
  update(spec: UpdateSpec): EnvelopeRecord & { readonly seq: number; readonly hash: Uint8Array } {
    const { crypto, device } = this.world;
    const prev = spec.prev ?? this.lastHash;
    const status = spec.status ?? (this.updates === 0 ? 1 : 3);
    const fields = { router: this.router.id, session: this.id, inputOctets: spec.inputOctets, outputOctets: spec.outputOctets, seconds: spec.seconds, prev };
    const signing = voucherSigningBytes(fields);
    const hash = crypto.hash(signing);
    const mode = spec.voucher ?? "client";
    const signer = mode === "wrong-key" ? crypto.keyOf(`not ${this.client.name}`) : this.client.key;
    let voucher = mode === "none" ? undefined : signer.sign(signing);
    if (mode === "forged" && voucher !== undefined) voucher = Uint8Array.from(voucher, (b, i) => (i === 0 ? b ^ 1 : b));
    const input = spec.split ?? { inOctets: Number(spec.inputOctets & 0xffff_ffffn), inGigawords: Number(spec.inputOctets >> 32n) };
    const body = device.usageBody({
      session: this.id,
      client: this.client.id,
      status,
      inOctets: input.inOctets,
      outOctets: Number(spec.outputOctets & 0xffff_ffffn),
      inGigawords: input.inGigawords,
      outGigawords: Number(spec.outputOctets >> 32n),
      seconds: spec.seconds,
      cause: status === 2 ? (spec.cause ?? 1) : 0,
      prev,
      ...(voucher === undefined ? {} : { voucher, clientKey: this.client.key.publicKey }),
    });
    this.lastHash = hash;
    this.updates++;
    return { ...this.world.envelope(this.router, "router.usage", body, spec.seq), hash };
  }
}

/** The service on an in-memory host: one accumulate call per block, every block (χ_Z). */
export class WifiWorld {
  readonly storage = new MemoryStorage();
  slot = 0;
  /** Gas the last block's accumulate call used. */
  lastGasUsed = 0n;
  private packages = 0;
  private actions = 0;
  private sessions = 0;

  private readonly accumulate: typeof accumulate;

  constructor(
    readonly crypto: TestCrypto,
    readonly device: DeviceSide,
    /** Smaller rings to test eviction; the service's own by default. */
    rings?: RingCapacities,
  ) {
    this.accumulate = rings === undefined ? accumulate : accumulateWith(rings);
  }

  party(name: string): RouterParty {
    const key = this.crypto.keyOf(name);
    const id = this.crypto.hash(key.publicKey).slice(0, 16) as RawDeviceId;
    return { name, key, id, hex: toHex(id), seq: 0 };
  }

  /** A signed envelope of `party` (its next seq, or `seq`). */
  envelope(party: RouterParty, kind: string, body: Uint8Array, seq = party.seq++): EnvelopeRecord & { readonly seq: number } {
    const signingBytes = this.device.envelopeSigningBytes({ device: party.hex, seq, kind, timeMs: 1, body });
    return { publicKey: party.key.publicKey, signingBytes, signature: party.key.sign(signingBytes), seq };
  }

  /** A session of `router` for `client`, with a fresh id (or `id`). */
  session(router: RouterParty, client: Party, id?: Uint8Array): TestSession {
    const sessionId = id ?? this.crypto.hash(new TextEncoder().encode(`session ${router.name} ${++this.sessions}`)).slice(0, 16);
    return new TestSession(this, router, client, sessionId);
  }

  actionId(): Uint8Array {
    return this.crypto.hash(new TextEncoder().encode(`action ${++this.actions}`)).slice(0, 16);
  }

  registrations(...records: ({ party: Party; kind: "client" } | { party: Party; kind: "router"; router: RouterTerms })[]): Uint8Array {
    return wifiRegistrationsPayload(
      records.map((r) =>
        r.kind === "client" ? { publicKey: r.party.key.publicKey, kind: "client" } : { publicKey: r.party.key.publicKey, kind: "router", router: r.router },
      ),
    );
  }

  actionsPayload(...actions: WifiAction[]): Uint8Array {
    return wifiActionsPayload(actions);
  }

  topup(account: Party, amountMicros: bigint, actionId = this.actionId()): Uint8Array {
    return wifiActionsPayload([{ actionId, type: "topup", account: account.id, amountMicros }]);
  }

  envelopes(...records: EnvelopeRecord[]): Uint8Array {
    return wifiEnvelopesPayload(records);
  }

  /** One block carrying these payloads (each its own package, unless `packages` groups them); returns the package hashes. */
  block(...payloads: Uint8Array[]): Uint8Array[] {
    return this.blockOf(payloads.map((p) => [p]));
  }

  /** One block of packages, each a list of items; the call's gas is the items' limits and the χ_Z gas, or `gasLimit`. */
  blockOf(packages: readonly (readonly Uint8Array[])[], gasLimit?: bigint): Uint8Array[] {
    this.slot++;
    const hashes = packages.map(() => this.crypto.hash(Uint8Array.of(0xe7, ...new TextEncoder().encode(String(++this.packages)))));
    const items = packages.flatMap((items, p) =>
      items.map((payload) => {
        const output = refine(payload, memoryRefineContext(this.crypto, 1_000_000_000n, new Uint8Array(hashes[p]!)));
        return resultItem(hashes[p]!, output, gasOf(payload));
      }),
    );
    const itemGas = items.reduce((sum, item) => sum + item.gasLimit, 0n);
    this.lastGasUsed = this.storage.accumulate(this.accumulate, items, {
      slot: this.slot,
      hash: this.crypto.hash,
      gasLimit: gasLimit ?? itemGas + ALWAYS_ACCUMULATE_GAS,
    }).gasUsed;
    return hashes;
  }

  /** Empty blocks until `slot`. */
  advanceTo(slot: number): void {
    while (this.slot < slot) this.block();
  }

  // Reading state back.

  account(party: Party): AccountRecord | null {
    return decoded(this.storage.get(accountKey(party.id)), decodeAccount);
  }

  routerRecord(party: Party): RouterRecord | null {
    return decoded(this.storage.get(routerKey(party.id)), decodeRouter);
  }

  sessionRecord(session: TestSession): SessionRecord | null {
    return decoded(this.storage.get(sessionKey(session.router.id, session.id)), decodeSession);
  }

  stats(): WifiStats {
    const stats = decoded(this.storage.get(statsKey), decodeStats);
    if (stats === null) throw new Error("no stats");
    return stats;
  }

  fees(): bigint {
    return decoded(this.storage.get(feesKey), decodeMicros) ?? 0n;
  }

  ledger(slot = this.slot): LedgerEntry[] {
    return decoded(this.storage.get(ledgerKey(slot)), decodeLedgerEntries) ?? [];
  }

  outcome(packageHash: Uint8Array): PackageOutcome {
    const outcome = decoded(this.storage.get(outcomeKey(packageHash)), decodeOutcome);
    if (outcome === null) throw new Error("no outcome");
    return outcome;
  }

  action(actionId: Uint8Array): StoredAction | null {
    return decoded(this.storage.get(actionKey(actionId)), decodeStoredAction);
  }
}

function decoded<T>(value: Uint8Array | null, decode: (bytes: Uint8Array) => { ok: true; value: T } | { ok: false; error: string }): T | null {
  if (value === null) return null;
  const result = decode(value);
  if (!result.ok) throw new Error(result.error);
  return result.value;
}

/** The accumulate gas the gateway would set on this item. */
export function gasOf(payload: Uint8Array): bigint {
  const count = payload.length >= 5 ? new DataView(payload.buffer, payload.byteOffset + 1, 4).getUint32(0, true) : 0;
  if (payload[0] === WifiItemKind.envelopes) return wifiEnvelopesGas(Math.min(count, 64), count);
  if (payload[0] === WifiItemKind.registrations) return wifiRegistrationsGas(count);
  return wifiActionsGas(count);
}
