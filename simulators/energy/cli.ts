/**
 * `jamgate sim energy`: the energy-market simulation from the command line (runner.ts), on a
 * stack of its own, or on a running jamgate: named by `--data-dir` of a `jamgate start` (its
 * endpoints.json), or by `--mqtt` and `--node`.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { type Command, Option } from "commander";
import { integerIn } from "../../devices/protocol/cli-args.ts";
import { JamgateError } from "../../devices/protocol/errors.ts";
import { registerWifiSimCommand } from "../wifi/cli.ts";
// ./scenario.ts (ajv) and the runner are imported by the action, not here: every `jamgate` command loads this module for its flags.
import type { MarketMode, Scenario } from "./scenario.ts";

interface SimEnergyOptions {
  scenario?: string;
  households: number;
  hours: number;
  seed: number;
  market: MarketMode;
  out: string;
  json?: boolean;
  slotMs: number;
  minutesPerSlot: number;
  dataDir?: string;
  progress: boolean;
  mqtt?: string;
  node?: string;
  gateway: string;
  token?: string;
  gatewayDataDir: string;
}

/**
 * Whether `dir` belongs to a `jamgate start` (its endpoints file, or the operator token it makes
 * at its first start) rather than to a simulation, whose own stack lives in `dir/stack`.
 */
function isGatewayDataDir(dir: string): boolean {
  return existsSync(join(dir, "endpoints.json")) || existsSync(join(dir, "operator-token"));
}

export function registerSimCommands(program: Command): void {
  const sim = program.command("sim").description("simulations that run through the whole stack");
  sim
    .command("energy")
    .description("run an energy market: households with PV and batteries as MQTT devices, a double auction per interval settled on the embedded JAM node")
    .option("--scenario <file>", "scenario JSON (docs in simulators/energy/README.md); otherwise one is generated from the flags below")
    .option("--households <n>", "households in the generated scenario", integerIn(1, 10_000), 50)
    .option("--hours <n>", "simulated hours of the generated scenario", integerIn(1, 24 * 31), 24)
    .option("--seed <n>", "seed of the generated scenario", integerIn(0, 2 ** 32 - 1), 1)
    .addOption(
      new Option("--market <mode>", "market mode of the generated scenario").choices(["pay-as-clear", "pay-as-bid", "one-sided"]).default("pay-as-clear"),
    )
    .option("--out <dir>", "where the report goes", "sim-report")
    .option("--json", "print exactly one JSON object (KPIs, blocks, ledger entries) on stdout")
    .option("--slot-ms <ms>", "slot period of the embedded node", integerIn(100, 60_000), 1000)
    .option("--minutes-per-slot <n>", "simulated minutes per slot (the accelerated clock)", integerIn(1, 60), 5)
    .option(
      "--data-dir <dir>",
      "a running `jamgate start`'s data dir: simulate on it (its endpoints.json and operator-token); any other dir keeps the simulation's own node, gateway and devices (default: a temp dir, removed after)",
    )
    .option("--no-progress", "no progress bar on stderr")
    .option("--mqtt <url>", "use a running jamgate: its MQTT broker (with --node)")
    .option("--node <url>", "use a running jamgate: its node's JIP-2 WebSocket, e.g. ws://127.0.0.1:19800 (with --mqtt)")
    .option("--gateway <url>", "the running jamgate's HTTP API (with --node)", "http://127.0.0.1:8080")
    .option("--token <token>", "its operator token (default: read from --gateway-data-dir)")
    .option("--gateway-data-dir <dir>", "the running jamgate's data dir, holding operator-token", ".jamgate")
    .action(async (options: SimEnergyOptions) => {
      const { defaultScenario, parseScenario } = await import("./scenario.ts");
      let scenario: Scenario;
      if (options.scenario !== undefined) {
        let json: unknown;
        try {
          json = JSON.parse(readFileSync(options.scenario, "utf8"));
        } catch (e) {
          throw new JamgateError("JG_ERR_SCENARIO_INVALID", `${options.scenario}: ${(e as Error).message}`);
        }
        const parsed = parseScenario(json);
        if (!parsed.ok) throw new JamgateError("JG_ERR_SCENARIO_INVALID", `${options.scenario}:\n  ${parsed.errors.join("\n  ")}`);
        scenario = parsed.scenario;
      } else {
        let generated: Scenario;
        try {
          generated = defaultScenario({ households: options.households, hours: options.hours, seed: options.seed, market: options.market });
        } catch (e) {
          throw new JamgateError("JG_ERR_CLI_ARGUMENT", (e as Error).message);
        }
        // The same checks as a scenario file: e.g. households × intervals within HOUSEHOLD_INTERVALS_MAX.
        const checked = parseScenario(JSON.parse(JSON.stringify(generated)));
        if (!checked.ok)
          throw new JamgateError("JG_ERR_CLI_ARGUMENT", `--households ${options.households} --hours ${options.hours}:\n  ${checked.errors.join("\n  ")}`);
        scenario = checked.scenario;
      }
      if ((options.mqtt === undefined) !== (options.node === undefined))
        throw new JamgateError("JG_ERR_CLI_ARGUMENT", "give both --mqtt and --node to use a running jamgate, or neither");
      let remote: { mqttUrl: string; nodeUrl: string; gatewayUrl: string; token: string } | undefined;
      // Where the simulation keeps its own files; a gateway's data dir is that gateway's alone.
      let ownDataDir = options.dataDir;
      if (options.dataDir !== undefined && isGatewayDataDir(options.dataDir)) {
        if (options.mqtt !== undefined)
          throw new JamgateError(
            "JG_ERR_CLI_ARGUMENT",
            `--data-dir ${options.dataDir} is a jamgate's data dir, which names its own endpoints: not with --mqtt and --node`,
          );
        const { readEndpoints } = await import("../../gateway/endpoints.ts");
        const endpoints = readEndpoints(options.dataDir, "--mqtt and --node of a running jamgate");
        if (endpoints.rpc === null)
          throw new JamgateError(
            "JG_ERR_CLI_ARGUMENT",
            `the jamgate on ${options.dataDir} serves no node RPC (its endpoints.json has none): the simulation follows the node's blocks`,
          );
        let token = options.token;
        if (token === undefined) {
          try {
            token = readFileSync(join(options.dataDir, "operator-token"), "utf8").trim();
          } catch {
            throw new JamgateError("JG_ERR_OPERATOR_TOKEN", `no --token, and no operator-token in ${options.dataDir}`);
          }
        }
        remote = { mqttUrl: endpoints.mqtt, nodeUrl: endpoints.rpc, gatewayUrl: endpoints.http, token };
        ownDataDir = undefined;
      } else if (options.node !== undefined) {
        let token = options.token;
        if (token === undefined) {
          try {
            token = readFileSync(join(options.gatewayDataDir, "operator-token"), "utf8").trim();
          } catch {
            throw new JamgateError("JG_ERR_OPERATOR_TOKEN", `no --token, and no operator-token in ${options.gatewayDataDir}`);
          }
        }
        remote = { mqttUrl: options.mqtt!, nodeUrl: options.node, gatewayUrl: options.gateway, token };
      }
      // Loaded here, not at the top: every `jamgate` command loads this module for its flags, and the runner (the stack, the report's charts) takes about 1.4 s of CPU to load.
      const { runEnergySim } = await import("./runner.ts");
      const result = await runEnergySim({
        ...(remote === undefined ? {} : { remote }),
        scenario,
        slotMs: options.slotMs,
        minutesPerSlot: options.minutesPerSlot,
        out: options.out,
        progress: options.progress,
        ...(ownDataDir === undefined ? {} : { dataDir: ownDataDir }),
      });
      const summary = {
        kpis: result.kpis,
        blocks: result.blocks,
        ledgerEntries: result.ledgerEntries,
        intervals: result.intervals,
        envelopes: result.envelopes,
        errors: result.errors,
      };
      if (options.json) {
        process.stdout.write(`${JSON.stringify(summary)}\n`);
      } else {
        const c = result.kpis.community;
        process.stdout.write(
          [
            `${scenario.name}: ${scenario.households.length} households, ${result.intervals} intervals, ${result.blocks} blocks, ${result.ledgerEntries} ledger entries, ${result.wallSeconds.toFixed(0)} s`,
            `self-sufficiency ${(100 * c.selfSufficiency).toFixed(1)}%, self-consumption ${(100 * c.selfConsumption).toFixed(1)}%, traded ${(c.tradedWh / 1000).toFixed(1)} kWh, savings ${(c.savingsMicros / 1e6).toFixed(2)}`,
            `report: ${result.reportFiles[0] ?? options.out}`,
            "",
          ].join("\n"),
        );
      }
      // Envelopes the gateway or the service refused are counted, not fatal; say so on stderr.
      const refused = Object.entries(result.errors);
      if (refused.length > 0) process.stderr.write(`refused envelopes: ${refused.map(([code, n]) => `${code} × ${n}`).join(", ")}\n`);
    });
  registerWifiSimCommand(sim);
}
