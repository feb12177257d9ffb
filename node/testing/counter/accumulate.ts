/** Accumulate of the counter service: adds increments, makes and receives transfers. */
import type { AccumulateHost, AccumulateItem } from "../../service-api/index.ts";
import { COUNTER_KEY, encodeU64, LAST_PACKAGE_KEY, NOTE_KEY, Op, readU64, RECEIVED_KEY } from "./types.ts";

export function accumulate(items: readonly AccumulateItem[], host: AccumulateHost): void {
  for (const item of items) {
    if (item.kind === "transfer") {
      host.write(RECEIVED_KEY, encodeU64(readU64(host.read(RECEIVED_KEY)) + item.amount));
      continue;
    }
    const out = item.output;
    const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
    switch (out[0]) {
      case Op.increment:
        host.write(COUNTER_KEY, encodeU64(readU64(host.read(COUNTER_KEY)) + view.getBigUint64(1, true)));
        break;
      case Op.transfer: {
        const outcome = host.transfer(view.getUint32(1, true), view.getBigUint64(5, true), view.getBigUint64(13, true), new Uint8Array(0));
        host.log(`transfer: ${outcome}`);
        break;
      }
      case Op.note:
        host.write(NOTE_KEY, out.subarray(1));
        break;
      case Op.accumulatePanic:
        host.write(COUNTER_KEY, encodeU64(999n)); // dropped: the call fails below
        throw new Error("asked to panic in accumulate");
    }
    host.write(LAST_PACKAGE_KEY, item.packageHash);
  }
}
