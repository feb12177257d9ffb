/**
 * The log an operator reads (gateway/README.md, "Logs"). First a gateway in this process with its
 * lines captured: a device's connects and disconnects with their protocol and reason (client
 * closed, taken over, token expired, keepalive), and refusals written once per device and code a
 * minute, the next line saying how many were left out. Then `jamgate start` as a process, its
 * stdout read as an operator's terminal or log collector would: JSON lines off a terminal, a
 * device registered, connected, refused by code, disconnected; "new chain at genesis", then
 * "resumed at slot N" after a restart; `--log-format pretty`; `--log-level warn`; bad values exit 2.
 */
import { execFile } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { connect as tcpConnect, type Socket } from "node:net";
import { join } from "node:path";
import { promisify } from "node:util";
import mqtt, { type MqttClient } from "mqtt";
import { generate } from "mqtt-packet";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DeviceClient } from "../devices/client.ts";
import { type DeviceKey, generateDeviceKey, mqttPassword } from "../devices/keys.ts";
import { decodeDeviceError, type DeviceError } from "../devices/messages.ts";
import { tempDir } from "../node/testing/fixtures.ts";
import { JAMGATE_BIN, runCli, type RunningCli } from "../scripts/testing/process.ts";
import { REFUSAL_LINE_INTERVAL_MS } from "./log-lines.ts";
import { type Harness, startHarness } from "./testing/harness.ts";
import { makeTestPki, type TestPki } from "./testing/tls.ts";

type Line = Record<string, unknown> & { readonly msg: string };

/** Polls `lines()` until one satisfies `match`, for at most `timeoutMs` (generous: the machine may be busy). */
async function lineWhere(lines: () => readonly Line[], match: (line: Line) => boolean, timeoutMs = 60_000): Promise<Line> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = lines().find(match);
    if (found !== undefined) return found;
    if (Date.now() > deadline)
      throw new Error(
        `no line as expected within ${timeoutMs} ms; lines:\n${lines()
          .map((l) => JSON.stringify(l))
          .join("\n")}`,
      );
    await new Promise((r) => setTimeout(r, 25));
  }
}

const GARBAGE = Buffer.from("not an envelope");

describe("a gateway's lines for its devices (in process)", { timeout: 120_000 }, () => {
  let harness: Harness;
  const captured: Line[] = [];
  const capture = (level: string) => (o: object, msg: string) => captured.push({ level, ...o, msg });
  /** The gateway's clock runs this far ahead of the wall clock: the suppression test moves it past a minute. */
  let aheadMs = 0;
  const clock = () => Date.now() + aheadMs;
  const password = (key: DeviceKey, validMs = 60_000) => mqttPassword(key, clock() + validMs);
  const clients: MqttClient[] = [];
  const lines = () => captured;

  let pki: TestPki;

  async function connect(key: DeviceKey, protocol: "mqtt" | "ws" | "mqtts" | "wss", pass = password(key)): Promise<MqttClient> {
    const { gateway } = harness;
    const port = { mqtt: gateway.mqttPort, ws: gateway.wsPort, mqtts: gateway.mqttsPort, wss: gateway.wssPort }[protocol];
    const client = await mqtt.connectAsync(`${protocol}://127.0.0.1:${port}`, {
      ...(protocol === "mqtts" || protocol === "wss" ? { ca: pki.ca } : {}),
      clientId: key.deviceId,
      username: key.deviceId,
      password: pass,
      protocolVersion: 4,
      reconnectPeriod: 0,
      clean: true,
    });
    clients.push(client);
    return client;
  }

  beforeAll(async () => {
    pki = makeTestPki(tempDir());
    harness = await startHarness({
      gateway: {
        logger: { info: capture("info"), warn: capture("warn"), error: capture("error") },
        now: clock,
        tls: { cert: pki.cert, key: pki.key, clientCa: null },
        mqttsPort: 0,
        wssPort: 0,
      },
    });
  }, 120_000);

  afterAll(async () => {
    for (const c of clients) c.end(true);
    await harness?.stop();
  });

  it("says who connected, how, and why each connection ended: taken over, client closed", async () => {
    const key = await harness.register();
    const id = key.deviceId;
    const first = await connect(key, "ws");
    const connected = await lineWhere(lines, (l) => l.msg === "device connected" && l.deviceId === id);
    expect(connected).toMatchObject({ level: "info", clientId: id, protocol: "ws", kind: "meter" });
    expect(String(connected.remoteAddress)).toContain("127.0.0.1");
    // The same client id again, over TCP: the first connection is taken over [MQTT-3.1.4-2].
    const second = await connect(key, "mqtt");
    expect(await lineWhere(lines, (l) => l.msg === "device disconnected" && l.deviceId === id)).toMatchObject({ reason: "taken over", clientId: id });
    await lineWhere(lines, (l) => l.msg === "device connected" && l.deviceId === id && l.protocol === "mqtt");
    // Over TLS and WebSocket over TLS, each taking the session over from the one before.
    await connect(key, "mqtts");
    await lineWhere(lines, (l) => l.msg === "device connected" && l.deviceId === id && l.protocol === "mqtts");
    const last = await connect(key, "wss");
    await lineWhere(lines, (l) => l.msg === "device connected" && l.deviceId === id && l.protocol === "wss");
    const ends = captured.filter((l) => l.msg === "device disconnected" && l.deviceId === id);
    expect(ends.map((l) => l.reason)).toEqual(["taken over", "taken over", "taken over"]);
    expect(second.connected).toBe(false);
    await last.endAsync();
    await lineWhere(lines, (l) => l.msg === "device disconnected" && l.deviceId === id && l.reason === "client closed");
    expect(first.connected).toBe(false);
  });

  it("closes a connection when its token expires, and says so", async () => {
    const key = await harness.register();
    await connect(key, "mqtt", password(key, 5_000));
    const line = await lineWhere(lines, (l) => l.msg === "device disconnected" && l.deviceId === key.deviceId);
    expect(line.reason).toBe("token expired");
  });

  it("says a connection whose keepalive lapsed was closed for it", async () => {
    const key = await harness.register();
    // A CONNECT with a 1 s keepalive and nothing after it: aedes closes it after 1.5 keepalives [MQTT-3.1.2-24].
    const socket: Socket = tcpConnect(harness.gateway.mqttPort, "127.0.0.1");
    socket.on("error", () => {});
    socket.write(
      generate({
        cmd: "connect",
        protocolId: "MQTT",
        protocolVersion: 4,
        clientId: key.deviceId,
        username: key.deviceId,
        password: Buffer.from(password(key)),
        keepalive: 1,
        clean: true,
      }),
    );
    try {
      await lineWhere(lines, (l) => l.msg === "device connected" && l.deviceId === key.deviceId);
      const line = await lineWhere(lines, (l) => l.msg === "device disconnected" && l.deviceId === key.deviceId);
      expect(line.reason).toBe("keepalive");
    } finally {
      socket.destroy();
    }
  });

  it("writes one refusal line per device and code a minute, and the next says how many it left out", async () => {
    const key = await harness.register();
    const id = key.deviceId;
    const device = await connect(key, "mqtt");
    const errors: DeviceError[] = [];
    device.on("message", (_topic, payload) => errors.push(decodeDeviceError(new Uint8Array(payload))!));
    await device.subscribeAsync(`devices/${id}/down/errors`, { qos: 1 });
    const refused = () => captured.filter((l) => l.msg === "envelope refused" && l.deviceId === id);
    for (let i = 0; i < 5; i++) await device.publishAsync(`devices/${id}/up/meter.reading`, GARBAGE, { qos: 1 });
    await lineWhere(
      () => errors.map((e) => ({ msg: "error", code: e.code })),
      () => errors.length === 5,
    );
    // Each refusal reached the device; the log has the first.
    expect(new Set(errors.map((e) => e.code))).toEqual(new Set(["JG_ERR_ENVELOPE_MALFORMED"]));
    expect(refused()).toHaveLength(1);
    expect(refused()[0]).toMatchObject({ level: "warn", code: "JG_ERR_ENVELOPE_MALFORMED", seq: null });
    expect(refused()[0]).not.toHaveProperty("suppressed");
    // A wrong password, twice: one line, with the device id and the code.
    for (let i = 0; i < 2; i++) await expect(connect(key, "mqtt", `v1.${clock() + 60_000}.bad`)).rejects.toThrow();
    const auth = captured.filter((l) => l.msg === "device refused" && l.deviceId === id);
    expect(auth).toHaveLength(1);
    expect(auth[0]).toMatchObject({ level: "warn", code: "JG_ERR_MQTT_AUTH", protocol: "mqtt" });
    // A minute on (the gateway's clock), the next refusal is written with the count of those left out.
    aheadMs += REFUSAL_LINE_INTERVAL_MS;
    await device.publishAsync(`devices/${id}/up/meter.reading`, GARBAGE, { qos: 1 });
    const next = await lineWhere(lines, (l) => l.msg === "envelope refused" && l.deviceId === id && l.suppressed !== undefined);
    expect(next).toMatchObject({ code: "JG_ERR_ENVELOPE_MALFORMED", suppressed: 4 });
    expect(refused()).toHaveLength(2);
  });

  it("says a subscription to another device's topic was refused", async () => {
    const key = await harness.register();
    const device = await connect(key, "mqtt");
    // SUBACK 0x80 [MQTT-3.9.3]: mqtt.js rejects the subscription.
    await expect(device.subscribeAsync(`devices/${generateDeviceKey().deviceId}/down/receipts`, { qos: 1 })).rejects.toThrow(/Subscribe error/);
    const line = await lineWhere(lines, (l) => l.msg === "device refused" && l.deviceId === key.deviceId);
    expect(line).toMatchObject({ code: "JG_ERR_MQTT_TOPIC", clientId: key.deviceId });
  });
});

const exec = promisify(execFile);
/** A `jamgate` command run to its end: exit code and output. */
async function jamgate(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await exec(process.execPath, [JAMGATE_BIN, ...args], { timeout: 120_000 });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const failed = e as { code?: number; stdout?: string; stderr?: string };
    return { code: failed.code ?? -1, stdout: failed.stdout ?? "", stderr: failed.stderr ?? "" };
  }
}

/** The JSON lines a process wrote (a line that is not JSON fails the test: off a terminal every line is). */
function jsonLines(proc: RunningCli): Line[] {
  return proc
    .output()
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => {
      try {
        return JSON.parse(l) as Line;
      } catch {
        throw new Error(`not a JSON line: ${l}`);
      }
    });
}

async function stop(proc: RunningCli): Promise<void> {
  if (proc.child.exitCode === null && proc.child.signalCode === null) proc.child.kill("SIGTERM");
  const { code } = await proc.exited;
  expect(code).toBe(0);
}

describe("jamgate start's log (a process)", { timeout: 240_000 }, () => {
  const dataDir = join(tempDir(), "gw");
  const deviceDir = tempDir();
  const running: RunningCli[] = [];
  const start = (...flags: string[]) => {
    const proc = runCli([
      "start",
      "--data-dir",
      dataDir,
      ...["--mqtt-port", "0", "--ws-port", "0", "--http-port", "0", "--rpc-port", "0", "--radius-port", "0", "--slot-ms", "300"],
      ...flags,
    ]);
    running.push(proc);
    return proc;
  };
  let gateway: RunningCli;
  let registered: DeviceKey;

  afterAll(async () => {
    for (const p of running) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill("SIGKILL");
    await Promise.all(running.map((p) => p.exited));
  });

  it("a new data dir: JSON lines, 'new chain at genesis' and then the listening line", async () => {
    gateway = start();
    const lines = () => jsonLines(gateway);
    const started = await lineWhere(lines, (l) => l.msg === "jamgate started", 120_000);
    const all = lines();
    const genesis = all.findIndex((l) => l.msg === "new chain at genesis");
    expect(genesis).toBeGreaterThanOrEqual(0);
    expect(genesis).toBeLessThan(all.findIndex((l) => l.msg === "jamgate started"));
    // The best block as the node opened: the genesis block (slot 0), or a first block on a machine busy enough to take a slot (300 ms) to ask.
    expect(all[genesis]).toMatchObject({ level: 30, component: "jamgate", slot: expect.any(Number) });
    expect(all[genesis]!.hash).toMatch(/^[0-9a-f]{16}$/);
    expect(started).toMatchObject({
      dataDir,
      mqtt: expect.stringMatching(/^mqtt:\/\//),
      ws: expect.stringMatching(/^ws:\/\//),
      http: expect.stringMatching(/^http:\/\//),
    });
    expect(all.some((l) => typeof l.msg === "string" && l.msg.startsWith("resumed at slot"))).toBe(false);
  });

  it("a device registered, connected, refused by code and disconnected: a line each", async () => {
    const lines = () => jsonLines(gateway);
    const started = await lineWhere(lines, (l) => l.msg === "jamgate started");
    const http = String(started.http);
    const token = readFileSync(join(dataDir, "operator-token"), "utf8").trim();
    const key = generateDeviceKey();
    const id = key.deviceId;
    const register = (bearer: string) =>
      fetch(`${http}/v1/devices`, {
        method: "POST",
        headers: { authorization: `Bearer ${bearer}`, "content-type": "application/json" },
        body: JSON.stringify({ publicKey: Buffer.from(key.publicKey).toString("hex"), kind: "meter" }),
      });

    expect((await register("wrong")).status).toBe(401);
    expect(await lineWhere(lines, (l) => l.msg === "device registration refused" && l.deviceId === id)).toMatchObject({
      level: 40,
      component: "http",
      code: "JG_ERR_OPERATOR_TOKEN",
      kind: "meter",
    });
    expect((await register(token)).status).toBe(202);
    expect(await lineWhere(lines, (l) => l.msg === "device registered" && l.deviceId === id)).toMatchObject({
      level: 30,
      component: "registration",
      kind: "meter",
      service: "telemetry",
    });
    expect((await register(token)).status).toBe(409);
    await lineWhere(lines, (l) => l.msg === "device registration refused" && l.deviceId === id && l.code === "JG_ERR_DEVICE_EXISTS");
    registered = key;

    const device = await DeviceClient.connect({ url: String(started.mqtt), key, dataDir: deviceDir });
    expect(await lineWhere(lines, (l) => l.msg === "device connected" && l.deviceId === id)).toMatchObject({
      level: 30,
      component: "gateway",
      clientId: id,
      protocol: "mqtt",
      remoteAddress: expect.stringContaining("127.0.0.1"),
    });
    const receipt = new Promise<number>((resolve) => device.once("receipt", (r) => resolve(r.seq)));
    expect(device.send("meter.reading", [{ importWh: 1 }]).ok).toBe(true);
    expect(await receipt).toBe(0);
    await device.close();
    expect(await lineWhere(lines, (l) => l.msg === "device disconnected" && l.deviceId === id)).toMatchObject({ level: 30, reason: "client closed" });
    // A good envelope gets no line.
    expect(lines().filter((l) => l.msg === "envelope refused")).toEqual([]);

    const options = { protocolVersion: 4 as const, reconnectPeriod: 0, clean: true };
    await expect(mqtt.connectAsync(String(started.mqtt), { ...options, clientId: id, username: id, password: "v1.1.bad" })).rejects.toThrow();
    expect(await lineWhere(lines, (l) => l.msg === "device refused" && l.deviceId === id)).toMatchObject({
      level: 40,
      component: "gateway",
      code: "JG_ERR_MQTT_AUTH",
      remoteAddress: expect.stringContaining("127.0.0.1"),
    });
    const stranger = generateDeviceKey();
    await expect(
      mqtt.connectAsync(String(started.mqtt), {
        ...options,
        clientId: stranger.deviceId,
        username: stranger.deviceId,
        password: mqttPassword(stranger, Date.now() + 60_000),
      }),
    ).rejects.toThrow();
    expect(await lineWhere(lines, (l) => l.msg === "device refused" && l.deviceId === stranger.deviceId)).toMatchObject({
      level: 40,
      code: "JG_ERR_DEVICE_UNREGISTERED",
    });

    const raw = await mqtt.connectAsync(String(started.mqtt), { ...options, clientId: id, username: id, password: mqttPassword(key, Date.now() + 60_000) });
    await raw.publishAsync(`devices/${id}/up/meter.reading`, GARBAGE, { qos: 1 });
    expect(await lineWhere(lines, (l) => l.msg === "envelope refused" && l.deviceId === id)).toMatchObject({
      level: 40,
      code: "JG_ERR_ENVELOPE_MALFORMED",
    });
    await raw.endAsync();
  });

  it("after a restart: 'resumed at slot N' with N at least the last block seen, the devices known; --log-format pretty writes readable lines", async () => {
    const lastSlot = Math.max(...jsonLines(gateway).flatMap((l) => (l.msg === "block" ? [Number(l.slot)] : [])));
    expect(lastSlot).toBeGreaterThan(0);
    await stop(gateway);
    gateway = start("--log-format", "pretty");
    const resumed = await gateway.waitFor(/resumed at slot \d+/, 120_000);
    await gateway.waitFor(/jamgate started/);
    expect(Number(/resumed at slot (\d+)/.exec(resumed)![1])).toBeGreaterThanOrEqual(lastSlot);
    expect(resumed).toMatch(/INFO/);
    expect(resumed).toMatch(/"devices":1\b/);
    expect(resumed).toMatch(/"pendingEnvelopes":\d+/);
    const text = gateway
      .output()
      .split("\n")
      .filter((l) => l.trim() !== "");
    for (const l of text) expect(() => JSON.parse(l), l).toThrow();
    expect(text.some((l) => l.includes("new chain at genesis"))).toBe(false);
  });

  it("--log-level warn: refusals, and no info lines", async () => {
    await stop(gateway);
    gateway = start("--log-level", "warn");
    // The listening line is info: endpoints.json says the gateway is up.
    const endpointsFile = join(dataDir, "endpoints.json");
    const deadline = Date.now() + 120_000;
    while (!existsSync(endpointsFile) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const { mqtt: url } = JSON.parse(readFileSync(endpointsFile, "utf8")) as { mqtt: string };
    const device = await DeviceClient.connect({ url, key: registered, dataDir: deviceDir });
    await device.close();
    const stranger = generateDeviceKey();
    await expect(
      mqtt.connectAsync(url, {
        protocolVersion: 4,
        reconnectPeriod: 0,
        clientId: stranger.deviceId,
        username: stranger.deviceId,
        password: mqttPassword(stranger, Date.now() + 60_000),
      }),
    ).rejects.toThrow();
    const lines = () => jsonLines(gateway);
    await lineWhere(lines, (l) => l.msg === "device refused" && l.deviceId === stranger.deviceId && l.level === 40);
    // The connect and disconnect came before the refusal, and the start before both: none of them has a line.
    expect(lines().filter((l) => Number(l.level) < 40)).toEqual([]);
    await stop(gateway);
    expect(lines().filter((l) => Number(l.level) < 40)).toEqual([]);
  });

  it("a bad --log-level or --log-format is a bad command line (exit 2)", async () => {
    const level = await jamgate("start", "--log-level", "loud", "--data-dir", join(tempDir(), "unused"));
    expect(level.code).toBe(2);
    expect(level.stderr).toContain("--log-level");
    const format = await jamgate("node", "start", "--log-format", "xml", "--data-dir", join(tempDir(), "unused"));
    expect(format.code).toBe(2);
    expect(format.stderr).toContain("--log-format");
  });
});
