import { Command, CommanderError } from "commander";
import { describe, expect, it } from "vitest";
import { CliArgumentError, integerIn } from "./cli-args.ts";

/** Parses `args` with one `--n` flag taking integerIn(1, 10); the error commander ends with, or the value. */
function parse(args: string[]): number | CommanderError {
  const program = new Command().exitOverride().configureOutput({ writeErr: () => {} });
  program.option("--n <n>", "a count", integerIn(1, 10));
  try {
    program.parse(args, { from: "user" });
    return program.opts<{ n: number }>().n;
  } catch (e) {
    if (e instanceof CommanderError) return e;
    throw e;
  }
}

describe("integerIn", () => {
  it("takes decimal integers in its range", () => {
    expect(parse(["--n", "1"])).toBe(1);
    expect(parse(["--n", "10"])).toBe(10);
    expect(parse(["--n", " 7 "])).toBe(7);
  });

  it("refuses anything else with JG_ERR_CLI_ARGUMENT, naming the range", () => {
    for (const bad of ["0", "11", "-1", "1.5", "1e1", "0x5", "", "abc", "99999999999999999999"]) {
      expect(() => integerIn(1, 10)(bad), bad).toThrow(CliArgumentError);
      expect(() => integerIn(1, 10)(bad), bad).toThrow(`JG_ERR_CLI_ARGUMENT: expected an integer from 1 to 10, got "${bad}"`);
    }
  });

  it("is reported by commander as an invalid argument of the flag, not thrown through", () => {
    const e = parse(["--n", "11"]);
    expect(e).toBeInstanceOf(CommanderError);
    const error = e as CommanderError;
    expect(error.code).toBe("commander.invalidArgument");
    expect(error.message).toContain("option '--n <n>' argument '11' is invalid.");
    expect(error.message).toContain("JG_ERR_CLI_ARGUMENT: expected an integer from 1 to 10");
  });
});
