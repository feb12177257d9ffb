/**
 * Session and message rules: a client id is bound to the identity that connects with it; nothing
 * a device sends is retained or left as a will; an error names the envelope's seq whenever it
 * could be read.
 */
import mqtt, { type IClientOptions } from "mqtt";
import { afterEach, describe, expect, it } from "vitest";
import { encodeCbor } from "../devices/cbor.ts";
import { mqttPassword } from "../devices/keys.ts";
import { connectDevice, envelopeBytes, type Harness, OPERATOR_TOKEN, startHarness, type TestDevice } from "./testing/harness.ts";

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function harness(): Promise<Harness> {
  const h = await startHarness();
  cleanups.push(() => h.stop());
  return h;
}

async function device(h: Harness, key?: Awaited<ReturnType<Harness["register"]>>): Promise<TestDevice & { key: Awaited<ReturnType<Harness["register"]>> }> {
  const k = key ?? (await h.register());
  const d = await connectDevice(h.gateway.mqttPort, k);
  cleanups.push(() => d.close().catch(() => {}));
  return Object.assign(d, { key: k });
}

/** "connected" or "refused <CONNACK code>". */
function attempt(port: number, options: IClientOptions): Promise<string> {
  return mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 10_000, ...options }).then(
    async (c) => {
      await c.endAsync(true);
      return "connected";
    },
    (e: { code?: number }) => `refused ${e.code}`,
  );
}

describe("client ids", () => {
  it("a device connects only with its own device id as client id; another device's id neither takes over nor wipes that session", async () => {
    const h = await harness();
    const a = await h.register();
    const b = await device(h);
    const password = mqttPassword(a, Date.now() + 60_000);
    // A, with its own valid token, asks for B's session: both with a clean one and with B's persistent one.
    expect(await attempt(h.gateway.mqttPort, { clientId: b.key.deviceId, username: a.deviceId, password, clean: true })).toBe("refused 2");
    expect(await attempt(h.gateway.mqttPort, { clientId: b.key.deviceId, username: a.deviceId, password, clean: false })).toBe("refused 2");
    expect(await attempt(h.gateway.mqttPort, { clientId: "mqttjs_1234", username: a.deviceId, password })).toBe("refused 2");
    expect(h.gateway.errorStats().JG_ERR_MQTT_CLIENT_ID).toBe(3);
    // B was not kicked off: it publishes and gets its receipt on the same connection.
    expect(b.client.connected).toBe(true);
    await b.client.publishAsync(`devices/${b.key.deviceId}/up/meter.reading`, Buffer.from(envelopeBytes(b.key, 0)), { qos: 1 });
    await b.until(() => b.receipts.length === 1);
    // A with its own id, or an empty one on a clean session (the gateway assigns the device id), is let in.
    expect(await attempt(h.gateway.mqttPort, { clientId: a.deviceId, username: a.deviceId, password })).toBe("connected");
    expect(await attempt(h.gateway.mqttPort, { clientId: "", clean: true, username: a.deviceId, password })).toBe("connected");
  });

  it("the operator connects as operator or operator-<label> only", async () => {
    const h = await harness();
    const key = await h.register();
    expect(await attempt(h.gateway.mqttPort, { clientId: "operator", username: "operator", password: OPERATOR_TOKEN })).toBe("connected");
    expect(await attempt(h.gateway.mqttPort, { clientId: "operator-dashboard.1", username: "operator", password: OPERATOR_TOKEN })).toBe("connected");
    expect(await attempt(h.gateway.mqttPort, { clientId: key.deviceId, username: "operator", password: OPERATOR_TOKEN })).toBe("refused 2");
    expect(await attempt(h.gateway.mqttPort, { clientId: "operator-", username: "operator", password: OPERATOR_TOKEN })).toBe("refused 2");
  });
});

describe("retained messages and wills", () => {
  it("refuses a retained publish on a device topic (JG_ERR_MQTT_RETAIN, with its seq): nothing is retained, logged or settled", async () => {
    const h = await harness();
    const d = await device(h);
    const topic = `devices/${d.key.deviceId}/up/meter.reading`;
    await d.client.publishAsync(topic, Buffer.from(envelopeBytes(d.key, 7)), { qos: 1, retain: true });
    await d.client.publishAsync(topic, Buffer.from([0xff, 0x00]), { qos: 1, retain: true }); // refused as malformed, retained flag too
    await d.until(() => d.errors.length === 2);
    expect(d.errors[0]).toMatchObject({ seq: 7, code: "JG_ERR_MQTT_RETAIN" });
    expect(d.errors[1]).toMatchObject({ seq: null, code: "JG_ERR_ENVELOPE_MALFORMED" });
    expect(h.gateway.log.count).toBe(0);
    // A later subscriber to every device's uplink gets nothing retained.
    const watcher = await mqtt.connectAsync(`mqtt://127.0.0.1:${h.gateway.mqttPort}`, {
      clientId: "operator-watcher",
      username: "operator",
      password: OPERATOR_TOKEN,
      protocolVersion: 4,
      reconnectPeriod: 0,
    });
    cleanups.push(() => watcher.endAsync(true));
    const got: string[] = [];
    watcher.on("message", (t) => got.push(t));
    await watcher.subscribeAsync("devices/+/up/#", { qos: 1 });
    // The seq stays free: the same envelope, not retained, settles.
    await d.client.publishAsync(topic, Buffer.from(envelopeBytes(d.key, 7)), { qos: 1 });
    await d.until(() => d.receipts.length === 1);
    expect(d.receipts[0]!.seq).toBe(7);
    // The watcher saw the accepted envelope routed live, and nothing retained before it.
    expect(got).toEqual([topic]);
  });

  it("routes no refused envelope to subscribers", async () => {
    const h = await harness();
    const d = await device(h);
    const watcher = await mqtt.connectAsync(`mqtt://127.0.0.1:${h.gateway.mqttPort}`, {
      clientId: "operator-watcher",
      username: "operator",
      password: OPERATOR_TOKEN,
      protocolVersion: 4,
      reconnectPeriod: 0,
    });
    cleanups.push(() => watcher.endAsync(true));
    const got: Buffer[] = [];
    watcher.on("message", (_t, payload) => got.push(payload));
    await watcher.subscribeAsync("devices/+/up/#", { qos: 1 });
    const topic = `devices/${d.key.deviceId}/up/meter.reading`;
    await d.client.publishAsync(topic, Buffer.alloc(60_000, 7), { qos: 1 }); // refused: malformed
    const good = Buffer.from(envelopeBytes(d.key, 0));
    await d.client.publishAsync(topic, good, { qos: 1 });
    await d.until(() => d.receipts.length === 1 && d.errors.length === 1);
    for (let i = 0; i < 100 && got.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(got.map((p) => p.length)).toEqual([good.length]);
  });

  it("refuses a CONNECT that carries a will (CONNACK 5, JG_ERR_MQTT_WILL): a will with a valid envelope is never settled", async () => {
    const h = await harness();
    const key = await h.register();
    const will = { topic: `devices/${key.deviceId}/up/meter.reading`, payload: Buffer.from(envelopeBytes(key, 0)), qos: 1 as const, retain: false };
    expect(await attempt(h.gateway.mqttPort, { clientId: key.deviceId, username: key.deviceId, password: mqttPassword(key, Date.now() + 60_000), will })).toBe(
      "refused 5",
    );
    expect(h.gateway.errorStats().JG_ERR_MQTT_WILL).toBe(1);
    expect(h.gateway.log.count).toBe(0);
  });
});

describe("error seqs", () => {
  it("names the seq of every envelope whose seq could be read: KIND, VERSION, MALFORMED, OVERSIZE", async () => {
    const h = await harness();
    const d = await device(h);
    const topic = `devices/${d.key.deviceId}/up/meter.reading`;
    const fields = { v: 1, d: d.key.deviceId, s: 11, k: "meter.reading", t: Date.now(), b: new Uint8Array(4), sig: new Uint8Array(64) };
    const payloads = [
      encodeCbor({ ...fields, s: 11, k: "meter.sideways" }), // KIND
      encodeCbor({ ...fields, s: 12, v: 9 }), // VERSION
      encodeCbor({ ...fields, s: 13, sig: new Uint8Array(3) }), // MALFORMED
      encodeCbor({ ...fields, s: 14, b: new Uint8Array(65_600) }), // OVERSIZE: over 64 KiB, within the PUBLISH packet bound
    ];
    for (const p of payloads) await d.client.publishAsync(topic, Buffer.from(p), { qos: 1 });
    await d.until(() => d.errors.length === 4);
    expect(d.errors.map((e) => [e.seq, e.code])).toEqual([
      [11, "JG_ERR_ENVELOPE_KIND"],
      [12, "JG_ERR_ENVELOPE_VERSION"],
      [13, "JG_ERR_ENVELOPE_MALFORMED"],
      [14, "JG_ERR_ENVELOPE_OVERSIZE"],
    ]);
  });
});

describe("a leaked token", () => {
  it("cannot move the device's seq window: a forged envelope more than 64 past the last signed seq is verified before PUBACK and refused; the device goes on", async () => {
    const h = await harness();
    const d = await device(h);
    const topic = `devices/${d.key.deviceId}/up/meter.reading`;
    const forged = (seq: number) =>
      encodeCbor({ v: 1, d: d.key.deviceId, s: seq, k: "meter.reading", t: Date.now(), b: new Uint8Array(4), sig: new Uint8Array(64) });
    // The sniffed-token attack: a zero signature at seq +1,000,000.
    await d.client.publishAsync(topic, Buffer.from(forged(1_000_000)), { qos: 1 });
    await d.until(() => d.errors.length === 1);
    expect(d.errors[0]).toMatchObject({ seq: 1_000_000, code: "JG_ERR_ENVELOPE_SIGNATURE" });
    expect(h.gateway.log.count).toBe(0);
    // Within the 64 after the last signed seq a forgery is PUBACKed unverified, and refused by refine.
    await d.client.publishAsync(topic, Buffer.from(forged(63)), { qos: 1 });
    // The device's own envelopes settle, including one just past the forgery's.
    for (const seq of [0, 1, 64]) await d.client.publishAsync(topic, Buffer.from(envelopeBytes(d.key, seq)), { qos: 1 });
    await d.until(() => d.receipts.length === 3 && d.errors.length === 2);
    expect(d.receipts.map((r) => r.seq).sort((a, b) => a - b)).toEqual([0, 1, 64]);
    expect(d.errors[1]).toMatchObject({ seq: 63, code: "JG_ERR_ENVELOPE_SIGNATURE" });
    // Settled seqs count as signed: with 64 settled, a forgery at 64 + 65 is verified, and refused, before PUBACK.
    await d.client.publishAsync(topic, Buffer.from(forged(129)), { qos: 1 });
    await d.until(() => d.errors.length === 3);
    expect(d.errors[2]).toMatchObject({ seq: 129, code: "JG_ERR_ENVELOPE_SIGNATURE" });
    await d.client.publishAsync(topic, Buffer.from(envelopeBytes(d.key, 65)), { qos: 1 });
    await d.until(() => d.receipts.length === 4);
  });

  it("is of no use past its expiry: the connection it opened is closed when the token expires", async () => {
    const h = await harness();
    const key = await h.register();
    // A token valid for 2 s more, and a device on a token valid for a minute beside it.
    const expiresAtMs = Date.now() + 2_000;
    const shortLived = await connectDevice(h.gateway.mqttPort, key, mqttPassword(key, expiresAtMs));
    cleanups.push(() => shortLived.close().catch(() => {}));
    const closed = new Promise<number>((resolve) => shortLived.client.once("close", () => resolve(Date.now())));
    const other = await device(h);
    expect(await closed).toBeGreaterThanOrEqual(expiresAtMs);
    expect(other.client.connected).toBe(true);
  });

  it("after a restart, counts from what the ledger settled, not from a forgery the log kept", async () => {
    const first = await startHarness();
    const dataDir = first.dataDir;
    let stopped = false;
    cleanups.push(async () => {
      if (!stopped) await first.stop();
    });
    const d = await device(first);
    const topic = `devices/${d.key.deviceId}/up/meter.reading`;
    const forged = (seq: number) =>
      encodeCbor({ v: 1, d: d.key.deviceId, s: seq, k: "meter.reading", t: Date.now(), b: new Uint8Array(4), sig: new Uint8Array(64) });
    await d.client.publishAsync(topic, Buffer.from(forged(63)), { qos: 1 }); // PUBACKed unverified; its seq stays in the logged window
    await d.until(() => d.errors.length === 1);
    await d.close();
    await first.stop();
    stopped = true;
    // Slots of 1 s: an envelope PUBACKed into the log stays there at least a slot, until settled.
    const second = await startHarness({ dataDir, slotMs: 1000 });
    cleanups.push(() => second.stop());
    const again = await connectDevice(second.gateway.mqttPort, d.key);
    cleanups.push(() => again.close());
    // 63 + 64 would be unverified if the forgery counted as signed: it is verified, and refused, before PUBACK.
    await again.client.publishAsync(topic, Buffer.from(forged(127)), { qos: 1 });
    expect(second.gateway.log.count).toBe(0); // at its PUBACK: refused, not logged
    await again.until(() => again.errors.length === 1);
    expect(again.errors[0]).toMatchObject({ seq: 127, code: "JG_ERR_ENVELOPE_SIGNATURE" });
    await again.client.publishAsync(topic, Buffer.from(envelopeBytes(d.key, 64)), { qos: 1 });
    await again.until(() => again.receipts.length === 1);
  });
});
