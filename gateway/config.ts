/**
 * Configuration of the `jamgate` command line beside its flags (docs/configuration.md). Every flag
 * of every command also comes from an environment variable, `JAMGATE_<FLAG>` (`--http-port` →
 * `JAMGATE_HTTP_PORT`), and, for a command that has `--data-dir`, from the optional JSON object in
 * `<data-dir>/config.json` keyed by flag names (`{"http-port": 8080}`). Precedence, highest first:
 * command line, environment, config file, default. A value from the environment or the file goes
 * through the flag's own parser, so it is refused as on the command line (exit code 2), with a
 * message naming where it came from; a file that is not such an object, or names a flag no command
 * has, is JG_ERR_CONFIG (exit code 2).
 *
 * Built on commander's option sources ('cli', 'env', 'config', 'default': setOptionValueWithSource,
 * getOptionValueSource) and its documented extension point, a Command subclass made for every
 * subcommand by createCommand; not on Option.env(), which takes a boolean flag as set whatever its
 * variable says (JAMGATE_JSON=false would turn --json on) and attaches its handler only to options
 * added after it is called. Loads only commander and node:fs: every `jamgate` command loads it.
 */
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { Command, type Help, type Option } from "commander";

/** The config file in a command's data dir. */
export const CONFIG_FILE = "config.json";
/** Prefix of every variable. */
export const ENV_PREFIX = "JAMGATE_";
/** Largest config file read: a value for every flag of every command is a few KiB. */
export const CONFIG_FILE_BYTES_MAX = 1024 * 1024;
/** Exit code of a configuration the program cannot take: node/cli.ts EXIT_BAD_COMMAND_LINE, as a configuration stands for flags of the command line. */
const EXIT_BAD_CONFIGURATION = 2;

/**
 * Flags that mean something else in one command than in the others, keyed `"<command> --<flag>"`:
 * there the variable names the command too (`device publish --data-dir` →
 * `JAMGATE_DEVICE_PUBLISH_DATA_DIR`), and a config file does not set them, so that a variable or
 * file meant for the other commands does not change them.
 */
export const COMMAND_SCOPED_FLAGS: ReadonlyMap<string, string> = new Map([
  ["device publish --data-dir", "the device's own offline queue, not a jamgate data dir"],
  ["device keygen --out", "a key file to write, not a report dir"],
  ["device envelope --out", "an envelope file to write, not a report dir"],
  ["device register --kind", "a device kind (meter, agent, …), not an envelope kind"],
  ["sim wifi --radius", "a RADIUS listener's host:port, not router onboard's switch"],
]);

/** Flags read only from the command line: one that makes a command print instead of run. */
const COMMAND_LINE_ONLY: ReadonlySet<string> = new Set(["print-config"]);

/** Flags whose value is a secret itself (not a file holding one): `--print-config` shows only whether it is set. */
const SECRET_FLAGS: ReadonlySet<string> = new Set(["token"]);

/** Where an option's effective value came from. */
export type ConfigSource =
  | { readonly kind: "cli" }
  | { readonly kind: "env"; readonly variable: string }
  | { readonly kind: "config"; readonly file: string }
  | { readonly kind: "default" };

/** One line of `--print-config`: an option's key (its long name, positive for `--no-x`), value and source. */
export interface EffectiveOption {
  readonly key: string;
  readonly value: unknown;
  readonly source: ConfigSource;
}

/** An option's key: its long name without dashes, the positive one for `--no-x` (the file's key and the variable's stem). */
export function optionKey(option: Option): string {
  const long = (option.long ?? "").replace(/^--/, "");
  return option.negate ? long.replace(/^no-/, "") : long;
}

/** The command's path below the program, e.g. "device publish". */
function commandPath(command: Command): string {
  const names: string[] = [];
  for (let c: Command | null = command; c?.parent; c = c.parent) names.unshift(c.name());
  return names.join(" ");
}

const isScoped = (command: Command, option: Option): boolean => COMMAND_SCOPED_FLAGS.has(`${commandPath(command)} --${optionKey(option)}`);

const upper = (words: string): string => words.toUpperCase().replace(/[- ]/g, "_");

/** The variable a command's option reads: JAMGATE_<FLAG>, or JAMGATE_<COMMAND>_<FLAG> for a flag in COMMAND_SCOPED_FLAGS. */
export function envVariableOf(command: Command, option: Option): string {
  const key = optionKey(option);
  return `${ENV_PREFIX}${isScoped(command, option) ? `${upper(commandPath(command))}_` : ""}${upper(key)}`;
}

/** Whether the option is read from the environment and config files: a long flag of a subcommand (not --help), not one of COMMAND_LINE_ONLY. */
function configurable(command: Command, option: Option): boolean {
  return command.parent !== null && option.long !== undefined && command.options.includes(option) && !COMMAND_LINE_ONLY.has(optionKey(option));
}

/** Whether the option takes no value (`--json`, `--no-plaintext`). */
const isSwitch = (option: Option): boolean => !option.required && !option.optional;

/** The keys a config file may hold: the flags of every command (a file may be shared by several), less --data-dir and the command-line-only ones. */
function knownKeys(root: Command): Set<string> {
  const keys = new Set<string>();
  const walk = (command: Command) => {
    for (const option of command.options) if (configurable(command, option) && !isScoped(command, option)) keys.add(optionKey(option));
    for (const sub of command.commands) walk(sub);
  };
  walk(root);
  keys.delete("data-dir");
  return keys;
}

/** An error a flag's parser throws for a value it refuses: commander's InvalidArgumentError or a registry code. */
function isRefusal(e: unknown): e is Error {
  const code = (e as { code?: unknown }).code;
  return e instanceof Error && typeof code === "string" && (code === "commander.invalidArgument" || code.startsWith("JG_ERR_"));
}

/**
 * A command whose options also come from the environment and its data dir's config file. Made by
 * scripts/cli.ts for the program; its createCommand makes every subcommand one too.
 */
export class ConfiguredCommand extends Command {
  /** The config file this command read, when it had one. */
  private configFile: string | null = null;
  /** Keys of that file this command has no flag for (other commands'). */
  private otherCommandsKeys: string[] = [];

  override createCommand(name?: string): ConfiguredCommand {
    return new ConfiguredCommand(name);
  }

  /** commander parses the command line here; the environment and the config file fill in what it left at its default, before the checks of mandatory and conflicting options. */
  override parseOptions(argv: string[]): { operands: string[]; unknown: string[] } {
    const parsed = super.parseOptions(argv);
    // --help shows help even where a variable or the file is bad.
    if (this.parent !== null && !parsed.unknown.some((arg) => arg === "--help" || arg === "-h")) {
      this.readEnvironment();
      this.readConfigFile();
    }
    return parsed;
  }

  /** Help names each option's variable, as commander does for Option.env(). */
  override createHelp(): Help {
    const help = super.createHelp();
    const describe = help.optionDescription.bind(help);
    help.optionDescription = (option: Option) => {
      const text = describe(option);
      return configurable(this, option) ? `${text}${text === "" ? "" : " "}(env: ${envVariableOf(this, option)})` : text;
    };
    return help;
  }

  /** The effective value and source of each of the command's options, for `--print-config`. */
  effectiveOptions(): EffectiveOption[] {
    return this.options
      .filter((option) => configurable(this, option))
      .map((option) => {
        const name = option.attributeName();
        const kind = this.getOptionValueSource(name);
        const source: ConfigSource =
          kind === "cli"
            ? { kind: "cli" }
            : kind === "env"
              ? { kind: "env", variable: envVariableOf(this, option) }
              : kind === "config" && this.configFile !== null
                ? { kind: "config", file: this.configFile }
                : { kind: "default" };
        return { key: optionKey(option), value: this.getOptionValue(name), source };
      });
  }

  /** `--print-config`: each option as `key  value  source`, one a line (values as JSON; unset for none), then the config file's keys this command does not take. */
  printConfig(write: (line: string) => void = (line) => process.stdout.write(`${line}\n`)): void {
    const rows = this.effectiveOptions().map(({ key, value, source }) => [
      key,
      value === undefined ? "unset" : SECRET_FLAGS.has(key) ? "(secret)" : JSON.stringify(value, (_, v) => (typeof v === "bigint" ? v.toString() : v)),
      source.kind === "env" ? `env ${source.variable}` : source.kind === "config" ? `config ${source.file}` : source.kind,
    ]);
    const widths = [0, 1].map((i) => Math.max(...rows.map((r) => r[i]!.length)));
    for (const [key, value, source] of rows) write(`${key!.padEnd(widths[0]!)}  ${value!.padEnd(widths[1]!)}  ${source}`);
    if (this.otherCommandsKeys.length > 0)
      write(`# ${this.configFile}: not flags of jamgate ${commandPath(this)}, left to the commands that have them: ${this.otherCommandsKeys.join(", ")}`);
  }

  /** Options still at their default take their variable's value. */
  private readEnvironment(): void {
    for (const option of this.options) {
      if (!configurable(this, option) || !this.atDefault(option)) continue;
      const variable = envVariableOf(this, option);
      const raw = process.env[variable];
      // An empty variable is unset, as an EnvironmentFile line `JAMGATE_INFLUX_URL=` means.
      if (raw === undefined || raw === "") continue;
      const where = `${variable}=${raw}`;
      this.setOptionValueWithSource(option.attributeName(), isSwitch(option) ? this.switchValue(option, raw, where) : this.parsed(option, raw, where), "env");
    }
  }

  /** Options still at their default take the data dir's config file's value, when the command has --data-dir and the file exists. */
  private readConfigFile(): void {
    if (!this.options.some((o) => o.long === "--data-dir")) return;
    const dataDir: unknown = this.getOptionValue("dataDir");
    if (typeof dataDir !== "string") return;
    const file = join(dataDir, CONFIG_FILE);
    const values = this.readConfigObject(file);
    if (values === null) return;
    this.configFile = file;
    this.otherCommandsKeys = [];
    let root: Command = this;
    while (root.parent) root = root.parent;
    const known = knownKeys(root);
    for (const key of Object.keys(values)) {
      if (key === "data-dir") this.configError(file, `"data-dir": the file is found through the data dir, so it cannot name another`);
      if (!known.has(key)) this.configError(file, `"${key}" is not a flag of any jamgate command`);
    }
    for (const [key, value] of Object.entries(values)) {
      const option = this.options.find((o) => configurable(this, o) && !isScoped(this, o) && optionKey(o) === key);
      if (option === undefined) {
        this.otherCommandsKeys.push(key);
        continue;
      }
      if (!this.atDefault(option)) continue;
      const where = `${file} "${key}": ${JSON.stringify(value)}`;
      this.setOptionValueWithSource(option.attributeName(), this.fileValue(option, value, where), "config");
    }
  }

  /** The file's JSON object, or null when there is no file; JG_ERR_CONFIG for anything else. */
  private readConfigObject(file: string): Record<string, unknown> | null {
    let text: string;
    try {
      const bytes = statSync(file).size;
      if (bytes > CONFIG_FILE_BYTES_MAX) this.configError(file, `${bytes} bytes, more than the ${CONFIG_FILE_BYTES_MAX} read`);
      text = readFileSync(file, "utf8");
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "ENOENT" || code === "ENOTDIR") return null;
      if (code === undefined) throw e;
      return this.configError(file, `cannot read it (${code})`);
    }
    let values: unknown;
    try {
      values = JSON.parse(text);
    } catch (e) {
      this.configError(file, `not JSON: ${(e as Error).message}`);
    }
    if (typeof values !== "object" || values === null || Array.isArray(values))
      this.configError(file, 'not a JSON object of flags and values, e.g. {"http-port": 8080}');
    return values as Record<string, unknown>;
  }

  /** A file value: true or false for a switch; a string or number through the flag's parser; a list for a flag that collects its values (its default is a list). */
  private fileValue(option: Option, value: unknown, where: string): unknown {
    if (isSwitch(option)) {
      // `"plaintext": false` is --no-plaintext: the key is the positive name.
      if (typeof value !== "boolean") this.refuse(option, where, "expected true or false");
      return value;
    }
    if (Array.isArray(option.defaultValue) && Array.isArray(value)) {
      return value.reduce(
        (previous: unknown, item: unknown) => this.parsed(option, this.fileScalar(option, item, where), where, previous),
        option.defaultValue,
      );
    }
    return this.parsed(option, this.fileScalar(option, value, where), where);
  }

  private fileScalar(option: Option, value: unknown, where: string): string {
    if (typeof value === "string") return value;
    if (typeof value === "number" && Number.isFinite(value)) return String(value);
    return this.refuse(option, where, `expected a string or a number${Array.isArray(option.defaultValue) ? ", or a list of them" : ""}`);
  }

  /** A switch's variable: true, false, 1 or 0. */
  private switchValue(option: Option, raw: string, where: string): boolean {
    const text = raw.trim().toLowerCase();
    if (text === "true" || text === "1") return true;
    if (text === "false" || text === "0") return false;
    return this.refuse(option, where, "expected true, false, 1 or 0");
  }

  /** A value through the option's parser (commander's choices too), refused as on the command line but naming where it came from. */
  private parsed(option: Option, raw: string, where: string, previous: unknown = this.getOptionValue(option.attributeName())): unknown {
    if (option.parseArg === undefined) return raw;
    try {
      return option.parseArg(raw, previous);
    } catch (e) {
      if (isRefusal(e)) return this.refuse(option, where, e.message);
      throw e;
    }
  }

  /** Whether nothing but the default set the option (the command line sets 'cli'). */
  private atDefault(option: Option): boolean {
    const source = this.getOptionValueSource(option.attributeName());
    return source === undefined || source === "default";
  }

  /** A value the option cannot take: commander's invalid-argument error (exit code 2 from scripts/cli.ts main), naming where it came from. */
  private refuse(option: Option, where: string, detail: string): never {
    this.error(`error: ${where} (${option.long}): ${detail}`, { exitCode: EXIT_BAD_CONFIGURATION, code: "commander.invalidArgument" });
    throw new Error("unreachable: Command.error throws or exits");
  }

  /** A config file that cannot be read as one: JG_ERR_CONFIG, exit code 2. */
  private configError(file: string, detail: string): never {
    this.error(`jamgate: JG_ERR_CONFIG: ${file}: ${detail}`, { exitCode: EXIT_BAD_CONFIGURATION, code: "JG_ERR_CONFIG" });
    throw new Error("unreachable: Command.error throws or exits");
  }
}

/** `--print-config` of a command of the program scripts/cli.ts makes (a ConfiguredCommand). */
export function printConfig(command: Command, write?: (line: string) => void): void {
  if (!(command instanceof ConfiguredCommand)) throw new Error("--print-config needs a command made by ConfiguredCommand (gateway/config.ts)");
  command.printConfig(write);
}
