/**
 * Lowercase hex of bytes, without Buffer (this folder runs in browsers too): the digits' ASCII
 * codes are written into a byte array and decoded once. Measured on Node 20 against
 * `Buffer.toString("hex")`: as fast at 32 bytes (0.3 µs, a device id or hash; accumulate turns
 * ids into storage keys thousands of times a block), about 3× slower at 1 MiB (7 ms against
 * 2.5 ms), where concatenating a string per byte took 99 ms.
 */
const DIGIT_CODES = new Uint8Array(512);
for (let b = 0; b < 256; b++) {
  const pair = b.toString(16).padStart(2, "0");
  DIGIT_CODES[2 * b] = pair.charCodeAt(0);
  DIGIT_CODES[2 * b + 1] = pair.charCodeAt(1);
}
const ascii = new TextDecoder();

export function toHex(bytes: Uint8Array): string {
  const out = new Uint8Array(2 * bytes.length);
  for (let i = 0; i < bytes.length; i++) {
    const at = 2 * bytes[i]!;
    out[2 * i] = DIGIT_CODES[at]!;
    out[2 * i + 1] = DIGIT_CODES[at + 1]!;
  }
  return ascii.decode(out);
}
