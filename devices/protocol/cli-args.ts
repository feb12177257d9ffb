/**
 * Command-line argument parsers every `jamgate` command shares (node/cli.ts, devices/cli.ts, the
 * gateway's and simulators' commands). Not protocol, but here because devices/cli.ts and node/
 * may both import this folder and nothing else of each other. No commander import (this folder
 * runs in browsers too): commander takes any error a parser throws with code
 * "commander.invalidArgument" as an invalid argument (its `_callParseArg`; its own
 * InvalidArgumentError is such an error) and reports it with the flag's name, a bad command line
 * (node/cli.ts `isBadCommandLine`). cli-args.test.ts checks that against commander itself.
 */

/** An argument a parser cannot take, in the shape commander reports as an invalid argument. */
export class CliArgumentError extends Error {
  readonly code = "commander.invalidArgument";
  readonly exitCode = 1;
  constructor(detail: string) {
    super(`JG_ERR_CLI_ARGUMENT: ${detail}`);
    this.name = "CliArgumentError";
  }
}

/** Parser for an integer in [min, max] (decimal digits only); errors name the range. */
export function integerIn(min: number, max: number): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
      throw new CliArgumentError(`expected an integer from ${min} to ${max}, got "${value}"`);
    }
    return n;
  };
}
