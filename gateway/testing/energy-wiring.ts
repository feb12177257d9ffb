/** A stack wiring for tests on the energy market alone: a genesis of the energy-trading service running `market`, and its gateway adapter. */
import { ENERGY_SERVICE } from "../genesis.ts";
import { ALWAYS_ACCUMULATE_GAS, CONFIG_KEY, encodeMarketConfig, type MarketConfig } from "../../services/energy-trading/types.ts";
import { energyServiceFromChain } from "../services/energy.ts";
import type { StackWiring } from "../stack.ts";

export function energyOnlyWiring(market: MarketConfig): StackWiring {
  return {
    genesis: (gatewayKey) => [
      {
        id: ENERGY_SERVICE.id,
        name: ENERGY_SERVICE.name,
        moduleUrl: ENERGY_SERVICE.moduleUrl,
        balance: 1_000_000_000n,
        authorizedKeys: [gatewayKey.publicKey],
        alwaysAccumulateGas: ALWAYS_ACCUMULATE_GAS,
        storage: [{ key: CONFIG_KEY, value: encodeMarketConfig(market) }],
      },
    ],
    async services(api) {
      const energy = await energyServiceFromChain(api, ENERGY_SERVICE.id);
      if (energy === null) throw new Error("the node has no energy market");
      return [energy];
    },
    defaultServiceOf: () => ENERGY_SERVICE.name,
  };
}
