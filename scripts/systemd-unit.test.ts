/**
 * docs/jamgate.service, docs/jamgate.env and docs/production.md against the command line they
 * describe, so they cannot drift from it: every flag in the unit's ExecStart and every JAMGATE_
 * variable is an option of `jamgate start` (read from the commander program scripts/cli.ts builds),
 * with a value that option takes; every option has its variable in the env example; every flag the
 * production checklist names exists on some `jamgate` command. And the unit's numbers against the
 * code's limits: file descriptors above the connection caps, a stop timeout above the stop's waits.
 *
 * The variable of a flag is the one `jamgate start --help` names for it (`(env: JAMGATE_…)`, the
 * program's configuration from the environment: gateway/config.ts). Where help names none for any
 * flag, the rule that configuration follows: JAMGATE_ and the flag's positive name in upper case,
 * dashes as underscores (`--mqtt-port` → JAMGATE_MQTT_PORT, `--no-plaintext` → JAMGATE_PLAINTEXT).
 */
import { readFileSync } from "node:fs";
import type { Command, Option } from "commander";
import { describe, expect, it } from "vitest";
import { gatewayLimits } from "../gateway/gateway.ts";
import { HTTP_CONNECTIONS_MAX } from "../gateway/http.ts";
import { DEFAULT_REQUEST_TIMEOUT_MS } from "../gateway/influx/writer.ts";
import { MAX_CONNECTIONS as RPC_CONNECTIONS_MAX } from "../node/rpc/server.ts";
import { settlementLimits } from "../gateway/settlement/limits.ts";
import { program } from "./cli.ts";

const doc = (name: string) => readFileSync(new URL(`../docs/${name}`, import.meta.url), "utf8");
const UNIT = doc("jamgate.service");
const ENV = doc("jamgate.env");
/** How long a stop waits for queued receipts: gateway/gateway.ts DOWNLINK_DRAIN_ON_STOP_MS (not exported). */
const RECEIPTS_DRAIN_ON_STOP_MS = 2_000;
/** InfluxDB's part of a stop: the write in flight, then the flush of the rest (gateway/stack.ts stop), each a request. */
const INFLUX_REQUESTS_ON_STOP = 2;
/** Docs that name flags of `jamgate` commands. */
const FLAG_DOCS = ["production.md", "influxdb.md"] as const;

const cli = program();
const start = cli.commands.find((c) => c.name() === "start");
if (start === undefined) throw new Error("scripts/cli.ts program() has no start command");
const startOptions = new Map(start.options.map((o) => [o.long ?? o.flags, o]));

/** The variable help names for the option, if any: `… (env: JAMGATE_X)`. */
function helpVariable(command: Command, option: Option): string | undefined {
  return /\(env: (JAMGATE_[A-Z0-9_]+)\)$/.exec(command.createHelp().optionDescription(option))?.[1] ?? option.envVar;
}
/** Whether help names variables at all: the program reads the environment. */
const helpNamesVariables = start.options.some((o) => helpVariable(start, o) !== undefined);
/** The option's variable; undefined for one that is read from the command line only. */
function variableOf(option: Option): string | undefined {
  if (helpNamesVariables) return helpVariable(start!, option);
  const name = (option.long ?? "").replace(/^--/, "").replace(option.negate ? /^no-/ : /^$/, "");
  return `JAMGATE_${name.toUpperCase().replace(/-/g, "_")}`;
}
const optionOfVariable = new Map(
  [...startOptions.values()].flatMap((o) => {
    const variable = variableOf(o);
    return variable === undefined ? [] : [[variable, o] as const];
  }),
);

/** Every long flag of every command of the program, `--help` and `--version` included. */
function allFlags(command: Command): Set<string> {
  const flags = new Set<string>(["--help", "--version"]);
  const visit = (c: Command) => {
    for (const o of c.options) if (o.long !== undefined) flags.add(o.long);
    for (const sub of c.commands) visit(sub);
  };
  visit(command);
  return flags;
}

/** The unit's `key=value` lines of a section, continuation lines joined; a key given twice keeps each value. */
function unitSection(text: string, section: string): Map<string, string[]> {
  const lines = text.replace(/\\\n/g, " ").split("\n");
  const out = new Map<string, string[]>();
  let current = "";
  for (const raw of lines) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header !== null) {
      current = header[1]!;
      continue;
    }
    if (current !== section) continue;
    const eq = line.indexOf("=");
    if (eq < 0) throw new Error(`not a key=value line in [${section}]: ${line}`);
    const key = line.slice(0, eq);
    out.set(key, [...(out.get(key) ?? []), line.slice(eq + 1)]);
  }
  return out;
}

const service = unitSection(UNIT, "Service");
const one = (key: string): string => {
  const values = service.get(key);
  if (values?.length !== 1) throw new Error(`[Service] ${key} is given ${values?.length ?? 0} times, not once`);
  return values[0]!;
};

/** `JAMGATE_X=value` lines of the env example, commented out or not. */
function envExample(text: string): { readonly name: string; readonly value: string; readonly line: number }[] {
  const out: { name: string; value: string; line: number }[] = [];
  text.split("\n").forEach((raw, i) => {
    const m = /^#?\s*(JAMGATE_[A-Z0-9_]+)=(.*)$/.exec(raw.trim());
    if (m !== null) out.push({ name: m[1]!, value: m[2]!.replace(/^"(.*)"$/, "$1"), line: i + 1 });
  });
  return out;
}

/** Why `value` is not a value `option` takes, or null when it is: a switch's is true, false, 1 or 0; another's passes its parser. */
function valueProblem(option: Option, value: string): string | null {
  if (!option.required && !option.optional) return /^(true|false|1|0)$/i.test(value) ? null : `a switch is true or false, not ${JSON.stringify(value)}`;
  if (value === "") return "no value";
  if (option.argChoices !== undefined && !option.argChoices.includes(value)) return `not one of ${option.argChoices.join(", ")}`;
  try {
    option.parseArg?.(value, undefined);
  } catch (e) {
    return (e as Error).message;
  }
  return null;
}

describe("docs/jamgate.service", () => {
  it("runs `jamgate start` with flags `jamgate start` has, and values they take", () => {
    const words = one("ExecStart").trim().split(/\s+/);
    expect(words.slice(0, 3)).toEqual(["/usr/bin/node", `${one("WorkingDirectory")}/scripts/jamgate.mjs`, "start"]);
    const args = words.slice(3);
    expect(args.length).toBeGreaterThan(0);
    for (let i = 0; i < args.length; i++) {
      const [flag, inline] = args[i]!.split("=", 2) as [string, string | undefined];
      expect(flag, `ExecStart: ${args[i]} is not a flag`).toMatch(/^--[a-z]/);
      const option = startOptions.get(flag);
      if (option === undefined) throw new Error(`ExecStart: jamgate start has no ${flag} (its flags: ${[...startOptions.keys()].join(" ")})`);
      if (option.required || option.optional) {
        const value = inline ?? args[++i];
        expect(value, `ExecStart: ${flag} needs a value`).toBeDefined();
        expect(valueProblem(option, value!), `ExecStart: ${flag} ${value}`).toBeNull();
      }
    }
  });

  it("keeps its data dir in its StateDirectory, writable under ProtectSystem=strict, and reads the env file if there is one", () => {
    const words = one("ExecStart").trim().split(/\s+/);
    const dataDir = words[words.indexOf("--data-dir") + 1];
    expect(dataDir).toBe(`/var/lib/${one("StateDirectory")}`);
    expect(one("ProtectSystem")).toBe("strict");
    expect(one("ReadWritePaths").split(/\s+/)).toContain(dataDir);
    expect(one("EnvironmentFile")).toBe("-/etc/jamgate/jamgate.env");
    expect(one("User")).toBe("jamgate");
    expect(one("Restart")).toBe("on-failure");
  });

  it("allows more file descriptors than the MQTT, HTTP and RPC connection caps together", () => {
    const sockets = gatewayLimits.connectionsMax + HTTP_CONNECTIONS_MAX + RPC_CONNECTIONS_MAX;
    // Room beside them for refused sockets lingering to send their CONNACK, LMDB files and threads.
    expect(Number(one("LimitNOFILE"))).toBeGreaterThanOrEqual(2 * sockets);
  });

  it("gives a stop twice the time of its bounded waits: settlements under way, queued receipts, then InfluxDB's write in flight and flush", () => {
    const seconds = Number(one("TimeoutStopSec"));
    expect(Number.isInteger(seconds)).toBe(true);
    const boundsMs = settlementLimits.stopDrainMs + RECEIPTS_DRAIN_ON_STOP_MS + INFLUX_REQUESTS_ON_STOP * DEFAULT_REQUEST_TIMEOUT_MS;
    expect(seconds * 1000).toBeGreaterThanOrEqual(2 * boundsMs);
  });
});

describe("docs/jamgate.env", () => {
  const entries = envExample(ENV);

  it("names only flags of `jamgate start`, each once, with a value the flag takes", () => {
    expect(entries.length).toBeGreaterThan(0);
    const seen = new Set<string>();
    for (const { name, value, line } of entries) {
      const option = optionOfVariable.get(name);
      if (option === undefined)
        throw new Error(`docs/jamgate.env:${line}: ${name} is no flag of jamgate start (theirs: ${[...optionOfVariable.keys()].join(" ")})`);
      expect(seen.has(name), `docs/jamgate.env:${line}: ${name} again`).toBe(false);
      seen.add(name);
      expect(valueProblem(option, value), `docs/jamgate.env:${line}: ${name}=${value}`).toBeNull();
    }
  });

  it("has a variable for every flag of `jamgate start`", () => {
    const documented = new Set(entries.map((e) => e.name));
    const missing = [...optionOfVariable.keys()].filter((name) => !documented.has(name));
    expect(missing, "add them to docs/jamgate.env, commented out at their default").toEqual([]);
  });
});

describe.each(FLAG_DOCS)("docs/%s", (name) => {
  const text = doc(name);

  it("names only flags that `jamgate` commands have", () => {
    const flags = allFlags(cli);
    const named = [...new Set(text.match(/(?<![\w-])--[a-z][a-z0-9-]*/g) ?? [])];
    expect(named.filter((flag) => !flags.has(flag))).toEqual([]);
  });

  it("names only JAMGATE_ variables of `jamgate start` flags", () => {
    const named = [...new Set(text.match(/\bJAMGATE_[A-Z0-9_]+/g) ?? [])];
    expect(named.filter((variable) => !optionOfVariable.has(variable))).toEqual([]);
  });
});
