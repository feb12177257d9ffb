/**
 * `jamgate sim wifi`: the Wi-Fi billing simulation from the command line (runner.ts), on a stack
 * of its own or on a running `jamgate start` named by `--data-dir` (its endpoints.json and
 * operator token). Registered under `jamgate sim` by ../energy/cli.ts.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { type Command, InvalidArgumentError } from "commander";
import { integerIn } from "../../devices/protocol/cli-args.ts";
import { JamgateError } from "../../devices/protocol/errors.ts";
import { CLIENTS_MAX, HOURS_MAX, ROUTERS_MAX } from "./scenario.ts";

interface SimWifiOptions {
  routers: number;
  clients: number;
  hours: number;
  seed: number;
  fraudRate: number;
  out: string;
  json?: boolean;
  slotMs: number;
  secondsPerSlot: number;
  dataDir?: string;
  radius?: string;
  progress: boolean;
}

/** A decimal number in [min, max] (hours may be fractional: 0.5 is half an hour). */
function numberIn(min: number, max: number, minExclusive = false): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!/^\d+(\.\d+)?$/.test(value.trim()) || !Number.isFinite(n) || n < min || (minExclusive && n === min) || n > max) {
      throw new InvalidArgumentError(`JG_ERR_CLI_ARGUMENT: expected a number from ${min}${minExclusive ? " (exclusive)" : ""} to ${max}, got "${value}"`);
    }
    return n;
  };
}

export function registerWifiSimCommand(sim: Command): void {
  sim
    .command("wifi")
    .description(
      "run Wi-Fi billing: routers (MQTT with client vouchers, and RADIUS hotspots) selling metered access to prepaid clients, some routers cheating, billed on the embedded JAM node",
    )
    .option(
      "--routers <n>",
      "routers; a fifth of them (at least two of three or more) are RADIUS hotspots, half of those router-attested",
      integerIn(1, ROUTERS_MAX),
      20,
    )
    .option("--clients <n>", "Wi-Fi clients, each with a prepaid account", integerIn(1, CLIENTS_MAX), 200)
    .option("--hours <h>", "simulated hours (fractions allowed)", numberIn(0, HOURS_MAX, true), 2)
    .option("--seed <n>", "seed of the routers, clients, traffic and frauds", integerIn(0, 2 ** 32 - 1), 1)
    .option(
      "--fraud-rate <p>",
      "probability that a router tries a fraud before an update, and that a non-attested native router strips a session's vouchers",
      numberIn(0, 1),
      0.05,
    )
    .option("--out <dir>", "where the report goes", "sim-wifi-report")
    .option("--json", "print exactly one JSON object (totals beside the independent count) on stdout")
    .option("--slot-ms <ms>", "slot period of the embedded node", integerIn(100, 60_000), 1000)
    .option("--seconds-per-slot <n>", "simulated seconds per slot (the accelerated clock)", integerIn(1, 3600), 60)
    .option(
      "--data-dir <dir>",
      "a running `jamgate start`'s data dir: simulate on it; any other dir keeps the simulation's own node, gateway and devices (default: a temp dir, removed after)",
    )
    .option("--radius <host:port>", "with --data-dir of a running jamgate: its RADIUS accounting listener (default: the one its endpoints.json names)")
    .option("--no-progress", "no progress bar on stderr")
    .action(async (options: SimWifiOptions) => {
      const { buildPlan } = await import("./plan.ts");
      let plan: ReturnType<typeof buildPlan>;
      try {
        plan = buildPlan({ routers: options.routers, clients: options.clients, hours: options.hours, seed: options.seed, fraudRate: options.fraudRate });
      } catch (e) {
        throw new JamgateError("JG_ERR_CLI_ARGUMENT", (e as Error).message);
      }
      let remote: Parameters<typeof import("./runner.ts").runWifiSim>[0]["remote"];
      let ownDataDir = options.dataDir;
      if (options.dataDir !== undefined && existsSync(join(options.dataDir, "endpoints.json"))) {
        const { readEndpoints } = await import("../../gateway/endpoints.ts");
        const endpoints = readEndpoints(options.dataDir);
        if (endpoints.rpc === null)
          throw new JamgateError("JG_ERR_CLI_ARGUMENT", `the jamgate on ${options.dataDir} serves no node RPC: the simulation follows the node's blocks`);
        const { readOperatorToken } = await import("../../gateway/secrets.ts");
        const read = readOperatorToken(options.dataDir);
        if (!("token" in read)) throw new JamgateError("JG_ERR_OPERATOR_TOKEN", `no operator-token in ${options.dataDir} (${read.why})`);
        const token = read.token;
        const radiusUrl =
          options.radius !== undefined ? new URL(`udp://${options.radius}`) : typeof endpoints.radius === "string" ? new URL(endpoints.radius) : null;
        if (radiusUrl !== null && !(Number(radiusUrl.port) > 0))
          throw new JamgateError("JG_ERR_CLI_ARGUMENT", `--radius ${options.radius}: expected host:port`);
        remote = {
          mqttUrl: endpoints.mqtt,
          nodeUrl: endpoints.rpc,
          gatewayUrl: endpoints.http,
          token,
          radius: radiusUrl === null ? null : { host: radiusUrl.hostname, port: Number(radiusUrl.port) },
        };
        ownDataDir = undefined;
      } else if (options.radius !== undefined)
        throw new JamgateError("JG_ERR_CLI_ARGUMENT", "--radius names a running jamgate's listener: give it with --data-dir of that jamgate");
      // Loaded here: the runner (the stack, the report's charts) takes over a second of CPU to load.
      const { runWifiSim } = await import("./runner.ts");
      const { summary, reportFiles } = await runWifiSim({
        plan,
        slotMs: options.slotMs,
        secondsPerSlot: options.secondsPerSlot,
        out: options.out,
        progress: options.progress,
        ...(ownDataDir === undefined ? {} : { dataDir: ownDataDir }),
        ...(remote === undefined ? {} : { remote }),
      });
      if (options.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
      else {
        process.stdout.write(
          [
            `${plan.population.routers.length} routers, ${plan.population.clients.length} clients, ${summary.sessions} sessions, ${summary.blocks} blocks, ${summary.wallSeconds} s`,
            `billed ${(summary.billedOctets / 1e9).toFixed(3)} GB for ${(summary.billedMicros / 1e6).toFixed(2)}, owners paid ${(summary.payoutsMicros / 1e6).toFixed(2)}, disputed ${summary.disputed.sessions} sessions (${(summary.disputed.octets / 1e9).toFixed(3)} GB)`,
            `refused: ${
              Object.entries(summary.refused)
                .map(([c, n]) => `${c} × ${n}`)
                .join(", ") || "none"
            }`,
            summary.mismatches.length === 0
              ? "every total equals the independent count"
              : `${summary.mismatches.length} differences from the independent count (see the report)`,
            `report: ${reportFiles[0] ?? options.out}`,
            "",
          ].join("\n"),
        );
      }
      if (summary.mismatches.length > 0) {
        process.stderr.write(`differences from the independent count:\n  ${summary.mismatches.join("\n  ")}\n`);
        process.exitCode = 1;
      }
    });
}
