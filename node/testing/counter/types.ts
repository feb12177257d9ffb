/**
 * The counter service's wire forms. A work item's payload is one command; refine turns it into
 * an effect (8-byte little-endian amount plus what accumulate needs); accumulate applies effects.
 *
 * | op | payload after the op byte | refine output |
 * |---|---|---|
 * | 0 increment | amount u64 | `0, amount` |
 * | 1 signed increment | public key 32, signature 64 (over "counter:" ⌢ amount), amount u64 | `0, amount`, if the signature verifies |
 * | 2 transfer | destination u32, amount u64, gas u64 | `2, destination, amount, gas` |
 * | 3 panic | – | refine throws |
 * | 4 burn gas | – | refine hashes until its gas runs out |
 * | 5 spin | – | refine loops without calling the host (the watchdog's case) |
 * | 6 accumulate panic | – | `6`; accumulate throws |
 * | 7 note | any bytes | `7, H(bytes)`; accumulate stores the hash under `note` |
 */
export const Op = { increment: 0, signedIncrement: 1, transfer: 2, panic: 3, burnGas: 4, spin: 5, accumulatePanic: 6, note: 7 } as const;

/** Storage keys of the service. */
export const COUNTER_KEY = new TextEncoder().encode("counter");
export const RECEIVED_KEY = new TextEncoder().encode("received");
export const LAST_PACKAGE_KEY = new TextEncoder().encode("last-package");
export const NOTE_KEY = new TextEncoder().encode("note");

export function signedIncrementMessage(amount: bigint): Uint8Array {
  const message = new Uint8Array(8 + 8);
  message.set(new TextEncoder().encode("counter:"), 0);
  new DataView(message.buffer).setBigUint64(8, amount, true);
  return message;
}

function u64(amount: bigint): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, amount, true);
  return out;
}

export const counterPayload = {
  increment: (amount: bigint) => Uint8Array.from([Op.increment, ...u64(amount)]),
  signedIncrement: (publicKey: Uint8Array, signature: Uint8Array, amount: bigint) =>
    Uint8Array.from([Op.signedIncrement, ...publicKey, ...signature, ...u64(amount)]),
  transfer: (destination: number, amount: bigint, gas: bigint) => {
    const out = new Uint8Array(1 + 4 + 8 + 8);
    const view = new DataView(out.buffer);
    out[0] = Op.transfer;
    view.setUint32(1, destination, true);
    view.setBigUint64(5, amount, true);
    view.setBigUint64(13, gas, true);
    return out;
  },
  panic: () => Uint8Array.of(Op.panic),
  burnGas: () => Uint8Array.of(Op.burnGas),
  spin: () => Uint8Array.of(Op.spin),
  accumulatePanic: () => Uint8Array.of(Op.accumulatePanic),
  /** A payload of any size: what a device batch looks like to DA. */
  note: (data: Uint8Array) => Uint8Array.from([Op.note, ...data]),
};

export function readU64(bytes: Uint8Array | null): bigint {
  return bytes === null ? 0n : new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getBigUint64(0, true);
}

export { u64 as encodeU64 };
