/**
 * Refine of one package on one core (GP 14.3, Ψ_R per work item): each item's payload goes to
 * its service's `refine`, metered by a gas meter charged by the host. Runs inside a worker
 * thread (worker.ts) but is a plain function, so tests can call it directly.
 */
import { verifyEd25519 } from "../crypto/ed25519.ts";
import { hash } from "../crypto/hash.ts";
import { GasMeter, gasSchedule, OutOfGas } from "../service-api/gas.ts";
import type { RefineContext, ServiceModule } from "../service-api/service.ts";
import type { RefineItemOutcome, RefineTask, RefineTaskResult } from "./task.ts";

export type ServiceLoader = (moduleUrl: string) => Promise<ServiceModule>;

export async function refinePackage(task: RefineTask, load: ServiceLoader): Promise<RefineTaskResult> {
  const items: RefineItemOutcome[] = [];
  for (const [i, item] of task.items.entries()) {
    const itemIndex = (task.itemOffset ?? 0) + i;
    const service = await load(item.moduleUrl);
    const gas = new GasMeter(item.gasLimit);
    const context: RefineContext = {
      serviceId: item.serviceId,
      coreIndex: task.coreIndex,
      packageHash: task.packageHash,
      itemIndex,
      gas,
      hash(data) {
        gas.charge(gasSchedule.hostCallBase + gasSchedule.perByteHashed * BigInt(data.length));
        return hash(data);
      },
      verifyEd25519(publicKey, message, signature) {
        gas.charge(gasSchedule.hostCallBase + gasSchedule.perSignatureVerified + gasSchedule.perByteHashed * BigInt(message.length));
        return verifyEd25519(publicKey, message, signature);
      },
    };
    try {
      gas.charge(gasSchedule.hostCallBase + gasSchedule.perPayloadByte * BigInt(item.payload.length));
      const output = service.refine(item.payload, context);
      if (!(output instanceof Uint8Array)) throw new Error(`refine of service ${item.serviceId} returned ${typeof output}, not bytes`);
      items.push({ ok: true, output, payloadHash: hash(item.payload), gasUsed: gas.used });
    } catch (e) {
      if (e instanceof OutOfGas) {
        items.push({
          ok: false,
          code: "JG_ERR_REFINE_OUT_OF_GAS",
          detail: `item ${itemIndex} (service ${item.serviceId}): out of gas at ${item.gasLimit}`,
          gasUsed: gas.used,
        });
      } else {
        items.push({
          ok: false,
          code: "JG_ERR_REFINE_PANIC",
          detail: `item ${itemIndex} (service ${item.serviceId}): ${e instanceof Error ? e.message : String(e)}`,
          gasUsed: gas.used,
        });
      }
      break; // the package fails as a whole; later items need not run
    }
  }
  return { items };
}

/** Loads a service module once per thread. */
export function cachedLoader(): ServiceLoader {
  const modules = new Map<string, Promise<ServiceModule>>();
  return (moduleUrl) => {
    let module = modules.get(moduleUrl);
    if (module === undefined) {
      module = import(moduleUrl).then((m: { default?: ServiceModule }) => {
        if (m.default === undefined || typeof m.default.refine !== "function") throw new Error(`${moduleUrl} does not default-export a service`);
        return m.default;
      });
      modules.set(moduleUrl, module);
    }
    return module;
  };
}
