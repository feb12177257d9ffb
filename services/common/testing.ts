/**
 * Test support (not loaded by the node): an in-memory stand-in for the node's hosts, so unit and
 * property tests run refine and accumulate without a chain. Gas is charged on the node's
 * schedule as node/accumulate/accumulate.ts and node/refine/refine.ts do; a call that throws
 * leaves storage as it was, as the node drops a failed accumulation's writes. Crypto is injected
 * by the test, since a service may import nothing but node/service-api.
 */
import { type AccumulateHost, type AccumulateItem, GasMeter, gasSchedule, type RefineContext } from "../../node/service-api/index.ts";
import { toHex } from "./bytes.ts";

export type Hash = (data: Uint8Array) => Uint8Array;
export type VerifyEd25519 = (publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array) => boolean;

export function memoryRefineContext(
  crypto: { hash: Hash; verifyEd25519: VerifyEd25519 },
  gasLimit = 1_000_000_000n,
  packageHash = new Uint8Array(32),
): RefineContext {
  const gas = new GasMeter(gasLimit);
  return {
    serviceId: 1,
    coreIndex: 0,
    packageHash,
    itemIndex: 0,
    gas,
    hash(data) {
      gas.charge(gasSchedule.hostCallBase + gasSchedule.perByteHashed * BigInt(data.length));
      return crypto.hash(data);
    },
    verifyEd25519(publicKey, message, signature) {
      gas.charge(gasSchedule.hostCallBase + gasSchedule.perSignatureVerified + gasSchedule.perByteHashed * BigInt(message.length));
      return crypto.verifyEd25519(publicKey, message, signature);
    },
  };
}

/** A service's storage in memory, keyed by the hex of the storage key. */
export class MemoryStorage {
  readonly values = new Map<string, Uint8Array>();

  get(key: Uint8Array): Uint8Array | null {
    return this.values.get(toHex(key)) ?? null;
  }

  get size(): number {
    return this.values.size;
  }

  /** Runs one accumulate call at `slot`; commits its writes only if it returns. */
  accumulate(
    accumulate: (items: readonly AccumulateItem[], host: AccumulateHost) => void,
    items: readonly AccumulateItem[],
    options: { slot: number; hash: Hash; gasLimit?: bigint },
  ): { gasUsed: bigint; logs: string[] } {
    const gas = new GasMeter(options.gasLimit ?? items.reduce((sum, i) => sum + i.gasLimit, 0n));
    const writes = new Map<string, Uint8Array | null>();
    const logs: string[] = [];
    const host: AccumulateHost = {
      serviceId: 1,
      slot: options.slot,
      gas,
      read: (key) => {
        gas.charge(gasSchedule.hostCallBase + gasSchedule.perByteRead * BigInt(key.length));
        const hex = toHex(key);
        const value = writes.has(hex) ? writes.get(hex)! : (this.values.get(hex) ?? null);
        if (value !== null) gas.charge(gasSchedule.perByteRead * BigInt(value.length));
        return value === null ? null : value.slice();
      },
      write: (key, value) => {
        gas.charge(gasSchedule.hostCallBase + gasSchedule.perByteWritten * BigInt(key.length + (value?.length ?? 0)));
        writes.set(toHex(key), value === null ? null : value.slice());
      },
      info: () => {
        gas.charge(gasSchedule.hostCallBase);
        return null;
      },
      transfer: () => {
        gas.charge(gasSchedule.hostCallBase + gasSchedule.transferBase);
        return "unknown-destination";
      },
      log: (message) => {
        gas.charge(gasSchedule.hostCallBase + gasSchedule.perByteLogged * BigInt(message.length));
        logs.push(message);
      },
      hash: (data) => {
        gas.charge(gasSchedule.hostCallBase + gasSchedule.perByteHashed * BigInt(data.length));
        return options.hash(data);
      },
    };
    accumulate(items, host);
    for (const [hex, value] of writes) {
      if (value === null) this.values.delete(hex);
      else this.values.set(hex, value);
    }
    return { gasUsed: gas.used, logs };
  }
}

/** A work result as the node hands it to accumulate. */
export function resultItem(packageHash: Uint8Array, output: Uint8Array, gasLimit = 10_000_000n): AccumulateItem {
  return { kind: "result", packageHash, payloadHash: new Uint8Array(32), output, gasLimit, coreIndex: 0 };
}
