import { describe, expect, it } from "vitest";
import { parseClusterUrl } from "./url.ts";

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
      expect((e as { code: string }).code).toBe("commander.invalidArgument");
      expect((e as Error).message).toMatch(/^JG_ERR_CLI_ARGUMENT: --cluster /);
      // A password given is not repeated.
      expect((e as Error).message).not.toContain("secret");
    }
  });
});
