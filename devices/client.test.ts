/** DeviceClient against a real MQTT 3.1.1 broker (aedes) on a free port. */
import { mkdtempSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { DeviceClient, type DeviceClientOptions, type DeviceClientState, reconnectDelay } from "./client.ts";
import { decodeBody, verifyEnvelope } from "./envelope.ts";
import type { CodedProblem } from "./errors.ts";
import { type DeviceKey, generateDeviceKey } from "./keys.ts";
import { type DeviceError, DOWN_WILDCARD, encodeDeviceError, encodeReceipt, encodeReceipts, type Receipt } from "./messages.ts";
import { startTestBroker, type TestBroker } from "./testing/broker.ts";

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

async function broker(...keys: DeviceKey[]): Promise<TestBroker> {
  const b = await startTestBroker(keys);
  cleanup.push(() => b.close());
  return b;
}

function options(key: DeviceKey, url: string, dataDir = mkdtempSync(join(tmpdir(), "jg-device-"))): DeviceClientOptions {
  let clock = Date.now();
  // Each token is signed for a later expiry, so every CONNECT carries a different password.
  return { url, key, dataDir, now: () => (clock += 1000), reconnectDelayMs: 20, reconnectDelayMaxMs: 200, connectTimeoutMs: WAIT_MS };
}

async function connect(o: DeviceClientOptions): Promise<DeviceClient> {
  const client = await DeviceClient.connect(o);
  cleanup.push(() => client.close());
  return client;
}

function record<T>(client: DeviceClient, event: "receipt" | "deviceError" | "state" | "warning"): T[] {
  const seen: T[] = [];
  client.on(event, (v: unknown) => seen.push(v as T));
  return seen;
}

/** How long a wait for the broker or the client may take before the test fails: generous, as only a failure waits it out. */
const WAIT_MS = 20_000;

async function until(condition: () => boolean, timeoutMs = WAIT_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 10));
  }
}

const queueFiles = (dataDir: string, key: DeviceKey) => readdirSync(join(dataDir, key.deviceId)).filter((n) => n.endsWith(".cbor"));

describe("DeviceClient", () => {
  it("signs, publishes at QoS 1 and forgets an envelope on its PUBACK", async () => {
    const key = generateDeviceKey();
    const b = await broker(key);
    const o = options(key, b.url);
    const client = await connect(o);

    const seqs = [0, 1, 2].map((i) => client.send("meter.reading", [{ i }]));
    expect(seqs).toEqual([0, 1, 2].map((seq) => ({ ok: true, seq })));
    expect(await client.drain(WAIT_MS)).toBe(true);
    expect(client.queued).toBe(0);
    expect(queueFiles(o.dataDir, key)).toEqual([]);
    expect(b.received.map((r) => r.envelope.seq)).toEqual([0, 1, 2]);
    for (const { topic, envelope } of b.received) {
      expect(topic).toBe(`devices/${key.deviceId}/up/meter.reading`);
      expect(verifyEnvelope(envelope, key.publicKey)).toBe(true);
    }
    expect(decodeBody(b.received[2]!.envelope.body)).toEqual([{ i: 2 }]);
  });

  it("keeps an envelope whose publish the broker refuses, reconnects and sends it again once it is accepted", async () => {
    const key = generateDeviceKey();
    const b = await broker(key);
    const client = await connect(options(key, b.url));
    const states = record<DeviceClientState>(client, "state");

    b.failPublish = true;
    client.send("meter.reading", [1]);
    await until(() => states.some((s) => s.state === "disconnected"));
    expect(client.queued).toBe(1);
    b.failPublish = false;
    expect(await client.drain(WAIT_MS)).toBe(true);
    expect(b.received.map((r) => r.envelope.seq)).toEqual([0]);
    expect(b.passwords.length).toBeGreaterThanOrEqual(2);
  });

  it("survives a broker restart mid-stream: reconnects with a fresh token and sends what is left, in seq order", async () => {
    const key = generateDeviceKey();
    const b = await broker(key);
    const client = await connect(options(key, b.url));
    const states = record<DeviceClientState>(client, "state");

    for (let i = 0; i < 3; i++) client.send("meter.reading", [i]);
    expect(await client.drain(WAIT_MS)).toBe(true);
    b.failPublish = true; // the next ones get no PUBACK
    for (let i = 3; i < 6; i++) client.send("meter.reading", [i]);
    await until(() => states.some((s) => s.state === "disconnected"));
    await b.restart({ downMs: 100 });
    b.failPublish = false;
    for (let i = 6; i < 8; i++) client.send("meter.reading", [i]); // queued while reconnecting, or sent at once

    expect(await client.drain(WAIT_MS)).toBe(true);
    expect(states.at(-1)).toMatchObject({ state: "connected" });
    expect(b.received.map((r) => r.envelope.seq)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(b.passwords.length).toBeGreaterThan(1); // one per CONNECT, each signed afresh
    expect(new Set(b.passwords).size).toBe(b.passwords.length);
  });

  it("delivers receipts and errors from its down topics, including those published while it was offline", async () => {
    const key = generateDeviceKey();
    const b = await broker(key);
    const client = await connect(options(key, b.url));
    const receipts = record<Receipt>(client, "receipt");
    const errors = record<DeviceError>(client, "deviceError");
    const warnings = record<CodedProblem>(client, "warning");
    const states = record<DeviceClientState>(client, "state");

    const receipt: Receipt = { seq: 0, packageHash: new Uint8Array(32).fill(1), blockHash: new Uint8Array(32).fill(2), slot: 77 };
    const error: DeviceError = { seq: 1, code: "JG_ERR_ENVELOPE_SIGNATURE", detail: "does not verify" };
    await until(() => b.subscriptions.includes(DOWN_WILDCARD(key.deviceId)));
    await b.publishDown(key.deviceId, "receipts", encodeReceipt(receipt));
    await b.publishDown(key.deviceId, "errors", encodeDeviceError(error));
    await b.publishDown(key.deviceId, "errors", new Uint8Array([0xff, 0x00]));
    await until(() => receipts.length === 1 && errors.length === 1 && warnings.length === 1);
    expect(receipts[0]).toEqual(receipt);
    // A receipt message for several envelopes of one package: one event each, in seq order.
    await b.publishDown(
      key.deviceId,
      "receipts",
      encodeReceipts({ seqs: [4, 5, 9], packageHash: receipt.packageHash, blockHash: receipt.blockHash, slot: 78 }),
    );
    await until(() => receipts.length === 4);
    expect(receipts.slice(1)).toEqual([4, 5, 9].map((seq) => ({ ...receipt, seq, slot: 78 })));
    receipts.length = 1;
    expect(errors[0]).toEqual(error);
    expect(warnings[0]!.code).toBe("JG_ERR_RPC_REMOTE");

    // clean: false — the broker keeps the session and queues QoS 1 messages for the offline device.
    b.refuseConnections = true;
    b.disconnect(key.deviceId);
    await until(() => states.filter((s) => s.state === "disconnected").length >= 2); // dropped, then a reconnect refused
    await b.publishDown(key.deviceId, "receipts", encodeReceipt({ ...receipt, seq: 1 }));
    expect(receipts).toHaveLength(1);
    b.refuseConnections = false;
    // QoS 1 is at least once [MQTT-4.3.2]: receipt 0 may come again if our PUBACK lost the race with the drop.
    await until(() => receipts.some((r) => r.seq === 1));
    expect(states.filter((s) => s.state === "connected").at(-1)).toEqual({ state: "connected", sessionPresent: true });
  });

  it("keeps the queue and the seq across a restart of the device", async () => {
    const key = generateDeviceKey();
    const b = await broker(key);
    const dataDir = mkdtempSync(join(tmpdir(), "jg-device-"));
    const offline = DeviceClient.open({ ...options(key, "mqtt://127.0.0.1:1", dataDir) }); // nothing listens there
    expect(offline.send("meter.reading", ["a"])).toEqual({ ok: true, seq: 0 });
    expect(offline.send("meter.reading", ["b"])).toEqual({ ok: true, seq: 1 });
    await offline.close();
    expect(queueFiles(dataDir, key)).toHaveLength(2);

    const client = await connect(options(key, b.url, dataDir));
    expect(client.send("meter.reading", ["c"])).toEqual({ ok: true, seq: 2 });
    expect(await client.drain(WAIT_MS)).toBe(true);
    expect(b.received.map((r) => [r.envelope.seq, decodeBody(r.envelope.body)])).toEqual([
      [0, ["a"]],
      [1, ["b"]],
      [2, ["c"]],
    ]);
  });

  it("refuses to send past its queue bound, with a code", async () => {
    const key = generateDeviceKey();
    const client = DeviceClient.open({ ...options(key, "mqtt://127.0.0.1:1"), queueLimits: { envelopesMax: 2 } });
    cleanup.push(() => client.close());
    client.send("meter.reading", [1]);
    client.send("meter.reading", [2]);
    const refused = client.send("meter.reading", [3]);
    expect(refused).toMatchObject({ ok: false, error: { code: "JG_ERR_QUEUE_FULL" } });
    expect(client.send("meter.reading", "x".repeat(70_000))).toMatchObject({ ok: false, error: { code: "JG_ERR_ENVELOPE_OVERSIZE" } });
  });

  it("fails connect with a code when the broker refuses the key", async () => {
    const registered = generateDeviceKey();
    const b = await broker(registered);
    await expect(DeviceClient.connect(options(generateDeviceKey(), b.url))).rejects.toMatchObject({ code: "JG_ERR_DEVICE_UNREGISTERED" });
    await expect(DeviceClient.connect({ ...options(registered, b.url), now: () => 0 })).rejects.toMatchObject({ code: "JG_ERR_MQTT_AUTH" }); // token expired in 1970
  });

  it("backs off exponentially with jitter, up to its bound", () => {
    expect(reconnectDelay(1, () => 0)).toBe(250);
    expect(reconnectDelay(1, () => 0.999)).toBeLessThanOrEqual(500);
    expect(reconnectDelay(4, () => 0)).toBe(2000);
    expect(reconnectDelay(100, () => 0.999)).toBeLessThanOrEqual(60_000);
    expect(reconnectDelay(100, () => 0)).toBe(30_000);
  });
});
