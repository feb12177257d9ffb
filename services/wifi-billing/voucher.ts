/**
 * The voucher's signed layout, as devices/wifi.ts `voucherSigningBytes` writes it, re-implemented
 * here because a service imports only node/service-api and services/common (wifi.test.ts checks
 * both sides agree byte for byte):
 *
 *   "jamgate/voucher/v1" ⌢ 0x00 ⌢ router id 16 ⌢ session 16 ⌢ u64 input octets ⌢ u64 output octets
 *   ⌢ u32 seconds ⌢ prev 32   (integers little-endian)
 *
 * The voucher hash, H(signing bytes) with H = blake2b-256 (the host's), chains a session's
 * updates: each update's `prev` is the hash of the one before, zero bytes for the first.
 */
import { ascii, Writer } from "../common/bytes.ts";
import { DEVICE_ID_BYTES } from "../common/envelope.ts";

export const VOUCHER_DOMAIN = ascii("jamgate/voucher/v1\u0000");
export const VOUCHER_HASH_BYTES = 32;
export const VOUCHER_SIGNING_BYTES = VOUCHER_DOMAIN.length + DEVICE_ID_BYTES + 16 + 8 + 8 + 4 + VOUCHER_HASH_BYTES;
/** The `prev` of a session's first update. */
export const FIRST_PREV = new Uint8Array(VOUCHER_HASH_BYTES);

export interface VoucherFields {
  readonly router: Uint8Array;
  readonly session: Uint8Array;
  readonly inputOctets: bigint;
  readonly outputOctets: bigint;
  readonly seconds: number;
  readonly prev: Uint8Array;
}

export function voucherSigningBytes(f: VoucherFields): Uint8Array {
  return new Writer(VOUCHER_SIGNING_BYTES)
    .bytes(VOUCHER_DOMAIN)
    .bytes(f.router)
    .bytes(f.session)
    .u64(f.inputOctets)
    .u64(f.outputOctets)
    .u32(f.seconds)
    .bytes(f.prev)
    .finish();
}
