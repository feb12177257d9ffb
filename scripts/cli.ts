/** The `jamgate` command line: one program, a command group per part of the pipeline. */
import { Command, CommanderError } from "commander";
import { registerDeviceCommands } from "../devices/cli.ts";
import { registerNodeCommands } from "../node/cli.ts";
import { JamgateError } from "../node/errors.ts";
import { registerStartCommand } from "../gateway/cli.ts";
import { telemetryService } from "../gateway/services/telemetry.ts";
import { builtinServices, TELEMETRY_SERVICE } from "./genesis.ts";

export function program(): Command {
  const cli = new Command("jamgate").description("DePIN/IoT ingestion gateway that settles on an embedded JAM node").version("0.1.0");
  registerStartCommand(cli, {
    genesis: (gatewayKey) => builtinServices(gatewayKey.publicKey),
    services: () => {
      const telemetry = telemetryService(TELEMETRY_SERVICE.id);
      return { all: [telemetry], ofKind: () => telemetry };
    },
  });
  registerNodeCommands(cli, () => builtinServices());
  registerDeviceCommands(cli);
  return cli;
}

export async function main(argv: string[]): Promise<void> {
  try {
    await program().exitOverride().parseAsync(argv);
  } catch (e) {
    if (e instanceof CommanderError) process.exit(e.exitCode);
    if (e instanceof JamgateError) {
      console.error(`jamgate: ${e.message}`);
      process.exit(1);
    }
    throw e;
  }
}
