/**
 * Strict command-line flags for the benchmark scripts, on node:util parseArgs.
 *
 * Each script declares its flags once: kind, default and one line of help. `--help` prints the
 * usage to stdout and exits 0. An unknown flag, a flag without its value, a number that is not
 * finite or a value outside a flag's choices prints one line naming the flag, then the usage, to
 * stderr and exits 2. Scripts parse their flags first, so a bad command line starts nothing.
 */
import { parseArgs } from "node:util";

/** A number. `default: null` means off unless given. */
export interface NumberFlag {
  readonly kind: "number";
  readonly default: number | null;
  readonly help: string;
}

/** Numbers separated by commas, e.g. `--delays 0,5`. */
export interface NumberListFlag {
  readonly kind: "numbers";
  readonly default: readonly number[];
  readonly help: string;
}

/** A string. `default: null` means off unless given. */
export interface StringFlag {
  readonly kind: "string";
  readonly default: string | null;
  readonly help: string;
  /** The only values accepted, when set. */
  readonly choices?: readonly string[];
  /** What stands for the value in the usage, e.g. "DIR" (default "VALUE"). */
  readonly valueName?: string;
}

/** Present or not; false when absent. */
export interface BooleanFlag {
  readonly kind: "boolean";
  readonly help: string;
}

export type Flag = NumberFlag | NumberListFlag | StringFlag | BooleanFlag;

/** The value of each declared flag: a null default stays null when the flag is absent. */
export type FlagValues<F extends Record<string, Flag>> = {
  readonly [K in keyof F]: F[K] extends { kind: "number"; default: number }
    ? number
    : F[K] extends { kind: "number" }
      ? number | null
      : F[K] extends { kind: "numbers" }
        ? readonly number[]
        : F[K] extends { kind: "string"; default: string }
          ? string
          : F[K] extends { kind: "string" }
            ? string | null
            : boolean;
};

/** The usage text: how to run the script, what it does, and each flag with its default. */
export function usage(script: string, about: string, flags: Record<string, Flag>): string {
  const rows: [string, string][] = Object.entries(flags).map(([name, flag]) => [`--${name}${valueHint(flag)}`, `${flag.help}${defaultHint(flag)}`]);
  rows.push(["--help", "print this and exit"]);
  const width = Math.max(...rows.map((r) => r[0].length));
  const lines = rows.map(([left, right]) => `  ${left.padEnd(width)}  ${right}`);
  return `usage: node --import tsx ${script} [flags]\n\n${about}\n\nflags:\n${lines.join("\n")}\n`;
}

function valueHint(flag: Flag): string {
  if (flag.kind === "boolean") return "";
  if (flag.kind === "number") return " N";
  if (flag.kind === "numbers") return " N,N,…";
  if (flag.choices !== undefined) return ` ${flag.choices.join("|")}`;
  return ` ${flag.valueName ?? "VALUE"}`;
}

function defaultHint(flag: Flag): string {
  if (flag.kind === "boolean") return "";
  if (flag.default === null) return " (default: none)";
  if (flag.kind === "numbers") return ` (default ${flag.default.join(",")})`;
  return ` (default ${flag.default})`;
}

/** A number as written on the command line; null when it is not a finite number (Number("") is 0, so blanks are refused first). */
function toNumber(text: string): number | null {
  if (text.trim() === "") return null;
  const x = Number(text);
  return Number.isFinite(x) ? x : null;
}

/**
 * Reads `flags` from the command line (`--name value` or `--name=value`). Prints the usage and
 * exits 0 on `--help`; prints the error and the usage and exits 2 on a bad command line.
 */
export function parseFlags<F extends Record<string, Flag>>(
  script: string,
  about: string,
  flags: F,
  argv: readonly string[] = process.argv.slice(2),
): FlagValues<F> {
  if (Object.hasOwn(flags, "help")) throw new Error(`${script}: --help is built in, not a flag to declare`);
  const fail = (message: string): never => {
    process.stderr.write(`${script}: ${message}\n\n${usage(script, about, flags)}`);
    process.exit(2);
  };

  const options: Record<string, { type: "string" | "boolean" }> = { help: { type: "boolean" } };
  for (const [name, flag] of Object.entries(flags)) options[name] = { type: flag.kind === "boolean" ? "boolean" : "string" };
  let given: Record<string, string | boolean | (string | boolean)[] | undefined> = {};
  try {
    given = parseArgs({ args: [...argv], options, strict: true, allowPositionals: false }).values;
  } catch (e) {
    // parseArgs's own errors name the flag; the one for a value starting with "-" spans lines.
    if (!(e instanceof Error) || !String((e as { code?: unknown }).code).startsWith("ERR_PARSE_ARGS")) throw e;
    fail(e.message.replace(/\s*\n\s*/g, " "));
  }

  if (given.help === true) {
    process.stdout.write(usage(script, about, flags));
    process.exit(0);
  }

  const values: Record<string, number | readonly number[] | string | boolean | null> = {};
  for (const [name, flag] of Object.entries(flags)) {
    const text = given[name];
    if (flag.kind === "boolean") {
      values[name] = text === true;
    } else if (typeof text !== "string") {
      values[name] = flag.default;
    } else if (flag.kind === "number") {
      values[name] = toNumber(text) ?? fail(`--${name} takes a number, not "${text}"`);
    } else if (flag.kind === "numbers") {
      values[name] = text.split(",").map((part) => toNumber(part) ?? fail(`--${name} takes numbers separated by commas, not "${text}"`));
    } else {
      if (flag.choices !== undefined && !flag.choices.includes(text)) fail(`--${name} takes ${flag.choices.join(" or ")}, not "${text}"`);
      values[name] = text;
    }
  }
  return values as FlagValues<F>;
}
