/**
 * `jamgate device register --from FILE` (commander, in-process) against a real gateway and node
 * (gateway/testing/harness.ts, 100 ms slots) serving its HTTP API on a free loopback port: a fleet
 * file registered through `POST /v1/devices/bulk` in several requests, with progress and totals; a
 * file with bad rows refused whole, before anything is sent; the flags that do not go with --from.
 */
import { createHash } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Command } from "commander";
import type { FastifyInstance } from "fastify";
import sodium from "sodium-native";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { buildHttp } from "../gateway/http.ts";
import { type Harness, OPERATOR_TOKEN, startHarness } from "../gateway/testing/harness.ts";
import { registerDeviceCommands } from "./cli.ts";
import { deviceIdOf, toHex } from "./envelope.ts";
import { BULK_REGISTRATIONS_MAX } from "./protocol/registration-rows.ts";

/** The public key of test device `n` (hex), derived by libsodium (node/crypto/sodium-native.d.ts declares only what the node uses). */
function key(n: number): string {
  const publicKey = Buffer.alloc(32);
  (sodium as unknown as { crypto_sign_seed_keypair(pk: Uint8Array, sk: Uint8Array, seed: Uint8Array): void }).crypto_sign_seed_keypair(
    publicKey,
    Buffer.alloc(64),
    createHash("sha256").update(`register-from-file-test/${n}`).digest(),
  );
  return toHex(publicKey);
}
const idOf = (publicKeyHex: string) => deviceIdOf(Uint8Array.from(Buffer.from(publicKeyHex, "hex")));

let harness: Harness;
let app: FastifyInstance;
let url: string;
let stdout: string[];
let stderr: string[];

beforeAll(async () => {
  harness = await startHarness({ slotMs: 100 });
  app = buildHttp({ operatorToken: OPERATOR_TOKEN, registrations: harness.registrations, metrics: harness.gateway.metrics, count: () => undefined });
  await app.listen({ port: 0, host: "127.0.0.1" });
  url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
}, 60_000);

afterAll(async () => {
  await app?.close();
  await harness?.stop();
}, 60_000);

beforeEach(() => {
  stdout = [];
  stderr = [];
  vi.spyOn(console, "log").mockImplementation((line: string) => void stdout.push(line));
  vi.spyOn(process.stderr, "write").mockImplementation((chunk: string | Uint8Array) => {
    stderr.push(String(chunk));
    return true;
  });
});
afterEach(() => vi.restoreAllMocks());

async function jamgate(...args: string[]): Promise<void> {
  const program = new Command("jamgate").exitOverride();
  registerDeviceCommands(program);
  await program.parseAsync(["device", ...args], { from: "user" });
}

const tempFile = (name: string, text: string) => {
  const path = join(mkdtempSync(join(tmpdir(), "jg-register-from-")), name);
  writeFileSync(path, text);
  return path;
};
const registered = async (publicKey: string) => (await app.inject({ url: `/v1/devices/${idOf(publicKey)}` })).json().status === "registered";
const flags = ["--gateway", () => url, "--token", OPERATOR_TOKEN, "--poll-ms", "50"] as const;
const gatewayFlags = () => flags.map((f) => (typeof f === "function" ? f() : f));

describe("jamgate device register --from FILE", () => {
  it("registers a JSON-lines fleet in requests of BULK_REGISTRATIONS_MAX, counting devices already registered, and prints the totals", async () => {
    // 1,000 of the 6,000 are on the ledger already (an interrupted earlier run).
    const earlier = (
      await app.inject({
        method: "POST",
        url: "/v1/devices/bulk",
        headers: { authorization: `Bearer ${OPERATOR_TOKEN}` },
        payload: { devices: Array.from({ length: 1_000 }, (_, i) => ({ publicKey: key(i), kind: "meter" })) },
      })
    ).json() as { batch: string };
    const deadline = Date.now() + 120_000;
    while ((await app.inject({ url: `/v1/devices/bulk/${earlier.batch}` })).json().pending > 0) {
      if (Date.now() > deadline) throw new Error("the earlier registrations did not settle");
      await new Promise((r) => setTimeout(r, 100));
    }
    const lines = Array.from({ length: 6_000 }, (_, i) => JSON.stringify(i % 2 === 0 ? { publicKey: key(i), kind: "meter" } : { publicKey: key(i) }));
    const path = tempFile("fleet.jsonl", `${lines.join("\n")}\n\n`);

    const requests = vi.spyOn(harness.registrations, "registerMany");
    await jamgate("register", "--from", path, "--kind", "meter", ...gatewayFlags());

    expect(requests.mock.calls.map(([rows]) => rows.length)).toEqual([BULK_REGISTRATIONS_MAX, 6_000 - BULK_REGISTRATIONS_MAX]);
    const summary = JSON.parse(stdout.at(-1)!);
    expect(summary).toMatchObject({ rows: 6_000, registered: 6_000, alreadyRegistered: 1_000, failed: 0, failures: [] });
    // 5,000 new rows at 1,489 a package: 4, or 5 when a request's last partial package left before the next request's rows came.
    expect(summary.packages).toBeGreaterThanOrEqual(4);
    expect(summary.packages).toBeLessThanOrEqual(5);
    for (const n of [0, 999, 1_000, 4_999, 5_000, 5_999]) expect(await registered(key(n))).toBe(true);
    expect(stderr.join("")).toMatch(/registered 6,000\/6,000 · pending 0 · failed 0 · already registered 1,000 · packages \d/);
  }, 240_000);

  it("reads CSV with a header, its deviceId column checked against each key", async () => {
    const rows = [7_000, 7_001, 7_002].map((n) => `${idOf(key(n))},${key(n).toUpperCase()},inverter`);
    const path = tempFile("fleet.csv", `deviceId,publicKey,kind\n${rows.join("\r\n")}\n`);
    await jamgate("register", "--from", path, ...gatewayFlags());
    expect(JSON.parse(stdout.at(-1)!)).toMatchObject({ rows: 3, registered: 3, failed: 0, packages: 1 });
    expect((await app.inject({ url: `/v1/devices/${idOf(key(7_001))}` })).json()).toMatchObject({ kind: "inverter", status: "registered" });
  }, 120_000);

  it("refuses a file with bad rows whole, naming each by its line, and registers none of it", async () => {
    const good = (n: number) => JSON.stringify({ publicKey: key(n), kind: "meter" });
    const text = [
      good(8_000),
      good(8_001),
      JSON.stringify({ publicKey: key(8_002), kind: "toaster" }),
      "{not json",
      JSON.stringify({ publicKey: key(8_003), kind: "meter", deviceId: idOf(key(8_004)) }),
      good(8_000),
      good(8_005),
    ].join("\n");
    const path = tempFile("fleet.jsonl", text);
    await expect(jamgate("register", "--from", path, ...gatewayFlags())).rejects.toMatchObject({ code: "JG_ERR_DEVICE_ROWS", exitCode: 1 });
    const said = stderr.join("");
    expect(said).toContain(`${path}:3: JG_ERR_DEVICE_KIND: kind "toaster" is not meter, inverter, router, client, agent`);
    expect(said).toContain(`${path}:4: JG_ERR_DEVICE_ROW: not JSON`);
    expect(said).toContain(`${path}:5: JG_ERR_DEVICE_ROW: deviceId ${idOf(key(8_004))} is not its key's`);
    expect(said).toContain(`${path}:6: JG_ERR_DEVICE_ROW: the same publicKey as line 1`);
    expect(said).toMatch(/JG_ERR_DEVICE_ROWS: 4 of 7 rows .* are bad .*; nothing was registered/);
    await new Promise((r) => setTimeout(r, 500)); // five slots: a package would have settled
    for (const n of [8_000, 8_001, 8_005]) expect((await app.inject({ url: `/v1/devices/${idOf(key(n))}` })).statusCode).toBe(403);
  }, 60_000);

  it("waits while the gateway's registrations in flight are at their bound, asking again, and gives up after --timeout-ms without progress", async () => {
    // A node whose slot is 10 minutes settles nothing here: 9,999 registrations stay in flight.
    const slow = await startHarness({ slotMs: 600_000 });
    const slowApp = buildHttp({ operatorToken: OPERATOR_TOKEN, registrations: slow.registrations, metrics: slow.gateway.metrics, count: () => undefined });
    try {
      await slowApp.listen({ port: 0, host: "127.0.0.1" });
      const slowUrl = `http://127.0.0.1:${(slowApp.server.address() as { port: number }).port}`;
      for (const [from, to] of [
        [20_000, 25_000],
        [25_000, 29_999],
      ] as const)
        await slow.registrations.registerMany(Array.from({ length: to - from }, (_, i) => ({ publicKey: key(from + i), kind: "meter" })));
      const path = tempFile("fleet.jsonl", [30_000, 30_001].map((n) => JSON.stringify({ publicKey: key(n), kind: "meter" })).join("\n"));
      const requests = vi.spyOn(slow.registrations, "registerMany");
      await expect(
        jamgate("register", "--from", path, "--gateway", slowUrl, "--token", OPERATOR_TOKEN, "--poll-ms", "50", "--timeout-ms", "1500"),
      ).rejects.toMatchObject({
        code: "JG_ERR_RPC_TIMEOUT",
      });
      const refused = await Promise.all(
        requests.mock.results.map((r) =>
          (r.value as Promise<unknown>).then(
            () => null,
            (e: { code?: string }) => e.code,
          ),
        ),
      );
      expect(refused.length).toBeGreaterThan(1);
      expect(new Set(refused)).toEqual(new Set(["JG_ERR_QUEUE_FULL"]));
      expect(slow.registrations.inFlightCount).toBe(9_999);
    } finally {
      await slowApp.close();
      await slow.stop();
    }
  }, 180_000);

  it("needs --kind or --from, and refuses --wait and --household beside --from", async () => {
    await expect(jamgate("register", "--token", "t")).rejects.toMatchObject({ code: "JG_ERR_CLI_ARGUMENT" });
    const path = tempFile("fleet.jsonl", `${JSON.stringify({ publicKey: key(9_000), kind: "meter" })}\n`);
    await expect(jamgate("register", "--from", path, "--wait", ...gatewayFlags())).rejects.toMatchObject({ code: "commander.conflictingOption" });
    await expect(jamgate("register", "--from", path, "--household", "00".repeat(16), ...gatewayFlags())).rejects.toMatchObject({
      code: "commander.conflictingOption",
    });
    await expect(jamgate("register", "--from", join(tmpdir(), "no-such-fleet.jsonl"), ...gatewayFlags())).rejects.toMatchObject({
      code: "JG_ERR_CLI_ARGUMENT",
    });
  });
});
