/**
 * The log of a long-running `jamgate` command (`jamgate start`, `jamgate node start`): pino, at
 * the level `--log-level` names, written to stdout as JSON lines (one object a line: journald, Loki,
 * `jq`) or as pino-pretty's readable lines (`--log-format`; by default pretty when stdout is a
 * terminal, JSON otherwise). gateway/README.md, "Logs", lists the lines an operator sees.
 *
 * pino is loaded when the logger is made and pino-pretty only when pretty lines are asked for: every
 * `jamgate` command loads this module for its flags.
 */
import { Option } from "commander";
import type { Logger } from "pino";

/** pino's levels, most severe first, and `silent` (nothing). */
export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** `auto`: pretty on a terminal, JSON elsewhere (a pipe, a file, a service manager). */
export const LOG_FORMATS = ["auto", "json", "pretty"] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

export interface LogOptions {
  readonly logLevel: LogLevel;
  readonly logFormat: LogFormat;
}

/** `--log-level`, default info. A value outside the choices is a usage error (commander.invalidArgument: exit 2, node/cli.ts isBadCommandLine). */
export function logLevelOption(): Option {
  return new Option("--log-level <level>", "the least severe log lines written (warn: refusals and problems only, no connect lines)")
    .choices(LOG_LEVELS)
    .default("info");
}

/** `--log-format`, default auto; validated as `--log-level`. */
export function logFormatOption(): Option {
  return new Option("--log-format <format>", "json: a JSON object a line; pretty: readable lines (pino-pretty); auto: pretty on a terminal, JSON elsewhere")
    .choices(LOG_FORMATS)
    .default("auto");
}

/** Whether lines are written pretty: asked for, or `auto` with stdout a terminal. */
export function isPretty(format: LogFormat, stdoutIsTty: boolean = process.stdout.isTTY === true): boolean {
  return format === "pretty" || (format === "auto" && stdoutIsTty);
}

/**
 * The command's root logger, writing to stdout. `base` fields go on every line (none by default:
 * no pid or hostname, which a service manager records anyway).
 *
 * Pretty lines are formatted on the calling thread, synchronously (pino-pretty's prettyFactory
 * behind a sync destination), not by pino.transport's worker thread: a terminal shows lines a
 * person reads, a few a second (a block a slot, connects), and one costs ~16 µs against ~1.6 µs as
 * JSON (measured: 20,000 block lines through pino into a counting sink, node 20, 2 cores). A worker
 * would be one more thread beside the node's (which `jamgate start` runs ahead of the rest) and
 * can lose the last lines when the process exits. Heavy logging (`--log-level debug` under load) is
 * for JSON, the default off a terminal.
 */
export async function openLogger(options: LogOptions, base: Record<string, unknown> | undefined = undefined): Promise<Logger> {
  const { pino } = await import("pino");
  const settings = { base, level: options.logLevel };
  if (!isPretty(options.logFormat)) return pino(settings);
  const { prettyFactory } = await import("pino-pretty");
  const prettify = prettyFactory({
    colorize: process.stdout.isTTY === true,
    singleLine: true,
    translateTime: "SYS:HH:MM:ss.l",
    // The component (node, gateway, http, …) before the message rather than among the fields.
    ignore: "component",
    messageFormat: "{if component}{component}: {end}{msg}",
  });
  const stdout = pino.destination({ dest: 1, sync: true });
  return pino(settings, { write: (line: string) => stdout.write(prettify(line)) });
}
