/**
 * RADIUS accounting packets as the gateway reads them: an Accounting-Request (RFC 2866 §4.1)
 * decoded by the `radius` npm codec, its Request Authenticator checked with the router's shared
 * secret (RFC 2866 §3), and the attributes usage is made of (RFC 2866 §5, RFC 2869 §5.1–5.2).
 * The Accounting-Response is the codec's `encode_response`. Pure functions: no sockets, no state.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import radius from "radius";
import type { ErrorCode } from "../../devices/protocol/errors.ts";

/** Largest RADIUS packet: RFC 2865 §3 ("The minimum length is 20 and maximum length is 4096"). A datagram past it is not read. */
export const RADIUS_PACKET_BYTES_MAX = 4096;
/** Code, Identifier, Length and the 16-octet Authenticator (RFC 2865 §3). */
export const RADIUS_HEADER_BYTES = 20;
const AUTHENTICATOR_OFFSET = 4;
const AUTHENTICATOR_BYTES = 16;
/** RFC 2866 §4.1: Code 4 Accounting-Request. */
const CODE_ACCOUNTING_REQUEST = 4;

/** Attribute types read here (RFC 2865 §5, RFC 2866 §5, RFC 2869 §5.1–5.2). */
export const ATTRIBUTE = {
  userName: 1,
  nasIdentifier: 32,
  acctStatusType: 40,
  acctInputOctets: 42,
  acctOutputOctets: 43,
  acctSessionId: 44,
  acctSessionTime: 46,
  acctTerminateCause: 49,
  acctInputGigawords: 52,
  acctOutputGigawords: 53,
} as const;

/** Acct-Status-Type values (RFC 2866 §5.1). Start, Stop and Interim-Update are usage; Accounting-On/Off are answered and ignored. */
export const ACCT_STATUS = { start: 1, stop: 2, interimUpdate: 3, accountingOn: 7, accountingOff: 8 } as const;
export type UsageStatus = typeof ACCT_STATUS.start | typeof ACCT_STATUS.stop | typeof ACCT_STATUS.interimUpdate;

/** A refusal of a datagram: its registry code (devices/protocol/errors.ts) and what was wrong. */
export interface RadiusRefusal {
  readonly code: ErrorCode;
  readonly detail: string;
}

/** An Accounting-Request decoded, not yet authenticated: enough to find its router. */
export interface AccountingRequest {
  /** The packet's bytes up to its Length field (octets past it are padding, RFC 2865 §3). */
  readonly bytes: Buffer;
  /** The codec's view of it, which encode_response answers. */
  readonly decoded: radius.RadiusPacket;
  /** NAS-Identifier: the router id (32 lowercase hex). */
  readonly routerId: string;
}

/** One usage update of an authentic Accounting-Request (Start, Interim-Update or Stop). */
export interface AccountingUsage {
  readonly status: UsageStatus;
  /** Acct-Session-Id as sent (RFC 2866 §5.5: a UTF-8 string, unique per NAS). */
  readonly acctSessionId: string;
  /** User-Name: the client's account id (32 lowercase hex). */
  readonly clientId: string;
  /** Acct-Input-Octets and Acct-Input-Gigawords (RFC 2869 §5.1) as sent, 0 when absent. */
  readonly inOctets: number;
  readonly inGigawords: number;
  readonly outOctets: number;
  readonly outGigawords: number;
  /** Acct-Session-Time (RFC 2866 §5.7), 0 when absent. */
  readonly seconds: number;
  /** Acct-Terminate-Cause (RFC 2866 §5.10) of a Stop, else 0. */
  readonly cause: number;
}

export type AccountingContent =
  | { readonly kind: "usage"; readonly usage: AccountingUsage }
  | { readonly kind: "on-off"; readonly status: typeof ACCT_STATUS.accountingOn | typeof ACCT_STATUS.accountingOff };

type Judged<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly refusal: RadiusRefusal };

const ok = <T>(value: T): Judged<T> => ({ ok: true, value });
const refuse = (code: ErrorCode, detail: string): Judged<never> => ({ ok: false, refusal: { code, detail } });

const ID_PATTERN = /^[0-9a-fA-F]{32}$/;

/**
 * Decodes a datagram as an Accounting-Request and reads its NAS-Identifier, without the secret
 * (the codec's `decode_without_secret`: the router, and so the secret, are not known yet). The
 * Length field decides the packet (RFC 2865 §3): shorter datagrams are refused, octets past it
 * ignored.
 */
export function readAccountingRequest(datagram: Buffer): Judged<AccountingRequest> {
  if (datagram.length > RADIUS_PACKET_BYTES_MAX)
    return refuse("JG_ERR_RADIUS_PACKET", `a datagram of ${datagram.length} bytes > ${RADIUS_PACKET_BYTES_MAX} (RFC 2865 §3)`);
  if (datagram.length < RADIUS_HEADER_BYTES)
    return refuse("JG_ERR_RADIUS_PACKET", `a datagram of ${datagram.length} bytes < ${RADIUS_HEADER_BYTES}, the RADIUS header`);
  const length = datagram.readUInt16BE(2);
  if (length < RADIUS_HEADER_BYTES || length > datagram.length)
    return refuse("JG_ERR_RADIUS_PACKET", `Length ${length} outside ${RADIUS_HEADER_BYTES}..${datagram.length} (the datagram)`);
  if (datagram[0] !== CODE_ACCOUNTING_REQUEST)
    return refuse("JG_ERR_RADIUS_PACKET", `code ${datagram[0]} is not Accounting-Request (${CODE_ACCOUNTING_REQUEST})`);
  const bytes = datagram.subarray(0, length);
  let decoded: radius.RadiusPacket;
  try {
    decoded = radius.decode_without_secret({ packet: bytes });
  } catch (e) {
    return refuse("JG_ERR_RADIUS_PACKET", `does not decode: ${e instanceof Error ? e.message : String(e)}`);
  }
  const nas = single(decoded, ATTRIBUTE.nasIdentifier, "NAS-Identifier");
  if (!nas.ok) return nas;
  const routerId = nas.value?.toString("utf8") ?? "";
  if (!ID_PATTERN.test(routerId)) return refuse("JG_ERR_RADIUS_PACKET", "NAS-Identifier must be the router id (32 hex digits)");
  return ok({ bytes, decoded, routerId: routerId.toLowerCase() });
}

/**
 * Whether the Request Authenticator is MD5(Code ⌢ Identifier ⌢ Length ⌢ 16 zero octets ⌢
 * Attributes ⌢ Secret), RFC 2866 §3. Written here rather than taken from the codec's `decode`,
 * which does check it but compares the two digests as UTF-8 strings (radius 1.1.4,
 * lib/radius.js `checksum.toString() != this.authenticator.toString()`): every octet that is not
 * valid UTF-8 reads as U+FFFD, so different authenticators compare equal (sixteen 0x80 octets
 * match any digest whose octets all lie in 0x80–0xBF, odds 2^-32 rather than 2^-128). Compared
 * here in constant time on the octets. A Message-Authenticator (RFC 3579 §3.2), if the request has
 * one, is not checked: this authenticator already covers every octet of the packet and the secret.
 */
export function authenticatorMatches(packet: Buffer, sharedSecret: string): boolean {
  if (packet.length < RADIUS_HEADER_BYTES) return false;
  const md5 = createHash("md5");
  md5.update(packet.subarray(0, AUTHENTICATOR_OFFSET));
  md5.update(Buffer.alloc(AUTHENTICATOR_BYTES));
  md5.update(packet.subarray(AUTHENTICATOR_OFFSET + AUTHENTICATOR_BYTES));
  md5.update(sharedSecret, "utf8");
  return timingSafeEqual(md5.digest(), packet.subarray(AUTHENTICATOR_OFFSET, AUTHENTICATOR_OFFSET + AUTHENTICATOR_BYTES));
}

/**
 * What an authentic Accounting-Request says: usage (Start, Interim-Update, Stop, with
 * Acct-Session-Id and User-Name required), or Accounting-On/Off. Every attribute read here may
 * appear at most once (RFC 2866 §5.13) and integers are 4 octets (RFC 2865 §5).
 */
export function readAccountingContent(request: AccountingRequest): Judged<AccountingContent> {
  const d = request.decoded;
  const status = integer(d, ATTRIBUTE.acctStatusType, "Acct-Status-Type");
  if (!status.ok) return status;
  if (status.value === null) return refuse("JG_ERR_RADIUS_PACKET", "no Acct-Status-Type");
  if (status.value === ACCT_STATUS.accountingOn || status.value === ACCT_STATUS.accountingOff) return ok({ kind: "on-off", status: status.value });
  if (status.value !== ACCT_STATUS.start && status.value !== ACCT_STATUS.stop && status.value !== ACCT_STATUS.interimUpdate) {
    return refuse(
      "JG_ERR_RADIUS_PACKET",
      `Acct-Status-Type ${status.value} is not Start (1), Stop (2), Interim-Update (3), Accounting-On (7) or Accounting-Off (8)`,
    );
  }
  const session = single(d, ATTRIBUTE.acctSessionId, "Acct-Session-Id");
  if (!session.ok) return session;
  if (session.value === null || session.value.length === 0) return refuse("JG_ERR_RADIUS_PACKET", "no Acct-Session-Id");
  const user = single(d, ATTRIBUTE.userName, "User-Name");
  if (!user.ok) return user;
  const clientId = user.value?.toString("utf8") ?? "";
  if (!ID_PATTERN.test(clientId)) return refuse("JG_ERR_RADIUS_PACKET", "User-Name must be the client's account id (32 hex digits)");
  const counters: number[] = [];
  for (const [type, name] of [
    [ATTRIBUTE.acctInputOctets, "Acct-Input-Octets"],
    [ATTRIBUTE.acctInputGigawords, "Acct-Input-Gigawords"],
    [ATTRIBUTE.acctOutputOctets, "Acct-Output-Octets"],
    [ATTRIBUTE.acctOutputGigawords, "Acct-Output-Gigawords"],
    [ATTRIBUTE.acctSessionTime, "Acct-Session-Time"],
    [ATTRIBUTE.acctTerminateCause, "Acct-Terminate-Cause"],
  ] as const) {
    const value = integer(d, type, name);
    if (!value.ok) return value;
    counters.push(value.value ?? 0);
  }
  const [inOctets, inGigawords, outOctets, outGigawords, seconds, cause] = counters as [number, number, number, number, number, number];
  return ok({
    kind: "usage",
    usage: {
      status: status.value,
      acctSessionId: session.value.toString("utf8"),
      clientId: clientId.toLowerCase(),
      inOctets,
      inGigawords,
      outOctets,
      outGigawords,
      seconds,
      cause: status.value === ACCT_STATUS.stop ? cause : 0,
    },
  });
}

/** 64-bit octets from a counter and its gigawords (RFC 2869 §5.1: "how many times the Acct-Input-Octets counter has wrapped around 2^32"). */
export function octets64(octets: number, gigawords: number): bigint {
  return (BigInt(gigawords) << 32n) + BigInt(octets);
}

/** The Accounting-Response to an authentic request (RFC 2866 §4.2): the codec's, its Response Authenticator over the request's. */
export function accountingResponse(request: AccountingRequest, sharedSecret: string): Buffer {
  return radius.encode_response({ packet: request.decoded, code: "Accounting-Response", secret: sharedSecret });
}

/** The one value of attribute `type`, null when absent; more than one is refused. */
function single(d: radius.RadiusPacket, type: number, name: string): Judged<Buffer | null> {
  let found: Buffer | null = null;
  for (const attribute of d.raw_attributes) {
    if (attribute[0] !== type) continue;
    if (found !== null) return refuse("JG_ERR_RADIUS_PACKET", `${name} appears more than once`);
    found = attribute[1] as Buffer;
  }
  return ok(found);
}

/** A 4-octet integer attribute (RFC 2865 §5), null when absent. */
function integer(d: radius.RadiusPacket, type: number, name: string): Judged<number | null> {
  const value = single(d, type, name);
  if (!value.ok || value.value === null) return value as Judged<null>;
  if (value.value.length !== 4) return refuse("JG_ERR_RADIUS_PACKET", `${name} has ${value.value.length} octets, not 4`);
  return ok(value.value.readUInt32BE(0));
}
