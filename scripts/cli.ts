/** The `jamgate` command line: one program, a command group per part of the pipeline. */
import { Command, CommanderError } from "commander";
import { registerNodeCommands } from "../node/cli.ts";
import { JamgateError } from "../node/errors.ts";
import { builtinServices } from "./genesis.ts";

export function program(): Command {
  const cli = new Command("jamgate").description("DePIN/IoT ingestion gateway that settles on an embedded JAM node").version("0.1.0");
  registerNodeCommands(cli, builtinServices);
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
