/**
 * Configuration of the real `jamgate` program (gateway/config.ts, docs/configuration.md): every
 * command reads JAMGATE_<FLAG> and its data dir's config.json, one variable means one kind of value,
 * and `jamgate start --print-config` run as a user runs it shows each value and its source, then
 * exits 0 without starting; a bad variable or file exits 2 with the message.
 */
import { execFile } from "node:child_process";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import type { Command, Option } from "commander";
import { describe, expect, it } from "vitest";
import { COMMAND_SCOPED_FLAGS, CONFIG_FILE, ConfiguredCommand, envVariableOf, optionKey } from "../gateway/config.ts";
import { tempDir } from "../node/testing/fixtures.ts";
import { JAMGATE_BIN } from "./testing/process.ts";
import { program } from "./cli.ts";

const run = promisify(execFile);

/** The environment without the caller's JAMGATE_ variables, with `extra`, and keys in a dir of the test's own. */
function environment(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith("JAMGATE_")));
  return { ...env, XDG_CONFIG_HOME: tempDir(), ...extra };
}

/** `jamgate …` as a process: its exit code, stdout and stderr. */
async function jamgate(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [JAMGATE_BIN, ...args], { env: environment(env), timeout: 60_000 });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const failed = e as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

/** Every command below the program with its path ("device publish"). */
function commands(): { path: string; command: Command }[] {
  const out: { path: string; command: Command }[] = [];
  const walk = (command: Command, path: string) => {
    for (const sub of command.commands) {
      const subPath = path === "" ? sub.name() : `${path} ${sub.name()}`;
      out.push({ path: subPath, command: sub });
      walk(sub, subPath);
    }
  };
  walk(program(), "");
  return out;
}

const isSwitch = (option: Option) => !option.required && !option.optional;

describe("the program's flags and variables", () => {
  it("every command is a ConfiguredCommand, so each reads the environment and its config file", () => {
    const all = commands();
    expect(all.length).toBeGreaterThan(20);
    expect(all.filter(({ command }) => !(command instanceof ConfiguredCommand)).map(({ path }) => path)).toEqual([]);
  });

  it("no option names its own variable with Option.env(): gateway/config.ts reads them all, switches as true/false", () => {
    const own = commands().flatMap(({ path, command }) => command.options.filter((o) => o.envVar !== undefined).map((o) => `${path} ${o.flags}`));
    expect(own).toEqual([]);
  });

  it("every command-scoped flag is a flag of its command", () => {
    const flags = new Set(commands().flatMap(({ path, command }) => command.options.map((o) => `${path} --${optionKey(o)}`)));
    expect([...COMMAND_SCOPED_FLAGS.keys()].filter((flag) => !flags.has(flag))).toEqual([]);
  });

  it("docs/configuration.md lists every command-scoped flag with its variable", () => {
    const doc = readFileSync(new URL("../docs/configuration.md", import.meta.url), "utf8");
    const rows = [...doc.matchAll(/^\| `([a-z -]+ --[a-z-]+)` \| `(JAMGATE_[A-Z_]+)` \|/gm)].map((m) => `${m[1]} ${m[2]}`);
    const scoped = commands().flatMap(({ path, command }) =>
      command.options.filter((o) => COMMAND_SCOPED_FLAGS.has(`${path} --${optionKey(o)}`)).map((o) => `${path} --${optionKey(o)} ${envVariableOf(command, o)}`),
    );
    expect(scoped).toHaveLength(COMMAND_SCOPED_FLAGS.size);
    expect(rows.sort()).toEqual(scoped.sort());
  });

  it("one variable is one flag, a switch everywhere or a value everywhere", () => {
    const byVariable = new Map<string, { keys: Set<string>; switches: Set<boolean>; where: string[] }>();
    for (const { path, command } of commands()) {
      for (const option of command.options) {
        if (option.long === undefined || option.long === "--print-config") continue;
        const variable = envVariableOf(command, option);
        const entry = byVariable.get(variable) ?? { keys: new Set(), switches: new Set(), where: [] };
        entry.keys.add(optionKey(option));
        entry.switches.add(isSwitch(option));
        entry.where.push(`${path} ${option.flags}`);
        byVariable.set(variable, entry);
      }
    }
    const mixed = [...byVariable].filter(([, e]) => e.keys.size > 1 || e.switches.size > 1).map(([v, e]) => `${v}: ${e.where.join(", ")}`);
    expect(mixed).toEqual([]);
    // The ones the docs name, and a scoped one.
    expect(byVariable.get("JAMGATE_HTTP_PORT")?.where).toEqual(["start --http-port <port>"]);
    expect(byVariable.get("JAMGATE_DEVICE_PUBLISH_DATA_DIR")?.where).toEqual(["device publish --data-dir <dir>"]);
    expect(byVariable.get("JAMGATE_DATA_DIR")?.where).toContain("start --data-dir <dir>");
    expect(byVariable.get("JAMGATE_DATA_DIR")?.where).not.toContain("device publish --data-dir <dir>");
  });
});

describe("jamgate start --print-config, as a process", () => {
  it("shows each value and its source (command line, variable, config file, default) and starts nothing", async () => {
    const dataDir = tempDir();
    const file = join(dataDir, CONFIG_FILE);
    writeFileSync(file, JSON.stringify({ "influx-url": "http://127.0.0.1:8086", "mqtt-port": 1999, "http-port": 1, limit: 5 }));
    const { code, stdout, stderr } = await jamgate(["start", "--print-config", "--data-dir", dataDir, "--ws-port", "7000"], {
      JAMGATE_HTTP_PORT: "9123",
      JAMGATE_PLAINTEXT: "false",
      JAMGATE_CURRENCY: "USD",
    });
    expect({ code, stderr }).toEqual({ code: 0, stderr: "" });
    const rows = new Map(
      stdout
        .trim()
        .split("\n")
        .filter((l) => !l.startsWith("#"))
        .map((l) => [
          l.split(/\s+/)[0]!,
          l
            .split(/\s{2,}/)
            .slice(1)
            .join(" | "),
        ]),
    );
    expect(rows.get("data-dir")).toBe(`${JSON.stringify(dataDir)} | cli`);
    expect(rows.get("ws-port")).toBe("7000 | cli");
    expect(rows.get("http-port")).toBe("9123 | env JAMGATE_HTTP_PORT"); // the variable over the file's 1
    expect(rows.get("plaintext")).toBe("false | env JAMGATE_PLAINTEXT");
    expect(rows.get("currency")).toBe('"USD" | env JAMGATE_CURRENCY');
    expect(rows.get("mqtt-port")).toBe(`1999 | config ${file}`);
    expect(rows.get("influx-url")).toBe(`"http://127.0.0.1:8086" | config ${file}`);
    expect(rows.get("rpc-port")).toBe("19800 | default");
    expect(rows.get("node")).toBe("unset | default");
    expect(rows.has("print-config")).toBe(false);
    expect(stdout).toContain(`# ${file}: not flags of jamgate start, left to the commands that have them: limit`);
    // Nothing started: no lock, no node, no endpoints.json in the data dir.
    expect(readdirSync(dataDir)).toEqual([CONFIG_FILE]);
  });

  it("a bad variable exits 2, naming it and the flag's own refusal", async () => {
    const { code, stdout, stderr } = await jamgate(["start", "--print-config", "--data-dir", tempDir()], { JAMGATE_HTTP_PORT: "abc" });
    expect(code).toBe(2);
    expect(stdout).toBe("");
    expect(stderr).toContain('JAMGATE_HTTP_PORT=abc (--http-port): JG_ERR_CLI_ARGUMENT: expected an integer from 0 to 65535, got "abc"');
  });

  it("a config file naming no flag of any command exits 2 with JG_ERR_CONFIG", async () => {
    const dataDir = tempDir();
    writeFileSync(join(dataDir, CONFIG_FILE), JSON.stringify({ "htp-port": 8080 }));
    const { code, stderr } = await jamgate(["start", "--print-config"], { JAMGATE_DATA_DIR: dataDir });
    expect(code).toBe(2);
    expect(stderr).toContain(`jamgate: JG_ERR_CONFIG: ${join(dataDir, CONFIG_FILE)}: "htp-port" is not a flag of any jamgate command`);
  });
});
