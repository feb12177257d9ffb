/**
 * blake2b-256, the Gray Paper's H (GP 3.8.1), through typeberry's WASM hasher.
 * node:crypto has no blake2b-256 (only blake2b512, whose truncation differs: the digest
 * length is a parameter of blake2b), so this is the one hash used across the node.
 */
import { Blake2b } from "@typeberry/lib/hash";

/** typeberry's hasher, created once per thread (WASM instantiation is async). */
export const blake2b: Blake2b = await Blake2b.createHasher();

/** H(data): 32-byte blake2b digest. */
export function hash(data: Uint8Array): Uint8Array {
  return blake2b.hashBytes(data).raw;
}

/** H(a ⌢ b ⌢ …) without copying the parts together first. */
export function hashParts(...parts: Uint8Array[]): Uint8Array {
  return blake2b.hashBlobs(parts).raw;
}
