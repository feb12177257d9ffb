/** The endpoints file of a running `jamgate start`: written private and whole, read only while its process lives. */
import { spawnSync } from "node:child_process";
import { readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { tempDir } from "../node/testing/fixtures.ts";
import { dialHost, ENDPOINTS_FILE, type GatewayEndpoints, readEndpoints, removeEndpoints, writeEndpoints } from "./endpoints.ts";

const endpoints: GatewayEndpoints = {
  mqtt: "mqtt://127.0.0.1:1883",
  mqtts: null,
  ws: "ws://127.0.0.1:8083",
  http: "http://127.0.0.1:8080",
  rpc: "ws://127.0.0.1:19800",
  radius: "udp://127.0.0.1:1813",
  pid: process.pid,
};

describe("endpoints.json", () => {
  it("is written mode 0600 and read back while its process lives; removed, it names no gateway", () => {
    const dir = tempDir();
    writeFileSync(join(dir, ENDPOINTS_FILE), "{}", { mode: 0o644 });
    writeEndpoints(dir, endpoints);
    expect(statSync(join(dir, ENDPOINTS_FILE)).mode & 0o777).toBe(0o600);
    expect(readEndpoints(dir)).toEqual(endpoints);
    // A file of a gateway without RADIUS (or written before it had it) names none.
    const { radius: _, ...withoutRadius } = endpoints;
    writeEndpoints(dir, withoutRadius);
    expect(readEndpoints(dir)).toEqual({ ...withoutRadius, radius: null });
    removeEndpoints(dir);
    expect(() => readEndpoints(dir, "--http")).toThrow(
      expect.objectContaining({
        code: "JG_ERR_NO_GATEWAY",
        message: expect.stringContaining(
          `no running jamgate in ${dir} (no endpoints.json): start one with \`jamgate start --data-dir ${dir}\`, or give --http`,
        ),
      }),
    );
  });

  it("left behind by a killed process (its pid gone) names no gateway", () => {
    const dir = tempDir();
    const gone = spawnSync(process.execPath, ["-e", ""]).pid;
    writeEndpoints(dir, { ...endpoints, pid: gone });
    expect(() => readEndpoints(dir)).toThrow(
      expect.objectContaining({ code: "JG_ERR_NO_GATEWAY", message: expect.stringContaining(`names pid ${gone}, which is not running`) }),
    );
  });

  it("refuses a file that is not one, with the same code", () => {
    const dir = tempDir();
    for (const [text, why] of [
      ["not json", "not JSON"],
      [JSON.stringify({ ...endpoints, mqtt: "http://x:1" }), "no mqtt URL"],
      [JSON.stringify({ ...endpoints, rpc: 5 }), "mqtts, ws and rpc must each be a URL or null"],
      [JSON.stringify({ ...endpoints, radius: "http://127.0.0.1:1813" }), "radius must be a udp:// URL or null"],
      [JSON.stringify({ ...endpoints, pid: -1 }), "no pid"],
    ] as const) {
      writeFileSync(join(dir, ENDPOINTS_FILE), text);
      expect(() => readEndpoints(dir), text).toThrow(expect.objectContaining({ code: "JG_ERR_NO_GATEWAY", message: expect.stringContaining(why) }));
    }
    expect(() => writeEndpoints(dir, { ...endpoints, http: "" })).toThrow(/not.*valid/);
    expect(readFileSync(join(dir, ENDPOINTS_FILE), "utf8")).toContain('"pid":-1');
  });

  it("names the address a client dials: loopback for the unspecified ones, IPv6 in brackets", () => {
    expect(dialHost("0.0.0.0")).toBe("127.0.0.1");
    expect(dialHost("::")).toBe("[::1]");
    expect(dialHost("fd00::5")).toBe("[fd00::5]");
    expect(dialHost("127.0.0.2")).toBe("127.0.0.2");
  });
});
