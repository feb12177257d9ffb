/**
 * Connection floods and slow consumers: refused early with CONNACK 3 and a code, or cut off,
 * without stalling anyone else.
 */
import mqtt from "mqtt";
import { afterEach, describe, expect, it } from "vitest";
import { mqttPassword } from "../devices/keys.ts";
import { connectDevice, envelopeBytes, OPERATOR_TOKEN, type Harness, startHarness } from "./testing/harness.ts";

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function harness(limits: Parameters<typeof startHarness>[0]): Promise<Harness> {
  const h = await startHarness(limits);
  cleanups.push(() => h.stop());
  return h;
}

const attempt = (port: number, username: string, password: string) =>
  mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { username, password, protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 20_000 }).then(
    (c) => {
      cleanups.push(() => c.endAsync(true));
      return "ok";
    },
    (e: { code?: number }) => `refused ${e.code}`,
  );

describe("gateway limits", () => {
  it("refuses a connect flood from one address (CONNACK 3, JG_ERR_MQTT_RATE)", async () => {
    const h = await harness({ gateway: { limits: { connectsPerIp: { perSecond: 0.001, burst: 3 } } } });
    const outcomes: string[] = [];
    for (let i = 0; i < 5; i++) outcomes.push(await attempt(h.gateway.mqttPort, "operator", OPERATOR_TOKEN));
    expect(outcomes).toEqual(["ok", "ok", "ok", "refused 3", "refused 3"]);
    expect(h.gateway.errorStats().JG_ERR_MQTT_RATE).toBe(2);
  });

  it("refuses connections past the connection limit (CONNACK 3, JG_ERR_MQTT_CONNECTIONS)", async () => {
    const h = await harness({ gateway: { limits: { connectionsMax: 2 } } });
    const outcomes: string[] = [];
    for (let i = 0; i < 3; i++) outcomes.push(await attempt(h.gateway.mqttPort, "operator", OPERATOR_TOKEN));
    expect(outcomes).toEqual(["ok", "ok", "refused 3"]);
    expect(h.gateway.errorStats().JG_ERR_MQTT_CONNECTIONS).toBe(1);
  });

  it("holds at most sessionQueueMax undelivered messages for a persistent session away, counts the rest, and delivers what it held on return", async () => {
    const h = await harness({ gateway: { limits: { sessionQueueMax: 3 } } });
    const key = await h.register();
    const session = () => mqtt.connectAsync(`mqtt://127.0.0.1:${h.gateway.mqttPort}`, { clientId: key.deviceId, clean: false, username: key.deviceId, password: mqttPassword(key, Date.now() + 60_000), protocolVersion: 4, reconnectPeriod: 0 });
    // The device's persistent session subscribes, then goes away.
    const away = await session();
    await away.subscribeAsync(`devices/${key.deviceId}/down/#`, { qos: 1 });
    await away.endAsync();
    // Meanwhile the same device, on a clean connection, sends 5 envelopes the gateway refuses:
    // 5 error messages on its down topic, held for the session away up to the bound.
    const other = await connectDevice(h.gateway.mqttPort, key);
    cleanups.push(() => other.close());
    for (let seq = 0; seq < 5; seq++) await other.client.publishAsync(`devices/${key.deviceId}/up/meter.reading`, Buffer.from([0xff, seq]), { qos: 1 });
    await other.until(() => other.errors.length === 5);
    expect(h.gateway.errorStats().JG_ERR_MQTT_SESSION_QUEUE).toBe(2);
    // Back, the session gets the 3 it held.
    const back = await session();
    cleanups.push(() => back.endAsync(true));
    const got: string[] = [];
    back.on("message", (topic) => got.push(topic));
    for (let i = 0; i < 1_000 && got.length < 3; i++) await new Promise((r) => setTimeout(r, 20));
    await new Promise((r) => setTimeout(r, 200)); // and no more (a late fourth also fails the length check below)
    expect(got).toEqual(Array.from({ length: 3 }, () => `devices/${key.deviceId}/down/errors`));
    // Delivered and PUBACKed, they no longer count: a new refusal is held and delivered.
    await other.client.publishAsync(`devices/${key.deviceId}/up/meter.reading`, Buffer.from([0xff, 9]), { qos: 1 });
    for (let i = 0; i < 1_000 && got.length < 4; i++) await new Promise((r) => setTimeout(r, 20));
    expect(got).toHaveLength(4);
    expect(h.gateway.errorStats().JG_ERR_MQTT_SESSION_QUEUE).toBe(2);
  }, 30_000);

  it("cuts off a subscriber that stops reading, while devices keep publishing and settling", async () => {
    const h = await harness({ gateway: { limits: { drainTimeoutMs: 500 } } });
    const key = await h.register();
    const device = await connectDevice(h.gateway.mqttPort, key);
    cleanups.push(() => device.close());
    // The operator watches every device's uplink, then stops reading its socket.
    const watcher = await mqtt.connectAsync(`mqtt://127.0.0.1:${h.gateway.mqttPort}`, { username: "operator", password: OPERATOR_TOKEN, protocolVersion: 4, reconnectPeriod: 0 });
    watcher.on("error", () => {});
    await watcher.subscribeAsync("devices/+/up/#", { qos: 0 });
    (watcher.stream as unknown as { pause(): void }).pause();
    const big = Buffer.alloc(60_000, 7); // refused as malformed, but still routed to the watcher
    for (let i = 0; i < 400; i++) device.client.publish(`devices/${key.deviceId}/up/meter.reading`, big, { qos: 0 });
    for (let i = 0; i < 300 && h.gateway.errorStats().JG_ERR_MQTT_SLOW_CONSUMER === undefined; i++) await new Promise((r) => setTimeout(r, 100));
    expect(h.gateway.errorStats().JG_ERR_MQTT_SLOW_CONSUMER).toBeGreaterThanOrEqual(1);
    cleanups.push(() => watcher.endAsync(true).catch(() => {}));
    // The device was never stalled: a good envelope still settles.
    await device.client.publishAsync(`devices/${key.deviceId}/up/meter.reading`, Buffer.from(envelopeBytes(key, 0)), { qos: 1 });
    await device.until(() => device.receipts.length === 1, 30_000);
  }, 60_000);
});
