/**
 * The checks of NodeApi arguments that the JIP-2 wire makes by its types (rpc/wire.ts): a Hash is
 * 32 bytes, an id, a core or a chunk index is a u32. The embedded node runs them too, so a call
 * that the RPC server would refuse with JG_ERR_RPC_PARAMS is refused with it in-process as well.
 */
import { JamgateError } from "../devices/protocol/errors.ts";

export const HASH_BYTES = 32;
export const U32_MAX = 0xffff_ffff;

/** `value` as a u32; throws JG_ERR_RPC_PARAMS naming `name` otherwise. */
export function checkU32(value: unknown, name: string): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0 || value > U32_MAX) {
    throw new JamgateError("JG_ERR_RPC_PARAMS", `${name} must be an integer from 0 to ${U32_MAX}`);
  }
  return value;
}

/** `bytes` as a hash; throws JG_ERR_RPC_PARAMS naming `name` unless it is HASH_BYTES long. */
export function checkHash(bytes: Uint8Array, name: string): Uint8Array {
  if (!(bytes instanceof Uint8Array) || bytes.length !== HASH_BYTES) throw new JamgateError("JG_ERR_RPC_PARAMS", `${name} must be a Hash: ${HASH_BYTES} bytes`);
  return bytes;
}
