/**
 * TLS on every edge: MQTT over TLS and WebSocket over TLS, HTTPS, the node's RPC over wss://, and
 * devices authenticated by a client certificate. Certificates are made with openssl for each run
 * (gateway/testing/tls.ts). One test runs `jamgate start` with --tls-cert/--tls-key and drives it
 * with the jamgate CLI and with mosquitto_rr --cafile, as a user would.
 */
import { execFile } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { get as httpsGet } from "node:https";
import { join } from "node:path";
import { promisify } from "node:util";
import mqtt from "mqtt";
import { afterEach, describe, expect, it } from "vitest";
import { DeviceClient } from "../devices/client.ts";
import { keyFromJson, mqttPassword } from "../devices/keys.ts";
import { decodeDeviceError, decodeReceipts, type Receipt } from "../devices/messages.ts";
import { FakeNode } from "../node/rpc/fake-node.ts";
import { RpcClient } from "../node/rpc/client.ts";
import { startRpcServer } from "../node/rpc/server.ts";
import { tempDir } from "../node/testing/fixtures.ts";
import { freePort } from "../node/testing/ports.ts";
import { JAMGATE_BIN, runCli, type RunningCli } from "../scripts/testing/process.ts";
import { buildHttp } from "./http.ts";
import { envelopeBytes, type Harness, startHarness } from "./testing/harness.ts";
import { makeTestPki, type TestPki } from "./testing/tls.ts";

const run = promisify(execFile);
const cleanups: (() => Promise<unknown>)[] = [];
const processes: RunningCli[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  for (const p of processes.splice(0)) {
    if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill("SIGTERM");
    await p.exited;
  }
});

let pki: TestPki | null = null;
function testPki(): TestPki {
  pki ??= makeTestPki(tempDir());
  return pki;
}

async function tlsHarness(): Promise<Harness> {
  const p = testPki();
  const h = await startHarness({ gateway: { tls: { cert: p.cert, key: p.key, clientCa: p.ca }, mqttsPort: 0, wssPort: 0 } });
  cleanups.push(() => h.stop());
  return h;
}

/** GET over HTTPS trusting `ca`: the body. */
function httpsText(url: string, ca: Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    httpsGet(url, { ca }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    }).on("error", reject);
  });
}

/** GET over HTTPS trusting `ca`: the status, or the error's message. */
function httpsStatus(url: string, ca?: Buffer): Promise<number | string> {
  return new Promise((resolve) => {
    httpsGet(url, ca === undefined ? {} : { ca }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    }).on("error", (e) => resolve(e.message));
  });
}

describe("TLS", () => {
  it("MQTT over TLS and over WebSocket over TLS: a device that trusts the CA settles; one that does not, fails the handshake", async () => {
    const h = await tlsHarness();
    const key = await h.register();
    const p = testPki();
    // The SDK over mqtts://, trusting the test CA.
    const client = await DeviceClient.connect({ url: `mqtts://127.0.0.1:${h.gateway.mqttsPort}`, key, dataDir: tempDir(), tls: { ca: p.ca } });
    cleanups.push(() => client.close());
    const receipts: Receipt[] = [];
    client.on("receipt", (r) => receipts.push(r));
    const sent = client.send("meter.reading", [{ t: Date.now(), importWh: 5 }]);
    expect(sent.ok).toBe(true);
    for (let i = 0; i < 1500 && receipts.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(receipts.map((r) => r.seq)).toEqual([0]);
    await client.close();
    // wss://, with mqtt.js directly.
    const ws = await mqtt.connectAsync(`wss://127.0.0.1:${h.gateway.wssPort}`, {
      ca: p.ca,
      clientId: key.deviceId,
      username: key.deviceId,
      password: mqttPassword(key, Date.now() + 60_000),
      protocolVersion: 4,
      reconnectPeriod: 0,
    });
    cleanups.push(() => ws.endAsync(true));
    const got: Buffer[] = [];
    ws.on("message", (_t, payload) => got.push(payload));
    await ws.subscribeAsync(`devices/${key.deviceId}/down/receipts`, { qos: 1 });
    await ws.publishAsync(`devices/${key.deviceId}/up/meter.reading`, Buffer.from(envelopeBytes(key, 1)), { qos: 1 });
    for (let i = 0; i < 1500 && got.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(decodeReceipts(new Uint8Array(got[0]!))?.map((r) => r.seq)).toEqual([1]);
    // Without the CA, the server's certificate is refused: TLS is real.
    const untrusting = await mqtt
      .connectAsync(`mqtts://127.0.0.1:${h.gateway.mqttsPort}`, {
        clientId: key.deviceId,
        username: key.deviceId,
        password: mqttPassword(key, Date.now() + 60_000),
        protocolVersion: 4,
        reconnectPeriod: 0,
        connectTimeout: 10_000,
      })
      .then(
        (c) => c.endAsync(true).then(() => "connected"),
        (e: Error) => e.message,
      );
    expect(untrusting).toMatch(/self.signed|unable to (get|verify)|certificate/i);
  });

  it("a client certificate whose CN is the device id stands for the token; one naming another device does not", async () => {
    const h = await tlsHarness();
    const p = testPki();
    const [a, b] = [await h.register(), await h.register()];
    const certA = p.clientCertificate(a.deviceId);
    const attempt = (username: string, cert: { cert: Buffer; key: Buffer }) =>
      mqtt
        .connectAsync(`mqtts://127.0.0.1:${h.gateway.mqttsPort}`, {
          ca: p.ca,
          cert: cert.cert,
          key: cert.key,
          clientId: username,
          username,
          password: "no token",
          protocolVersion: 4,
          reconnectPeriod: 0,
          connectTimeout: 10_000,
        })
        .then(
          (c) => c.endAsync(true).then(() => "connected"),
          (e: { code?: number }) => `refused ${e.code}`,
        );
    expect(await attempt(a.deviceId, certA)).toBe("connected");
    expect(await attempt(b.deviceId, certA)).toBe("refused 4");
  });

  it("serves the HTTP API over HTTPS and the node's RPC over wss://, with the token", async () => {
    const p = testPki();
    const h = await tlsHarness();
    const http = buildHttp({
      operatorToken: "t",
      registrations: h.registrations,
      metrics: h.gateway.metrics,
      count: () => {},
      tls: { cert: p.cert, key: p.key },
    });
    cleanups.push(() => http.close());
    await http.listen({ port: 0, host: "127.0.0.1" });
    const port = (http.server.address() as { port: number }).port;
    expect(await httpsStatus(`https://127.0.0.1:${port}/healthz`, p.ca)).toBe(200);
    expect(await httpsStatus(`https://127.0.0.1:${port}/healthz`)).toMatch(/self.signed|unable to (get|verify)|certificate/i);
    const node = new FakeNode();
    const rpc = await startRpcServer(node, { port: 0, token: "rpc-token", tls: { cert: p.cert, key: p.key } });
    cleanups.push(() => rpc.close());
    const client = await RpcClient.connect(`wss://127.0.0.1:${rpc.port}`, { token: "rpc-token", ca: p.ca });
    cleanups.push(() => client.close());
    expect(await client.bestBlock()).toEqual(node.best);
    await client.submitWorkPackage(0, new Uint8Array([1, 2, 3]), []);
    expect(node.submitted).toHaveLength(1);
  });

  it("jamgate start --tls-cert --tls-key --no-plaintext: the CLI registers over HTTPS and publishes over mqtts://; mosquitto_pub --cafile settles an envelope", async () => {
    const p = testPki();
    const dataDir = tempDir();
    const ports = {
      mqtt: await freePort(),
      mqtts: await freePort(),
      ws: await freePort(),
      wss: await freePort(),
      http: await freePort(),
      rpc: await freePort(),
    };
    const gateway = runCli([
      "start",
      "--data-dir",
      dataDir,
      "--slot-ms",
      "300",
      "--tls-cert",
      p.certFile,
      "--tls-key",
      p.keyFile,
      "--no-plaintext",
      "--mqtt-port",
      String(ports.mqtt),
      "--mqtts-port",
      String(ports.mqtts),
      "--ws-port",
      String(ports.ws),
      "--wss-port",
      String(ports.wss),
      "--http-port",
      String(ports.http),
      "--rpc-port",
      String(ports.rpc),
    ]);
    processes.push(gateway);
    const started = JSON.parse(await gateway.waitFor(/"msg":"jamgate started"/, 60_000)) as Record<string, unknown>;
    expect(started).toMatchObject({
      mqtt: null,
      ws: null,
      mqtts: `mqtts://127.0.0.1:${ports.mqtts}`,
      wss: `wss://127.0.0.1:${ports.wss}`,
      http: `https://127.0.0.1:${ports.http}`,
      rpc: `wss://127.0.0.1:${ports.rpc}`,
    });
    const jamgate = (...args: string[]) => run(process.execPath, [JAMGATE_BIN, ...args], { timeout: 60_000 });
    const deviceDir = tempDir();
    const keyFile = join(deviceDir, "key.json");
    await jamgate("device", "keygen", "--out", keyFile);
    await jamgate(
      "device",
      "register",
      "--key",
      keyFile,
      "--kind",
      "meter",
      "--gateway",
      `https://127.0.0.1:${ports.http}`,
      "--ca",
      p.caFile,
      "--data-dir",
      dataDir,
      "--wait",
      "--timeout-ms",
      "30000",
    );
    const published = await jamgate(
      "device",
      "publish",
      "--key",
      keyFile,
      "--mqtt",
      `mqtts://127.0.0.1:${ports.mqtts}`,
      "--ca",
      p.caFile,
      "--simulate",
      "2",
      "--data-dir",
      join(deviceDir, "queue"),
      "--wait-receipts",
      "--timeout-ms",
      "45000",
    );
    expect(JSON.parse(published.stdout.trim().split("\n").at(-1)!)).toMatchObject({ sent: 2, acked: 2, receipts: 2 });
    // mosquitto_pub --cafile over TLS, client id = device id: a valid envelope, PUBACKed (exit 0) and settled (/metrics over HTTPS).
    const key = keyFromJson(JSON.parse(readFileSync(keyFile, "utf8")));
    writeFileSync(join(deviceDir, "env.cbor"), envelopeBytes(key, 2));
    const tlsArgs = [
      "-h",
      "127.0.0.1",
      "-p",
      String(ports.mqtts),
      "--cafile",
      p.caFile,
      "-V",
      "mqttv311",
      "-q",
      "1",
      "-i",
      key.deviceId,
      "-u",
      key.deviceId,
      "-P",
      mqttPassword(key, Date.now() + 600_000),
    ];
    await run("mosquitto_pub", [...tlsArgs, "-t", `devices/${key.deviceId}/up/meter.reading`, "-f", join(deviceDir, "env.cbor")], { timeout: 30_000 });
    const settled = async () =>
      Number(/^jamgate_envelopes_settled_total (\d+)/m.exec(await httpsText(`https://127.0.0.1:${ports.http}/metrics`, p.ca))?.[1] ?? -1);
    for (let i = 0; i < 300 && (await settled()) < 3; i++) await new Promise((r) => setTimeout(r, 100));
    expect(await settled()).toBe(3);
    // mosquitto_rr over TLS: publish and the answer on one connection (2.0.11 sends only -m payloads, so text: refused, and told why).
    const rr = await run(
      "mosquitto_rr",
      [...tlsArgs, "-t", `devices/${key.deviceId}/up/meter.reading`, "-e", `devices/${key.deviceId}/down/errors`, "-m", "not an envelope", "-N", "-W", "60"],
      { timeout: 90_000, encoding: "buffer" },
    );
    expect(decodeDeviceError(new Uint8Array(rr.stdout))).toMatchObject({ code: "JG_ERR_ENVELOPE_MALFORMED", seq: null });
    // The plain ports do not listen.
    const plain = await mqtt.connectAsync(`mqtt://127.0.0.1:${ports.mqtt}`, { reconnectPeriod: 0, connectTimeout: 5_000 }).then(
      (c) => c.endAsync(true).then(() => "connected"),
      (e: Error) => e.message,
    );
    expect(plain).toMatch(/ECONNREFUSED/);
  }, 120_000);
});
