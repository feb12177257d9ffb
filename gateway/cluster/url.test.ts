import { Command, type CommanderError } from "commander";
import { describe, expect, it } from "vitest";
import { isBadCommandLine } from "../../node/cli.ts";
import { parseClusterUrl } from "./url.ts";

/**
 * `--cluster VALUE` through commander as gateway/cli.ts declares the flag (its parser, exitOverride
 * as scripts/cli.ts sets on every command): what commander writes to stderr, and what it throws to
 * the program's main.
 */
function commandLine(value: string) {
  const stderr: string[] = [];
  const program = new Command()
    .exitOverride()
    .configureOutput({ writeErr: (text) => void stderr.push(text), writeOut: () => {} })
    .option("--cluster <url>", "the cluster's Redis", (v: string) => parseClusterUrl(v).text)
    .action(() => {});
  let thrown: Error | null = null;
  try {
    program.parse(["--cluster", value], { from: "user" });
  } catch (e) {
    thrown = e as Error;
  }
  return { stderr: stderr.join(""), thrown };
}

describe("--cluster URL", () => {
  it("takes redis:// and rediss:// with a host, an optional port, database and ACL user", () => {
    expect(parseClusterUrl("redis://10.0.0.5")).toMatchObject({ host: "10.0.0.5", port: 6379, db: 0, username: null, tls: false, channelPrefix: "jamgate:0:" });
    expect(parseClusterUrl("redis://redis.internal:6380/3")).toMatchObject({
      host: "redis.internal",
      port: 6380,
      db: 3,
      text: "redis://redis.internal:6380/3",
    });
    expect(parseClusterUrl("rediss://jamgate@[::1]:6390/")).toMatchObject({ host: "::1", port: 6390, db: 0, username: "jamgate", tls: true });
    // The database names the channels too: Redis's pub/sub is not scoped by database.
    expect(parseClusterUrl("redis://h/7").channelPrefix).toBe("jamgate:7:");
  });

  it.each([
    ["http://h:6379", /expected redis:\/\/ or rediss:\/\//],
    ["redis://:secret@h:6379", /a password does not go in the URL.*--cluster-password-file/],
    ["redis://user:secret@h", /a password does not go in the URL/],
    ["redis://h:6379/db1", /the path is the database number/],
    ["redis://h:6379/1/2", /the path is the database number/],
    ["redis://h:6379/0?tls=1", /no query or fragment/],
    ["redis://h:6379/99999999", /the path is the database number/],
    ["localhost:6379", /expected redis:\/\//],
    ["not a url", /not a URL/],
  ])("refuses %s (JG_ERR_CLI_ARGUMENT, a bad command line)", (value, why) => {
    expect(() => parseClusterUrl(value)).toThrow(why);
    try {
      parseClusterUrl(value);
    } catch (e) {
      // One holding a password is not commander's to report: it would repeat the value as given (below).
      expect((e as { code: string }).code).toBe(value.includes("secret") ? "JG_ERR_CLI_ARGUMENT" : "commander.invalidArgument");
      expect((e as Error).message).toMatch(/^JG_ERR_CLI_ARGUMENT: --cluster /);
      // A password given is not repeated.
      expect((e as Error).message).not.toContain("secret");
    }
  });
});

describe("--cluster on the command line", () => {
  it.each(["redis://:hunter2@127.0.0.1:6379/0", "redis://jamgate:hunter2@10.0.0.5/1", "rediss://u:hunter2@[::1", "http://u:hunter2@h:6379"])(
    "refuses %s as a bad command line without writing the password anywhere",
    (value) => {
      const { stderr, thrown } = commandLine(value);
      expect(stderr).not.toContain("hunter2");
      expect(thrown).not.toBeNull();
      expect(thrown!.message).not.toContain("hunter2");
      expect(thrown!.message).toMatch(/^JG_ERR_CLI_ARGUMENT: --cluster "[a-z]+:\/\/[a-z]*:\*\*\*@/);
      // scripts/cli.ts main: exit status 2, its message on stderr once.
      expect(isBadCommandLine(thrown as CommanderError)).toBe(true);
    },
  );

  it("still names the value of a refusal that holds no password, as commander does", () => {
    const { stderr, thrown } = commandLine("http://127.0.0.1:6379");
    expect(stderr).toMatch(
      /argument 'http:\/\/127\.0\.0\.1:6379' is invalid\. JG_ERR_CLI_ARGUMENT: --cluster "http:\/\/127\.0\.0\.1:6379": expected redis:\/\//,
    );
    expect(isBadCommandLine(thrown as CommanderError)).toBe(true);
  });
});
