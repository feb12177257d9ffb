/**
 * The device side of Wi-Fi billing (services/wifi-billing): what a router and its clients sign
 * and send. Sessions have the shape operators know from RADIUS accounting (RFC 2866: Start,
 * Interim-Update, Stop; cumulative octets and seconds, a terminate cause), and each update may
 * carry the client's countersignature, a voucher, over the same cumulative counters and the hash
 * of the session's previous voucher, like a payment channel: the router can bill at most what the
 * client signed, and a replayed or reordered voucher breaks the chain.
 *
 * Voucher signing bytes: "jamgate/voucher/v1" ⌢ 0x00 ⌢ router id 16 ⌢ session 16 ⌢ u64 input
 * octets ⌢ u64 output octets ⌢ u32 seconds ⌢ prev 32, integers little-endian. Voucher hash:
 * blake2b-256 of the signing bytes (an update without a voucher, router-attested, is chained by
 * the same hash of the same bytes).
 *
 * Usage body (the `router.usage` envelope's body): a CBOR map of definite length, integers as
 * major type 0, byte strings as major type 2, no floats or tags (./cbor.ts), with the keys
 * session, client, status, inOctets, outOctets, inGigawords, outGigawords, seconds, cause, prev,
 * and voucher with clientKey when the client signed. Octets are split RADIUS's way: the low 32 bits
 * in inOctets / outOctets (Acct-Input/Output-Octets), the count of 2^32 wraps in inGigawords /
 * outGigawords (RFC 2869 §5.1, §5.2).
 *
 * Imports nothing from the rest of jamgate; runs anywhere (no Node built-ins).
 */
import * as ed from "@noble/ed25519";
import { blake2b } from "@noble/hashes/blake2.js";
import { encodeCbor } from "./cbor.ts";
import { fromHex } from "./envelope.ts";

/** Domain separation of voucher signatures: never valid as any other jamgate signature. */
export const VOUCHER_DOMAIN = new TextEncoder().encode("jamgate/voucher/v1\u0000");
export const VOUCHER_SIGNING_BYTES = VOUCHER_DOMAIN.length + 16 + 16 + 8 + 8 + 4 + 32;
export const SESSION_ID_BYTES = 16;
export const VOUCHER_HASH_BYTES = 32;
/** The `prev` of a session's first update. */
export const FIRST_PREV = new Uint8Array(VOUCHER_HASH_BYTES);

/** RFC 2866 §5.1 Acct-Status-Type values a session update carries. */
export const UsageStatus = { start: 1, stop: 2, interim: 3 } as const;
export type UsageStatus = (typeof UsageStatus)[keyof typeof UsageStatus];

const U32_LIMIT = 2 ** 32;
const U64_MAX = (1n << 64n) - 1n;

/** What a voucher covers: cumulative counters of one session at one update, and the update before it. */
export interface VoucherFields {
  /** The router's device id: 16 bytes or 32 lowercase hex digits. */
  readonly router: Uint8Array | string;
  readonly session: Uint8Array;
  /** Cumulative octets (64-bit, after gigaword wrap). */
  readonly inputOctets: bigint;
  readonly outputOctets: bigint;
  /** Acct-Session-Time, seconds since the session started. */
  readonly seconds: number;
  /** Hash of the session's previous voucher; FIRST_PREV for the first. */
  readonly prev: Uint8Array;
}

function idBytes(id: Uint8Array | string, what: string, length = 16): Uint8Array {
  const bytes = typeof id === "string" ? (/^[0-9a-f]*$/.test(id) ? fromHex(id) : new Uint8Array(0)) : id;
  if (bytes.length !== length) throw new Error(`${what} must be ${length} bytes (${2 * length} lowercase hex digits)`);
  return bytes;
}

function checkU32(value: number, what: string): void {
  if (!Number.isInteger(value) || value < 0 || value >= U32_LIMIT) throw new Error(`${what} must be an integer in 0 .. 2^32 − 1, got ${value}`);
}

/** The bytes a client signs for a voucher. Throws on fields out of range (a caller bug). */
export function voucherSigningBytes(f: VoucherFields): Uint8Array {
  const router = idBytes(f.router, "router");
  const session = idBytes(f.session, "session");
  const prev = idBytes(f.prev, "prev", VOUCHER_HASH_BYTES);
  if (f.inputOctets < 0n || f.inputOctets > U64_MAX || f.outputOctets < 0n || f.outputOctets > U64_MAX) throw new Error("octet counters must be u64");
  checkU32(f.seconds, "seconds");
  const out = new Uint8Array(VOUCHER_SIGNING_BYTES);
  const view = new DataView(out.buffer);
  let at = 0;
  out.set(VOUCHER_DOMAIN, at);
  at += VOUCHER_DOMAIN.length;
  out.set(router, at);
  at += 16;
  out.set(session, at);
  at += 16;
  view.setBigUint64(at, f.inputOctets, true);
  at += 8;
  view.setBigUint64(at, f.outputOctets, true);
  at += 8;
  view.setUint32(at, f.seconds, true);
  at += 4;
  out.set(prev, at);
  return out;
}

/** blake2b-256 of the voucher's signing bytes: the next update's `prev`. */
export function voucherHash(f: VoucherFields): Uint8Array {
  return blake2b(voucherSigningBytes(f), { dkLen: 32 });
}

/** The client's Ed25519 signature (64 bytes) over the voucher's signing bytes. */
export function signVoucher(f: VoucherFields, clientSecretKey: Uint8Array): Uint8Array {
  return ed.sign(voucherSigningBytes(f), clientSecretKey);
}

export function verifyVoucher(f: VoucherFields, signature: Uint8Array, clientPublicKey: Uint8Array): boolean {
  try {
    return ed.verify(signature, voucherSigningBytes(f), clientPublicKey);
  } catch {
    return false;
  }
}

/** One session update as the `router.usage` body carries it (RADIUS's fields). */
export interface UsageUpdate {
  readonly session: Uint8Array;
  /** The client's account id (16 bytes or 32 lowercase hex digits). */
  readonly client: Uint8Array | string;
  readonly status: UsageStatus;
  /** Low 32 bits of the cumulative octets, and the count of 2^32 wraps. */
  readonly inOctets: number;
  readonly outOctets: number;
  readonly inGigawords: number;
  readonly outGigawords: number;
  readonly seconds: number;
  /** Acct-Terminate-Cause (RFC 2866 §5.10) of a Stop; 0 otherwise. */
  readonly cause: number;
  readonly prev: Uint8Array;
  /** The client's signature over the voucher of this update; absent = router-attested. */
  readonly voucher?: Uint8Array;
  /** The client's public key; required with `voucher`. */
  readonly clientKey?: Uint8Array;
}

/** Cumulative octets as RADIUS splits them: low 32 bits and gigawords. */
export function splitOctets(octets: bigint): { readonly octets: number; readonly gigawords: number } {
  if (octets < 0n || octets >= 1n << 64n) throw new Error(`octets ${octets} is not a u64`);
  return { octets: Number(octets & 0xffff_ffffn), gigawords: Number(octets >> 32n) };
}

/** gigawords × 2^32 + octets (RFC 2869 §5.1). */
export function joinOctets(octets: number, gigawords: number): bigint {
  return (BigInt(gigawords) << 32n) + BigInt(octets);
}

/** The CBOR body of a `router.usage` envelope. Throws on fields out of range (a caller bug). */
export function encodeUsageBody(u: UsageUpdate): Uint8Array {
  const session = idBytes(u.session, "session");
  const client = idBytes(u.client, "client");
  const prev = idBytes(u.prev, "prev", VOUCHER_HASH_BYTES);
  if (u.status !== UsageStatus.start && u.status !== UsageStatus.stop && u.status !== UsageStatus.interim)
    throw new Error(`status must be 1 (Start), 2 (Stop) or 3 (Interim-Update), got ${String(u.status)}`);
  for (const [what, value] of [
    ["inOctets", u.inOctets],
    ["outOctets", u.outOctets],
    ["inGigawords", u.inGigawords],
    ["outGigawords", u.outGigawords],
    ["seconds", u.seconds],
    ["cause", u.cause],
  ] as const)
    checkU32(value, what);
  if (u.status !== UsageStatus.stop && u.cause !== 0) throw new Error("cause is for a Stop only");
  const body: Record<string, unknown> = {
    session: Uint8Array.from(session),
    client: Uint8Array.from(client),
    status: u.status,
    inOctets: u.inOctets,
    outOctets: u.outOctets,
    inGigawords: u.inGigawords,
    outGigawords: u.outGigawords,
    seconds: u.seconds,
    cause: u.cause,
    prev: Uint8Array.from(prev),
  };
  if (u.voucher !== undefined || u.clientKey !== undefined) {
    if (u.voucher?.length !== 64) throw new Error("voucher must be a 64-byte Ed25519 signature");
    if (u.clientKey?.length !== 32) throw new Error("clientKey must be the client's 32-byte public key, given with the voucher");
    body.voucher = Uint8Array.from(u.voucher);
    body.clientKey = Uint8Array.from(u.clientKey);
  }
  return encodeCbor(body);
}

/** Cumulative counters of a session at one update. */
export interface SessionCounters {
  readonly inputOctets: bigint;
  readonly outputOctets: bigint;
  readonly seconds: number;
}

/**
 * One session as its router keeps it: counters and the last voucher hash, so each update chains to
 * the one before. The router asks the client to sign `voucherFields(counters)` (the client checks
 * them against what it used, then `signVoucher`), and makes the update's body with `update`.
 * Throws on what the service would refuse anyway: counters going backwards, an update after the
 * Stop, a Start that is not the first.
 */
export class RouterSession {
  private prev: Uint8Array;
  private last: SessionCounters = { inputOctets: 0n, outputOctets: 0n, seconds: 0 };
  private updates = 0;
  private stopped = false;
  private readonly routerId: Uint8Array;
  readonly session: Uint8Array;
  readonly client: Uint8Array;

  constructor(router: Uint8Array | string, session: Uint8Array, client: Uint8Array | string) {
    this.routerId = idBytes(router, "router");
    this.session = idBytes(session, "session");
    this.client = idBytes(client, "client");
    this.prev = FIRST_PREV;
  }

  /** The hash of the last update's voucher (FIRST_PREV before the first). */
  get lastVoucherHash(): Uint8Array {
    return this.prev;
  }

  get counters(): SessionCounters {
    return this.last;
  }

  /** What the client signs for the next update with these cumulative counters. */
  voucherFields(counters: SessionCounters): VoucherFields {
    return {
      router: this.routerId,
      session: this.session,
      inputOctets: counters.inputOctets,
      outputOctets: counters.outputOctets,
      seconds: counters.seconds,
      prev: this.prev,
    };
  }

  /**
   * The body of the next update, and its voucher hash (now the session's last). `status` defaults
   * to Start for the first update and Interim-Update after; `voucher` is the client's signature over
   * `voucherFields(counters)` with its public key (omit both for router-attested usage).
   */
  update(
    counters: SessionCounters,
    options: { readonly status?: UsageStatus; readonly cause?: number; readonly voucher?: Uint8Array; readonly clientKey?: Uint8Array } = {},
  ): { readonly body: Uint8Array; readonly hash: Uint8Array } {
    if (this.stopped) throw new Error("the session is stopped");
    const status = options.status ?? (this.updates === 0 ? UsageStatus.start : UsageStatus.interim);
    if (status === UsageStatus.start && this.updates > 0) throw new Error("only the first update is a Start");
    if (status !== UsageStatus.start && this.updates === 0) throw new Error("a session's first update is its Start");
    if (counters.inputOctets < this.last.inputOctets || counters.outputOctets < this.last.outputOctets || counters.seconds < this.last.seconds)
      throw new Error("counters go backwards");
    const fields = this.voucherFields(counters);
    const input = splitOctets(counters.inputOctets);
    const output = splitOctets(counters.outputOctets);
    const body = encodeUsageBody({
      session: this.session,
      client: this.client,
      status,
      inOctets: input.octets,
      outOctets: output.octets,
      inGigawords: input.gigawords,
      outGigawords: output.gigawords,
      seconds: counters.seconds,
      cause: status === UsageStatus.stop ? (options.cause ?? 0) : 0,
      prev: this.prev,
      ...(options.voucher === undefined ? {} : { voucher: options.voucher, clientKey: options.clientKey }),
    });
    const hash = voucherHash(fields);
    this.prev = hash;
    this.last = counters;
    this.updates++;
    if (status === UsageStatus.stop) this.stopped = true;
    return { body, hash };
  }
}
