/**
 * gateway/config.ts in-process: each flag from the command line, then JAMGATE_<FLAG>, then
 * <data-dir>/config.json, then its default; values from the environment and the file through the
 * flag's own parser; a bad file JG_ERR_CONFIG. Exit codes and messages are those a user sees
 * (scripts/cli.ts main exits with the CommanderError's code). The real program is checked in
 * scripts/cli-config.test.ts.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { CommanderError, InvalidArgumentError, Option } from "commander";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { tempDir } from "../node/testing/fixtures.ts";
import { CONFIG_FILE, ConfiguredCommand, envVariableOf } from "./config.ts";

const port = (value: string): number => {
  if (!/^\d+$/.test(value) || Number(value) > 65_535)
    throw new InvalidArgumentError(`JG_ERR_CLI_ARGUMENT: expected an integer from 0 to 65535, got "${value}"`);
  return Number(value);
};

let errors: string[];
let seen: { options: Record<string, unknown>; sources: Record<string, string | undefined> } | null;

beforeEach(() => {
  errors = [];
  seen = null;
});
afterEach(() => {
  vi.unstubAllEnvs();
});

/** A program of two commands as jamgate's are made: `serve` with a data dir, `other` with a data dir and a flag `serve` lacks. */
function program(): ConfiguredCommand {
  const root = new ConfiguredCommand("jamgate").exitOverride().configureOutput({ writeErr: (s) => void errors.push(s), writeOut: () => {} });
  const record = (options: Record<string, unknown>, command: ConfiguredCommand) => {
    const keys = ["dataDir", "httpPort", "host", "json", "plaintext", "authorize", "tlsCert", "name"];
    seen = { options, sources: Object.fromEntries(keys.map((k) => [k, command.getOptionValueSource(k)])) };
  };
  root
    .command("serve")
    .option("--data-dir <dir>", "data dir", "data")
    .option("--http-port <port>", "port", port, 8080)
    .option("--host <host>", "host", "127.0.0.1")
    .option("--json", "JSON")
    .option("--no-plaintext", "no plain")
    .option("--authorize <key>", "repeat for more", (value: string, previous: string[]) => [...previous, value], [] as string[])
    .option("--tls-cert <file>", "cert")
    .addOption(new Option("--chain <name>", "chain").choices(["tiny", "full"]).default("tiny"))
    .requiredOption("--name <name>", "a mandatory flag")
    .action(record);
  root.command("other").option("--data-dir <dir>", "data dir").option("--limit <n>", "a flag serve does not have", port).action(record);
  return root;
}

async function run(...args: string[]): Promise<NonNullable<typeof seen>> {
  await program().parseAsync(args, { from: "user" });
  return seen!;
}

async function refusal(...args: string[]): Promise<{ exitCode: number; code: string; message: string }> {
  try {
    await run(...args);
  } catch (e) {
    if (!(e instanceof CommanderError)) throw e;
    return { exitCode: e.exitCode, code: e.code, message: errors.join("") };
  }
  throw new Error(`jamgate ${args.join(" ")} was taken`);
}

function dataDirWith(config: unknown): string {
  const dir = tempDir();
  writeFileSync(join(dir, CONFIG_FILE), typeof config === "string" ? config : JSON.stringify(config));
  return dir;
}

describe("precedence: command line, environment, config file, default", () => {
  it("takes each flag from the highest source that has it, and records the source", async () => {
    const dir = dataDirWith({ "http-port": 7001, host: "10.0.0.1", "tls-cert": "/etc/c.pem", name: "from-file" });
    vi.stubEnv("JAMGATE_HTTP_PORT", "7002");
    vi.stubEnv("JAMGATE_HOST", "10.0.0.2");
    const { options, sources } = await run("serve", "--data-dir", dir, "--host", "10.0.0.3");
    expect(options).toMatchObject({ dataDir: dir, httpPort: 7002, host: "10.0.0.3", tlsCert: "/etc/c.pem", name: "from-file", plaintext: true });
    expect(sources).toMatchObject({ dataDir: "cli", httpPort: "env", host: "cli", tlsCert: "config", name: "config", plaintext: "default" });
  });

  it("without a file or variables, every flag keeps its default", async () => {
    const { options, sources } = await run("serve", "--data-dir", tempDir(), "--name", "n");
    expect(options).toMatchObject({ httpPort: 8080, host: "127.0.0.1", chain: "tiny", authorize: [], plaintext: true });
    expect(sources).toMatchObject({ httpPort: "default", host: "default", plaintext: "default", name: "cli" });
  });

  it("finds the config file in the data dir the environment names", async () => {
    const dir = dataDirWith({ "http-port": 7005 });
    vi.stubEnv("JAMGATE_DATA_DIR", dir);
    const { options, sources } = await run("serve", "--name", "n");
    expect(options).toMatchObject({ dataDir: dir, httpPort: 7005 });
    expect(sources).toMatchObject({ dataDir: "env", httpPort: "config" });
  });

  it("reads switches as true, false, 1 or 0; a --no-x flag's variable and key are the positive name", async () => {
    vi.stubEnv("JAMGATE_JSON", "false");
    vi.stubEnv("JAMGATE_PLAINTEXT", "0");
    expect((await run("serve", "--data-dir", tempDir(), "--name", "n")).options).toMatchObject({ json: false, plaintext: false });
    vi.stubEnv("JAMGATE_JSON", "1");
    vi.stubEnv("JAMGATE_PLAINTEXT", "TRUE");
    expect((await run("serve", "--data-dir", tempDir(), "--name", "n")).options).toMatchObject({ json: true, plaintext: true });
    vi.unstubAllEnvs();
    const dir = dataDirWith({ json: true, plaintext: false });
    expect((await run("serve", "--data-dir", dir, "--name", "n")).options).toMatchObject({ json: true, plaintext: false });
    // The command line still wins over the file: --no-plaintext is false whatever the file says.
    expect((await run("serve", "--data-dir", dataDirWith({ plaintext: true }), "--name", "n", "--no-plaintext")).options).toMatchObject({ plaintext: false });
  });

  it("an empty variable is unset", async () => {
    vi.stubEnv("JAMGATE_TLS_CERT", "");
    const dir = dataDirWith({ "tls-cert": "/etc/file.pem" });
    expect((await run("serve", "--data-dir", dir, "--name", "n")).options).toMatchObject({ tlsCert: "/etc/file.pem" });
  });

  it("a flag that collects its values takes a list from the file, one value from its variable", async () => {
    expect((await run("serve", "--data-dir", dataDirWith({ authorize: ["a", "b"] }), "--name", "n")).options).toMatchObject({ authorize: ["a", "b"] });
    vi.stubEnv("JAMGATE_AUTHORIZE", "c");
    expect((await run("serve", "--data-dir", tempDir(), "--name", "n")).options).toMatchObject({ authorize: ["c"] });
    // Given on the command line, the variable adds nothing.
    expect((await run("serve", "--data-dir", tempDir(), "--name", "n", "--authorize", "d")).options).toMatchObject({ authorize: ["d"] });
  });
});

describe("refusals: exit code 2, naming where the value came from", () => {
  it("a variable's value the flag's parser refuses, as on the command line", async () => {
    vi.stubEnv("JAMGATE_HTTP_PORT", "abc");
    const refused = await refusal("serve", "--data-dir", tempDir(), "--name", "n");
    expect(refused).toMatchObject({ exitCode: 2, code: "commander.invalidArgument" });
    expect(refused.message).toContain('JAMGATE_HTTP_PORT=abc (--http-port): JG_ERR_CLI_ARGUMENT: expected an integer from 0 to 65535, got "abc"');
  });

  it("a switch's variable that is not true, false, 1 or 0", async () => {
    vi.stubEnv("JAMGATE_JSON", "yes");
    const refused = await refusal("serve", "--data-dir", tempDir(), "--name", "n");
    expect(refused).toMatchObject({ exitCode: 2, code: "commander.invalidArgument" });
    expect(refused.message).toContain("JAMGATE_JSON=yes (--json): expected true, false, 1 or 0");
  });

  it.each([
    ["a value the parser refuses", { "http-port": 70000 }, '"http-port": 70000 (--http-port): JG_ERR_CLI_ARGUMENT: expected an integer from 0 to 65535'],
    ["a choice not offered", { chain: "big" }, '"chain": "big" (--chain): Allowed choices are tiny, full.'],
    ["a switch that is not a boolean", { plaintext: "no" }, '"plaintext": "no" (--no-plaintext): expected true or false'],
    ["a value flag given an object", { host: { a: 1 } }, '"host": {"a":1} (--host): expected a string or a number'],
  ])("a file value: %s", async (_, config, message) => {
    const dir = dataDirWith(config);
    const refused = await refusal("serve", "--data-dir", dir, "--name", "n");
    expect(refused).toMatchObject({ exitCode: 2, code: "commander.invalidArgument" });
    expect(refused.message).toContain(`${join(dir, CONFIG_FILE)} ${message}`);
  });

  it.each([
    ["not JSON", "{http-port: 1}", "not JSON"],
    ["not an object", "[1, 2]", "not a JSON object of flags and values"],
    ["a key no command has", { "htp-port": 1 }, '"htp-port" is not a flag of any jamgate command'],
    ["a data-dir key", { "data-dir": "/elsewhere" }, '"data-dir": the file is found through the data dir'],
  ])("a file that is %s: JG_ERR_CONFIG", async (_, config, message) => {
    const dir = dataDirWith(config);
    const refused = await refusal("serve", "--data-dir", dir, "--name", "n");
    expect(refused).toMatchObject({ exitCode: 2, code: "JG_ERR_CONFIG" });
    expect(refused.message).toContain(`jamgate: JG_ERR_CONFIG: ${join(dir, CONFIG_FILE)}: ${message}`);
  });

  it("a data dir path that is a file, or a data dir without config.json, is no config", async () => {
    const file = join(tempDir(), "plain");
    writeFileSync(file, "x");
    expect((await run("serve", "--data-dir", file, "--name", "n")).options).toMatchObject({ httpPort: 8080 });
    const dir = join(tempDir(), "new");
    mkdirSync(dir);
    expect((await run("serve", "--data-dir", dir, "--name", "n")).options).toMatchObject({ httpPort: 8080 });
  });
});

describe("a file shared by commands", () => {
  it("each command takes the keys it has a flag for and leaves the others", async () => {
    const dir = dataDirWith({ "http-port": 7010, limit: 5 });
    expect((await run("serve", "--data-dir", dir, "--name", "n")).options).toMatchObject({ httpPort: 7010 });
    expect(seen!.options.limit).toBeUndefined();
    expect((await run("other", "--data-dir", dir)).options).toMatchObject({ limit: 5 });
  });

  it("--print-config lists each value with its source, and the keys left to other commands", async () => {
    const dir = dataDirWith({ "http-port": 7010, limit: 5 });
    vi.stubEnv("JAMGATE_HOST", "0.0.0.0");
    const lines: string[] = [];
    const root = program();
    root.commands[0]!.action((_options, command) => (command as ConfiguredCommand).printConfig((line) => void lines.push(line)));
    await root.parseAsync(["serve", "--data-dir", dir, "--name", "n"], { from: "user" });
    const rows = new Map(lines.filter((l) => !l.startsWith("#")).map((l) => [l.split(/\s+/)[0]!, l.split(/\s{2,}/).slice(1)]));
    expect(rows.get("data-dir")).toEqual([JSON.stringify(dir), "cli"]);
    expect(rows.get("http-port")).toEqual(["7010", `config ${join(dir, CONFIG_FILE)}`]);
    expect(rows.get("host")).toEqual(['"0.0.0.0"', "env JAMGATE_HOST"]);
    expect(rows.get("chain")).toEqual(['"tiny"', "default"]);
    expect(rows.get("tls-cert")).toEqual(["unset", "default"]);
    expect(lines.at(-1)).toBe(`# ${join(dir, CONFIG_FILE)}: not flags of jamgate serve, left to the commands that have them: limit`);
  });
});

describe("variables", () => {
  it("are JAMGATE_ and the flag's name, the positive one for --no-x; help names them", () => {
    const serve = program().commands[0]!;
    const name = (flag: string) => envVariableOf(serve, serve.options.find((o) => o.long === flag)!);
    expect([name("--http-port"), name("--no-plaintext"), name("--data-dir")]).toEqual(["JAMGATE_HTTP_PORT", "JAMGATE_PLAINTEXT", "JAMGATE_DATA_DIR"]);
    expect(serve.helpInformation()).toMatch(/--http-port <port>\s+port \(default: 8080\) \(env: JAMGATE_HTTP_PORT\)/);
  });

  it("--help is shown even when a variable is bad", async () => {
    vi.stubEnv("JAMGATE_HTTP_PORT", "abc");
    const refused = await refusal("serve", "--help");
    expect(refused.code).toBe("commander.helpDisplayed");
  });
});
