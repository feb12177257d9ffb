/**
 * Where an energy simulation runs (simulators/common/target.ts): a stack of its own, whose
 * genesis runs the scenario's market, or a running jamgate, whose market the scenario is placed
 * on (clock.ts). Also the one place the simulator takes the built-in genesis from.
 */
import { join } from "node:path";
import { energyServiceFromChain, marketConfigOnChain } from "../../gateway/services/energy.ts";
import type { StackWiring } from "../../gateway/stack.ts";
import { JamgateError } from "../../devices/protocol/errors.ts";
import { builtinServices, ENERGY_SERVICE } from "../../gateway/genesis.ts";
import type { MarketConfig } from "../../services/energy-trading/types.ts";
import type { RunDir } from "../common/run-dir.ts";
import { connectRemote, type RemoteJamgate, type SimTarget, startOwnStack } from "../common/target.ts";
import { marketOf, marketStartSlot, placeOnMarket, type SimClock, simClock } from "./clock.ts";
import type { Scenario } from "./scenario.ts";

/** A jamgate with an energy market. */
export interface EnergyTarget extends SimTarget {
  /** The energy-trading service on its chain: devices register with its name, its state is read by its id. */
  readonly service: { readonly id: number; readonly name: string };
  /** A device's registration as the gateway tells it (GET /v1/devices/:id); null when it knows none. */
  view(deviceId: string): Promise<{ readonly status: string; readonly code?: string; readonly detail?: string } | null>;
}

/** A target and the run's place on its market: the market, the scenario as it runs there, its clock. */
export interface PlacedRun {
  readonly target: EnergyTarget;
  readonly market: MarketConfig;
  readonly scenario: Scenario;
  readonly clock: SimClock;
}

export interface TargetOptions {
  readonly scenario: Scenario;
  readonly slotMs: number;
  readonly minutesPerSlot: number;
  readonly remote?: RemoteJamgate;
}

/** Starts the run's own stack in `dir`, or connects to the running jamgate; on the latter, says on stderr where the scenario runs. */
export async function openEnergyTarget(options: TargetOptions, dir: RunDir): Promise<PlacedRun> {
  if (options.remote === undefined) {
    const market = marketOf(options.scenario, options.minutesPerSlot, marketStartSlot(options.slotMs));
    const target = await ownEnergyStack(market, dir, options.slotMs);
    return { target, market, scenario: options.scenario, clock: simClock(market, options.scenario, 0) };
  }
  const target = await remoteEnergyTarget(options.remote);
  try {
    const market = await marketConfigOnChain(target.api, target.service.id);
    if (market === null)
      throw new JamgateError("JG_ERR_CLI_ARGUMENT", `the node at ${options.remote.nodeUrl} runs no energy market (service ${target.service.id} has no config)`);
    const { scenario, firstInterval } = placeOnMarket(options.scenario, market, (await target.api.bestBlock()).slot);
    process.stderr.write(
      `remote market: ${market.mode}, ${scenario.marketIntervalMinutes}-minute intervals, ${market.marketMsPerSlot / 60_000} market minutes per slot; the scenario runs from ${scenario.start}\n`,
    );
    return { target, market, scenario, clock: simClock(market, scenario, firstInterval) };
  } catch (e) {
    await target.close();
    throw e;
  }
}

/** The energy service of the built-in genesis, on the run's own stack and on `jamgate start`'s. */
const SERVICE = { id: ENERGY_SERVICE.id, name: ENERGY_SERVICE.name };

/** A stack of the run's own in `dir/stack`, whose genesis runs `market` and whose gateway settles on the energy service alone. */
async function ownEnergyStack(market: MarketConfig, dir: RunDir, slotMs: number): Promise<EnergyTarget> {
  const wiring: StackWiring = {
    genesis: (gatewayKey) => builtinServices([gatewayKey.publicKey], market),
    async services(api) {
      const energy = await energyServiceFromChain(api, SERVICE.id);
      if (energy === null) throw new Error("the node has no energy market");
      return [energy];
    },
    defaultServiceOf: () => SERVICE.name,
  };
  const own = await startOwnStack(join(dir.path, "stack"), slotMs, dir.logger, wiring);
  return { ...own, service: SERVICE, view: (id) => own.stack.registrations.view(id) };
}

/** A running `jamgate start`: its genesis is the built-in one, so its energy service is SERVICE. */
async function remoteEnergyTarget(remote: RemoteJamgate): Promise<EnergyTarget> {
  const target = await connectRemote(remote);
  return {
    ...target,
    service: SERVICE,
    async view(deviceId) {
      const response = await fetch(`${target.httpUrl}/v1/devices/${deviceId}`, { headers: { authorization: `Bearer ${target.token}` } });
      if (response.status === 404 || response.status === 403) return null;
      return (await response.json()) as { status: string; code?: string; detail?: string };
    },
  };
}
