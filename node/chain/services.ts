/** Loads the native code of genesis services, keyed by code hash. */
import type { ServiceResolver } from "../accumulate/accumulate.ts";
import { toHex } from "../codec/jam.ts";
import type { ServiceModule } from "../service-api/service.ts";
import { type GenesisService, nativeCodeHash } from "./genesis.ts";

export interface LoadedServices {
  readonly resolve: ServiceResolver;
  /** The module URL of a code hash, for refine workers to import. */
  moduleUrl(codeHash: Uint8Array): string | null;
}

export async function loadServices(services: readonly GenesisService[]): Promise<LoadedServices> {
  const modules = new Map<string, { module: ServiceModule; url: string }>();
  for (const service of services) {
    const imported = (await import(service.moduleUrl)) as { default?: ServiceModule };
    const module = imported.default;
    if (module === undefined || typeof module.refine !== "function" || typeof module.accumulate !== "function") {
      throw new Error(`${service.moduleUrl} does not default-export a service (refine and accumulate)`);
    }
    if (module.name !== service.name) throw new Error(`${service.moduleUrl} is service "${module.name}", genesis names it "${service.name}"`);
    modules.set(toHex(nativeCodeHash(service.name)), { module, url: service.moduleUrl });
  }
  return {
    resolve: (codeHash) => modules.get(toHex(codeHash))?.module ?? null,
    moduleUrl: (codeHash) => modules.get(toHex(codeHash))?.url ?? null,
  };
}
