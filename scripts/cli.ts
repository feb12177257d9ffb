/** The `jamgate` command line: one program, a command group per part of the pipeline. */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { type Command, CommanderError } from "commander";
import { registerDeviceCommands } from "../devices/cli.ts";
import type { GenesisService } from "../node/chain/genesis.ts";
import { DEFAULT_SLOT_MS, EXIT_BAD_COMMAND_LINE, isBadCommandLine, registerNodeCommands } from "../node/cli.ts";
import { registerSimCommands } from "../simulators/energy/cli.ts";
import { JamgateError } from "../devices/protocol/errors.ts";
import { DEFAULT_GATEWAY_DATA_DIR, registerStartCommand, type StartWiring } from "../gateway/cli.ts";
import { ConfiguredCommand } from "../gateway/config.ts";
import { registerLedgerCommand } from "../gateway/ledger/cli.ts";
import { registerVerifyCommand } from "../gateway/ledger/verify-cli.ts";
import { registerWifiCommands } from "../gateway/wifi/cli.ts";
import { builtinServices, ENERGY_SERVICE, marketOfDataDir, TELEMETRY_SERVICE } from "../gateway/genesis.ts";

/** How `jamgate start` wires its stack: the built-in genesis, with the data dir's market. */
export const builtinWiring: StartWiring = {
  genesis: (gatewayKey, { dataDir, slotMs }) => builtinServices([gatewayKey.publicKey], marketOfDataDir(dataDir, slotMs)),
  async services(api) {
    // Loaded when a stack starts, not for every command.
    const [{ energyServiceFromChain }, { telemetryService }, { wifiServiceFromChain }] = await Promise.all([
      import("../gateway/services/energy.ts"),
      import("../gateway/services/telemetry.ts"),
      import("../gateway/services/wifi.ts"),
    ]);
    const [energy, wifi] = await Promise.all([energyServiceFromChain(api, ENERGY_SERVICE.id), wifiServiceFromChain(api)]);
    return [telemetryService(TELEMETRY_SERVICE.id), ...(energy === null ? [] : [energy]), ...(wifi === null ? [] : [wifi])];
  },
  // Agents trade on the energy market; every other kind is generic telemetry unless registered with `service` (the Wi-Fi routes name wifi-billing).
  defaultServiceOf: (kind) => (kind === "agent" ? ENERGY_SERVICE.name : TELEMETRY_SERVICE.name),
  withMarketMsPerSlot: (marketMsPerSlot) => ({
    ...builtinWiring,
    genesis(gatewayKey, { dataDir }) {
      // marketOfDataDir makes a new data dir's market at the given market time per slot; an existing one keeps its own.
      const market = marketOfDataDir(dataDir, marketMsPerSlot);
      if (market.marketMsPerSlot !== marketMsPerSlot) {
        throw new JamgateError(
          "JG_ERR_CLI_ARGUMENT",
          `--market-minutes-per-slot ${marketMsPerSlot / 60_000}: ${join(dataDir, "market.json")} runs ${market.marketMsPerSlot / 60_000} market minutes per slot, and a chain keeps the market of its first start (use a new --data-dir)`,
        );
      }
      return builtinServices([gatewayKey.publicKey], market);
    },
  }),
};

/**
 * The node dir and genesis of a `jamgate start` data dir (it has the gateway key, the market and
 * node/, where gateway/stack.ts keeps the node), for `jamgate node replay`; null for another dir.
 * Reads only: builtinWiring.genesis is called once the files it would otherwise make exist.
 */
export async function chainOfStartDataDir(dataDir: string): Promise<{ nodeDir: string; services: GenesisService[] } | null> {
  const [key, market, nodeDir] = [join(dataDir, "gateway-key"), join(dataDir, "market.json"), join(dataDir, "node")];
  if (!existsSync(key) || !existsSync(nodeDir)) return null;
  if (!existsSync(market))
    throw new JamgateError("JG_ERR_GENESIS", `${dataDir} is a "jamgate start" data dir without market.json: the genesis of its chain cannot be made again`);
  const { gatewayKeyOf } = await import("../gateway/secrets.ts");
  return { nodeDir, services: builtinWiring.genesis(gatewayKeyOf(dataDir), { dataDir, slotMs: DEFAULT_SLOT_MS }) };
}

export function program(): Command {
  // Every command's flags also come from JAMGATE_<FLAG> and <data-dir>/config.json (gateway/config.ts, docs/configuration.md).
  const cli = new ConfiguredCommand("jamgate").description("DePIN/IoT ingestion gateway that settles on an embedded JAM node").version("0.1.0");
  registerStartCommand(cli, builtinWiring);
  registerNodeCommands(cli, (authorizedKeys) => builtinServices(authorizedKeys), { defaultDataDir: DEFAULT_GATEWAY_DATA_DIR, chainOf: chainOfStartDataDir });
  registerDeviceCommands(cli);
  registerLedgerCommand(cli);
  registerVerifyCommand(cli);
  registerSimCommands(cli);
  registerWifiCommands(cli);
  // Every command throws its usage errors to `main` instead of exiting by itself (commander copies
  // exitOverride only to commands made after it is set), so they all exit with the same codes.
  const throwToMain = (command: Command): void => {
    command.exitOverride();
    for (const sub of command.commands) throwToMain(sub);
  };
  throwToMain(cli);
  return cli;
}

/** Runs the command line `argv` on `cli` (scripts/jamgate.mjs gives the compiled program with its hand-over hook). */
export async function main(argv: string[], cli: Command = program()): Promise<void> {
  try {
    await cli.parseAsync(argv);
  } catch (e) {
    if (e instanceof CommanderError) process.exit(isBadCommandLine(e) ? EXIT_BAD_COMMAND_LINE : e.exitCode);
    if (e instanceof JamgateError) {
      console.error(`jamgate: ${e.message}`);
      process.exit(isBadCommandLine(e) ? EXIT_BAD_COMMAND_LINE : 1);
    }
    throw e;
  }
}
