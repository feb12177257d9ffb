/** Refine of the counter service: checks and condenses one command (deterministic, no I/O). */
import type { RefineContext } from "../../service-api/index.ts";
import { encodeU64, Op, signedIncrementMessage } from "./types.ts";

export function refine(payload: Uint8Array, context: RefineContext): Uint8Array {
  const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  switch (payload[0]) {
    case Op.increment:
      if (payload.length !== 9) throw new Error("increment takes 8 bytes");
      return Uint8Array.from([Op.increment, ...payload.subarray(1)]);
    case Op.signedIncrement: {
      if (payload.length !== 1 + 32 + 64 + 8) throw new Error("signed increment takes 104 bytes");
      const amount = view.getBigUint64(97, true);
      if (!context.verifyEd25519(payload.subarray(1, 33), signedIncrementMessage(amount), payload.subarray(33, 97))) throw new Error("bad signature");
      return Uint8Array.from([Op.increment, ...encodeU64(amount)]);
    }
    case Op.transfer:
      if (payload.length !== 21) throw new Error("transfer takes 20 bytes");
      return payload.slice();
    case Op.panic:
      throw new Error("asked to panic");
    case Op.burnGas:
      for (;;) context.hash(payload);
    case Op.spin:
      for (;;);
    case Op.accumulatePanic:
      return Uint8Array.of(Op.accumulatePanic);
    case Op.note:
      return Uint8Array.from([Op.note, ...context.hash(payload.subarray(1))]);
    default:
      throw new Error(`unknown op ${payload[0]}`);
  }
}
