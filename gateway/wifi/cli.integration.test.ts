/**
 * `jamgate router …` and `jamgate wifi …` against a real `jamgate start`, each a process as a user
 * runs it, finding the gateway through its data dir's endpoints.json: accounts made and topped up,
 * routers onboarded with and without an owner (the new owner funded with exactly the stake, the
 * stake locked), the printed MQTT credentials accepted by the broker, a RADIUS router's shared
 * secret the one the gateway keeps, then list, show, set-price, deregister and balance as the
 * service's state has them; bad flags and unknown ids refused with their codes.
 */
import { execFile } from "node:child_process";
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import mqtt from "mqtt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { keyFromJson } from "../../devices/keys.ts";
import { tempDir } from "../../node/testing/fixtures.ts";
import { freePort } from "../../node/testing/ports.ts";
import { JAMGATE_BIN, runCli, type RunningCli } from "../../scripts/testing/process.ts";
import { radclient } from "../testing/radclient.ts";

const run = promisify(execFile);
/** A command's exit code, stdout and stderr, whether it failed or not. */
async function jamgate(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [JAMGATE_BIN, ...args], { timeout: 180_000, maxBuffer: 16 * 1024 * 1024 });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const failed = e as { code?: number; stdout?: string; stderr?: string };
    return { code: failed.code ?? -1, stdout: failed.stdout ?? "", stderr: failed.stderr ?? "" };
  }
}

/** A command's one JSON object (--json), after checking it exited 0 and printed exactly one line. */
async function jamgateJson(...args: string[]): Promise<Record<string, unknown>> {
  const result = await jamgate(...args, "--json");
  expect(result.code, result.stderr).toBe(0);
  const lines = result.stdout.split("\n").filter((l) => l.trim() !== "");
  expect(lines, result.stdout).toHaveLength(1);
  return JSON.parse(lines[0]!) as Record<string, unknown>;
}

const SLOT_MS = 500;
let dataDir: string;
let dir: string;
let gateway: RunningCli;
let radiusPort: number;
const at = () => ["--data-dir", dataDir, "--timeout-ms", "120000"];

beforeAll(async () => {
  dataDir = join(tempDir(), "gw");
  dir = tempDir();
  // --radius-port 0 is off: a port free now, below the ephemeral range (freePort says why).
  radiusPort = await freePort();
  gateway = runCli([
    "start",
    "--data-dir",
    dataDir,
    "--mqtt-port",
    "0",
    "--ws-port",
    "0",
    "--http-port",
    "0",
    "--rpc-port",
    "0",
    "--radius-port",
    String(radiusPort),
    "--slot-ms",
    String(SLOT_MS),
  ]);
  const started = JSON.parse(await gateway.waitFor(/"msg":"jamgate started"/, 90_000)) as { radius?: string | null };
  expect(started.radius).toMatch(new RegExp(`:${radiusPort}$`));
}, 120_000);

afterAll(async () => {
  if (gateway !== undefined && gateway.child.exitCode === null && gateway.child.signalCode === null) gateway.child.kill("SIGKILL");
  await gateway?.exited;
});

describe("Wi-Fi onboarding on a running jamgate", { timeout: 240_000 }, () => {
  let account: string;
  let plainRouter: string;
  let plainOwner: string;
  let radiusRouter: string;

  it("wifi account new registers a key written 0600; topup credits it once applied; balance reads it", async () => {
    const keyFile = join(dir, "alice.json");
    const made = await jamgateJson("wifi", "account", "new", "--key-out", keyFile, ...at());
    const key = keyFromJson(JSON.parse(readFileSync(keyFile, "utf8")));
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    expect(made).toMatchObject({ account: key.deviceId, status: "registered", keyFile });
    account = key.deviceId;

    const topped = await jamgateJson("wifi", "topup", "--account", account, "--amount-micros", "7000000", ...at());
    expect(topped).toMatchObject({ status: "applied", account, amountMicros: "7000000", balanceMicros: "7000000", lockedMicros: "0" });
    expect(await jamgateJson("wifi", "balance", "--account", account, ...at())).toMatchObject({
      account,
      balanceMicros: "7000000",
      lockedMicros: "0",
      registered: true,
    });
  });

  it("router onboard without --owner: a new owner funded with exactly the stake, the stake locked, MQTT credentials the broker accepts", async () => {
    const keyFile = join(dir, "cafe.json");
    const out = await jamgateJson(
      "router",
      "onboard",
      "--name",
      "café",
      "--price-micros-per-gb",
      "250000",
      "--stake",
      "5000000",
      "--location",
      "52.52,13.405",
      "--key-out",
      keyFile,
      ...at(),
    );
    const key = keyFromJson(JSON.parse(readFileSync(keyFile, "utf8")));
    const ownerKey = keyFromJson(JSON.parse(readFileSync(join(dir, "cafe.owner.json"), "utf8")));
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, "cafe.owner.json")).mode & 0o777).toBe(0o600);
    expect(out).toMatchObject({
      router: key.deviceId,
      status: "active",
      owner: ownerKey.deviceId,
      ownerCreated: true,
      priceMicrosPerGb: "250000",
      stakeMicros: "5000000",
      attested: false,
      radius: null,
    });
    plainRouter = key.deviceId;
    plainOwner = ownerKey.deviceId;
    // The operator's top-up was exactly the stake, and the stake is locked.
    expect(await jamgateJson("wifi", "balance", "--account", plainOwner, ...at())).toMatchObject({
      balanceMicros: "0",
      lockedMicros: "5000000",
      registered: true,
    });

    // The printed credentials open an MQTT session as the router, on its topics.
    const creds = out.mqtt as { url: string; username: string; password: string; topics: { usage: string; down: string } };
    expect(creds.topics).toMatchObject({ usage: `devices/${plainRouter}/up/router.usage`, down: `devices/${plainRouter}/down/#` });
    const endpoints = JSON.parse(readFileSync(join(dataDir, "endpoints.json"), "utf8")) as { mqtt: string };
    expect(creds.url).toBe(endpoints.mqtt);
    const client = await mqtt.connectAsync(creds.url, {
      username: creds.username,
      password: creds.password,
      clientId: creds.username,
      reconnectPeriod: 0,
      connectTimeout: 30_000,
    });
    try {
      const granted = await client.subscribeAsync(creds.topics.down, { qos: 1 });
      expect(granted.map((g) => g.qos)).toEqual([1]);
    } finally {
      await client.endAsync();
    }
  });

  it("router onboard --owner --radius --router-attested: the owner's balance pays the stake; the shared secret printed is the one the gateway keeps (0600)", async () => {
    const result = await jamgate(
      "router",
      "onboard",
      "--name",
      "lobby",
      "--price-micros-per-gb",
      "100",
      "--stake",
      "2000000",
      "--owner",
      account,
      "--radius",
      "--router-attested",
      "--radius-server",
      `127.0.0.1:${radiusPort}`,
      ...at(),
    );
    expect(result.code, result.stderr).toBe(0);
    const lines = result.stdout.split("\n");
    radiusRouter = /^router ([0-9a-f]{32}) "lobby" is registered on wifi-billing \(active\)$/m.exec(result.stdout)?.[1] ?? "";
    expect(radiusRouter, result.stdout).toMatch(/^[0-9a-f]{32}$/);
    const secret = lines.find((l) => l.startsWith("acct_server_shared_secret="))?.slice("acct_server_shared_secret=".length) ?? "";
    expect(secret.length).toBeGreaterThanOrEqual(16);
    for (const line of [
      `acct_server_addr=127.0.0.1`,
      `acct_server_port=${radiusPort}`,
      `nas_identifier=${radiusRouter}`,
      `HS_RADSECRET=${secret}`,
      `HS_NASID=${radiusRouter}`,
    ])
      expect(lines, line).toContain(line);
    const kept = join(dataDir, "radius", `${radiusRouter}.json`);
    expect(statSync(kept).mode & 0o777).toBe(0o600);
    expect(readFileSync(kept, "utf8")).toContain(secret);
    expect(await jamgateJson("wifi", "balance", "--account", account, ...at())).toMatchObject({ balanceMicros: "5000000", lockedMicros: "2000000" });

    // The printed lines are what a stock router needs: FreeRADIUS's radclient, given the server,
    // port, shared secret and NAS-Identifier as printed, is answered with an Accounting-Response.
    const server = lines.find((l) => l.startsWith("acct_server_addr="))!.slice("acct_server_addr=".length);
    const port = lines.find((l) => l.startsWith("acct_server_port="))!.slice("acct_server_port=".length);
    const nasIdentifier = lines.find((l) => l.startsWith("nas_identifier="))!.slice("nas_identifier=".length);
    const answer = await radclient(
      `${server}:${port}`,
      secret,
      `NAS-Identifier = "${nasIdentifier}", User-Name = "${account}", Acct-Session-Id = "cli-1", Acct-Status-Type = Start`,
    );
    expect(answer.exitCode, answer.output).toBe(0);
    expect(answer.output).toMatch(/Received Accounting-Response/);
    const wrong = await radclient(
      `${server}:${port}`,
      `${secret}x`,
      `NAS-Identifier = "${nasIdentifier}", User-Name = "${account}", Acct-Session-Id = "cli-2", Acct-Status-Type = Start`,
      1,
    );
    expect(wrong.output).not.toMatch(/Received Accounting-Response/);
  });

  it("router list and show give both routers as the service has them", async () => {
    const list = (await jamgateJson("router", "list", ...at())) as {
      routers: { router: string; name: string; owner: string; attested: boolean; status: string }[];
      count: number;
    };
    expect(list.count).toBe(2);
    expect(list.routers.map((r) => [r.router, r.name, r.owner, r.attested, r.status]).sort()).toEqual(
      [
        [plainRouter, "café", plainOwner, false, "active"],
        [radiusRouter, "lobby", account, true, "active"],
      ].sort(),
    );
    const table = await jamgate("router", "list", ...at());
    expect(table.stdout.split("\n")[0]).toMatch(/^ROUTER\s+NAME\s+OWNER\s+PRICE\s+STAKE\s+ATTESTED\s+STATUS$/);
    expect(await jamgateJson("router", "show", plainRouter, ...at())).toMatchObject({
      router: plainRouter,
      owner: plainOwner,
      name: "café",
      priceMicrosPerGb: "250000",
      stakeMicros: "5000000",
      capacityBitsPerSecond: "1000000000",
      attested: false,
      status: "active",
    });
  });

  it("router set-price and deregister wait until applied; show then has the new price and the deregistration", async () => {
    expect(await jamgateJson("router", "set-price", plainRouter, "--price-micros-per-gb", "300000", ...at())).toMatchObject({
      status: "applied",
      router: plainRouter,
      priceMicrosPerGb: "300000",
    });
    expect(await jamgateJson("router", "show", plainRouter, ...at())).toMatchObject({ priceMicrosPerGb: "300000" });
    expect(await jamgateJson("router", "deregister", radiusRouter, ...at())).toMatchObject({ status: "applied", router: radiusRouter });
    expect(await jamgateJson("router", "show", radiusRouter, ...at())).toMatchObject({ status: "deregistered" });
  });

  it("bad flags exit 2 before any request; unknown ids get the gateway's 404 code and exit 1", async () => {
    const zero = await jamgate("router", "onboard", "--name", "x", "--price-micros-per-gb", "0", "--stake", "1", "--key-out", join(dir, "x.json"), ...at());
    expect(zero.code).toBe(2);
    expect(zero.stderr).toContain("JG_ERR_CLI_ARGUMENT");
    const negative = await jamgate("wifi", "topup", "--account", account, "--amount-micros", "-5", ...at());
    expect(negative.code).toBe(2);
    const unknown = "ee".repeat(16);
    const show = await jamgate("router", "show", unknown, ...at());
    expect(show.code).toBe(1);
    expect(show.stderr).toContain("JG_ERR_WIFI_ROUTER");
    const topup = await jamgate("wifi", "topup", "--account", unknown, "--amount-micros", "5", ...at());
    expect(topup.code).toBe(1);
    expect(topup.stderr).toContain("JG_ERR_WIFI_ACCOUNT");
    const owner = await jamgate(
      "router",
      "onboard",
      "--name",
      "x",
      "--price-micros-per-gb",
      "1",
      "--stake",
      "1",
      "--owner",
      unknown,
      "--key-out",
      join(dir, "y.json"),
      ...at(),
    );
    expect(owner.code).toBe(1);
    expect(owner.stderr).toContain("JG_ERR_WIFI_ACCOUNT");
  });
});
