/**
 * Gas for native services. A PVM service is metered per instruction (GP Appendix A); native
 * TypeScript cannot be, so the host charges on this schedule for what a service asks of it,
 * and a wall-clock watchdog stops a refine that burns CPU without calling the host, once it has
 * run as long as its declared gas allows at the slowest rate supported (guarantor/refine-pool.ts).
 * The figures are set near nanoseconds of host work on this machine (a host call ~1 µs, blake2b
 * ~1 ns per byte, an Ed25519 verification ~110 µs, discounted to 50,000 so that G_R = 1e9 (tiny)
 * pays for a full W_B package of 1 KB signed envelopes: ~13,400 verifications and 13.8 MB hashed
 * ≈ 0.7e9 gas).
 */
export const gasSchedule = {
  /** Every host call, before its per-byte part. */
  hostCallBase: 1_000n,
  /** Per byte a refine item is handed as its payload. */
  perPayloadByte: 1n,
  /** Per byte read from storage (key and value). */
  perByteRead: 1n,
  /** Per byte written to storage (key and value). */
  perByteWritten: 2n,
  /** Per byte hashed with blake2b. */
  perByteHashed: 1n,
  /** Per Ed25519 signature verified, plus perByteHashed for the message. */
  perSignatureVerified: 50_000n,
  /** Per byte logged. */
  perByteLogged: 1n,
  /** Per transfer, plus its memo bytes. */
  transferBase: 100n,
} as const;

/** Thrown by a meter when a charge would take it below zero; the host turns it into a coded failure. */
export class OutOfGas extends Error {
  constructor(readonly limit: bigint) {
    super(`out of gas (limit ${limit})`);
    this.name = "OutOfGas";
  }
}

/** A countdown of gas: charges are checked before the work they pay for is done. */
export class GasMeter {
  private usedGas = 0n;
  constructor(readonly limit: bigint) {}

  charge(amount: bigint): void {
    if (amount < 0n) throw new Error(`negative gas charge ${amount}`);
    if (this.usedGas + amount > this.limit) {
      this.usedGas = this.limit;
      throw new OutOfGas(this.limit);
    }
    this.usedGas += amount;
  }

  get used(): bigint {
    return this.usedGas;
  }

  get remaining(): bigint {
    return this.limit - this.usedGas;
  }
}
