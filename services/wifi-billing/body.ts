/**
 * The `router.usage` envelope body, device → refine (devices/wifi.ts `encodeUsageBody`): a CBOR
 * map read with the strict reader of services/common/cbor.ts (definite lengths, integers, byte
 * and text strings only), then checked field by field. Maps are read by key, so key order does
 * not matter; a key the table does not name is refused, as is a missing one, a repeated one, a
 * wrong type or size, a counter of 2^32 or more, a status other than 1, 2, 3, a cause on an update
 * that is not a Stop, and a voucher without the client's key (or the key without a voucher).
 *
 * | key | CBOR | meaning |
 * |---|---|---|
 * | session | bytes(16) | session id |
 * | client | bytes(16) | the client's account id |
 * | status | uint | RFC 2866 Acct-Status-Type: 1 Start, 2 Stop, 3 Interim-Update |
 * | inOctets, outOctets | uint < 2^32 | Acct-Input/Output-Octets (the low 32 bits) |
 * | inGigawords, outGigawords | uint < 2^32 | RFC 2869 Acct-Input/Output-Gigawords |
 * | seconds | uint < 2^32 | Acct-Session-Time |
 * | cause | uint < 2^32 | Acct-Terminate-Cause (RFC 2866 §5.10); 0 unless status is Stop |
 * | prev | bytes(32) | hash of the session's previous voucher; zero bytes for the first |
 * | voucher | bytes(64) | optional: the client's Ed25519 signature; absent = router-attested |
 * | clientKey | bytes(32) | with `voucher` only: the client's public key |
 *
 * Never throws: garbage is answered with JG_ERR_WIFI_BODY and a detail.
 */
import { type CborValue, cborTypeName, decodeCborStrict } from "../common/cbor.ts";
import { DEVICE_ID_BYTES, ED25519_PUBLIC_KEY_BYTES, ED25519_SIGNATURE_BYTES } from "../common/envelope.ts";
import { SESSION_ID_BYTES } from "./storage.ts";
import { VOUCHER_HASH_BYTES } from "./voucher.ts";

/** RFC 2866 §5.1 Acct-Status-Type. */
export const UsageStatus = { start: 1, stop: 2, interim: 3 } as const;
export type UsageStatus = (typeof UsageStatus)[keyof typeof UsageStatus];

/** Largest usage body: with a voucher and every counter at 2^32 − 1 it is 303 bytes (measured); 1 KiB bounds refine's work on a bad one. */
export const USAGE_BODY_BYTES_MAX = 1_024;

export interface UsageBody {
  readonly session: Uint8Array;
  readonly client: Uint8Array;
  readonly status: UsageStatus;
  /** Cumulative octets: gigawords × 2^32 + octets. */
  readonly inputOctets: bigint;
  readonly outputOctets: bigint;
  readonly seconds: number;
  readonly cause: number;
  readonly prev: Uint8Array;
  /** null for router-attested usage. */
  readonly voucher: { readonly signature: Uint8Array; readonly clientKey: Uint8Array } | null;
}

export type UsageBodyResult =
  | { readonly ok: true; readonly value: UsageBody }
  | { readonly ok: false; readonly code: "JG_ERR_WIFI_BODY"; readonly detail: string };

const BYTES_FIELDS = {
  session: SESSION_ID_BYTES,
  client: DEVICE_ID_BYTES,
  prev: VOUCHER_HASH_BYTES,
  voucher: ED25519_SIGNATURE_BYTES,
  clientKey: ED25519_PUBLIC_KEY_BYTES,
} as const;
const UINT_FIELDS = ["status", "inOctets", "outOctets", "inGigawords", "outGigawords", "seconds", "cause"] as const;
type BytesField = keyof typeof BYTES_FIELDS;
type UintField = (typeof UINT_FIELDS)[number];
const REQUIRED: readonly string[] = ["session", "client", ...UINT_FIELDS, "prev"];
const U32_LIMIT = 1n << 32n;

function refuse(detail: string): UsageBodyResult {
  return { ok: false, code: "JG_ERR_WIFI_BODY", detail };
}

export function decodeUsageBody(body: Uint8Array): UsageBodyResult {
  if (body.length > USAGE_BODY_BYTES_MAX) return refuse(`body of ${body.length} bytes > USAGE_BODY_BYTES_MAX = ${USAGE_BODY_BYTES_MAX}`);
  const decoded = decodeCborStrict(body);
  if (!decoded.ok) return refuse(decoded.detail);
  const map = decoded.value;
  if (map.type !== "map") return refuse(`the body is ${cborTypeName(map)}, not a map`);
  const bytes: Partial<Record<BytesField, Uint8Array>> = {};
  const uints: Partial<Record<UintField, number>> = {};
  for (const [key, value] of map.entries) {
    if (key.type !== "text") return refuse("a key is not text");
    const name = key.value;
    if (Object.hasOwn(BYTES_FIELDS, name)) {
      const length = BYTES_FIELDS[name as BytesField];
      if (value.type !== "bytes" || value.value.length !== length) return refuse(`${name} must be a byte string of ${length} bytes, got ${describe(value)}`);
      bytes[name as BytesField] = value.value;
    } else if ((UINT_FIELDS as readonly string[]).includes(name)) {
      if (value.type !== "uint") return refuse(`${name} must be an unsigned integer, got ${cborTypeName(value)}`);
      if (value.value >= U32_LIMIT) return refuse(`${name} = ${value.value} is not below 2^32`);
      uints[name as UintField] = Number(value.value);
    } else {
      return refuse(`unknown key ${JSON.stringify(name.slice(0, 32))}`);
    }
  }
  const missing = REQUIRED.filter((k) => !(k in bytes) && !(k in uints));
  if (missing.length > 0) return refuse(`missing ${missing.join(", ")}`);
  const status = uints.status!;
  if (status !== UsageStatus.start && status !== UsageStatus.stop && status !== UsageStatus.interim)
    return refuse(`status ${status} is not 1 (Start), 2 (Stop) or 3 (Interim-Update)`);
  if (status !== UsageStatus.stop && uints.cause !== 0) return refuse(`cause ${uints.cause} on an update that is not a Stop`);
  if ((bytes.voucher === undefined) !== (bytes.clientKey === undefined)) return refuse("voucher and clientKey come together");
  return {
    ok: true,
    value: {
      session: bytes.session!,
      client: bytes.client!,
      status,
      inputOctets: (BigInt(uints.inGigawords!) << 32n) + BigInt(uints.inOctets!),
      outputOctets: (BigInt(uints.outGigawords!) << 32n) + BigInt(uints.outOctets!),
      seconds: uints.seconds!,
      cause: uints.cause!,
      prev: bytes.prev!,
      voucher: bytes.voucher === undefined ? null : { signature: bytes.voucher, clientKey: bytes.clientKey! },
    },
  };
}

function describe(value: CborValue): string {
  return value.type === "bytes" ? `${value.value.length} bytes` : cborTypeName(value);
}
