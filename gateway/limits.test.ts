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
  mqtt
    .connectAsync(`mqtt://127.0.0.1:${port}`, {
      clientId: username === "operator" ? `operator-${Math.random().toString(36).slice(2)}` : username,
      username,
      password,
      protocolVersion: 4,
      reconnectPeriod: 0,
      connectTimeout: 20_000,
    })
    .then(
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
    // Slots of 1 s: the device is gone well before its envelopes settle.
    const h = await harness({ slotMs: 1000, gateway: { limits: { sessionQueueMax: 3 } } });
    const key = await h.register();
    const session = () =>
      mqtt.connectAsync(`mqtt://127.0.0.1:${h.gateway.mqttPort}`, {
        clientId: key.deviceId,
        clean: false,
        username: key.deviceId,
        password: mqttPassword(key, Date.now() + 60_000),
        protocolVersion: 4,
        reconnectPeriod: 0,
      });
    // The device's persistent session subscribes, sends 5 envelopes whose signatures refine will
    // refuse (PUBACKed at once; their errors come after settlement), and goes away.
    const away = await session();
    await away.subscribeAsync(`devices/${key.deviceId}/down/#`, { qos: 1 });
    const forged = (seq: number) => {
      const bytes = envelopeBytes(key, seq);
      bytes.fill(0, bytes.length - 64); // the signature, last in the CBOR map
      return Buffer.from(bytes);
    };
    for (let seq = 0; seq < 5; seq++) await away.publishAsync(`devices/${key.deviceId}/up/meter.reading`, forged(seq), { qos: 1 });
    await away.endAsync();
    // Their 5 errors: 3 held for the session away, 2 counted.
    for (let i = 0; i < 1500 && h.gateway.errorStats().JG_ERR_ENVELOPE_SIGNATURE !== 5; i++) await new Promise((r) => setTimeout(r, 20));
    expect(h.gateway.errorStats().JG_ERR_ENVELOPE_SIGNATURE).toBe(5);
    expect(h.gateway.errorStats().JG_ERR_MQTT_SESSION_QUEUE).toBe(2);
    const notHeld = /^jamgate_mqtt_messages_not_held_total\{code="JG_ERR_MQTT_SESSION_QUEUE"\} 2$/m;
    expect(await h.gateway.metrics.registry.metrics()).toMatch(notHeld);
    // Back, the session gets the 3 it held.
    const back = await session();
    cleanups.push(() => back.endAsync(true));
    const got: string[] = [];
    back.on("message", (topic) => got.push(topic));
    for (let i = 0; i < 1000 && got.length < 3; i++) await new Promise((r) => setTimeout(r, 20));
    await new Promise((r) => setTimeout(r, 200)); // and no more
    expect(got).toEqual(Array.from({ length: 3 }, () => `devices/${key.deviceId}/down/errors`));
    // Delivered and PUBACKed, they no longer count: a new refusal is delivered, nothing more counted.
    await back.publishAsync(`devices/${key.deviceId}/up/meter.reading`, Buffer.from([0xff, 9]), { qos: 1 });
    for (let i = 0; i < 1000 && got.length < 4; i++) await new Promise((r) => setTimeout(r, 20));
    expect(got).toHaveLength(4);
    expect(h.gateway.errorStats().JG_ERR_MQTT_SESSION_QUEUE).toBe(2);
    expect(await h.gateway.metrics.registry.metrics()).toMatch(notHeld);
  }, 60_000);

  it("cuts off a subscriber that stops reading, while devices keep publishing and settling", async () => {
    const h = await harness({ gateway: { limits: { drainTimeoutMs: 500 } } });
    const key = await h.register();
    const device = await connectDevice(h.gateway.mqttPort, key);
    cleanups.push(() => device.close());
    // The operator watches every device's uplink, then stops reading its socket.
    const watcher = await mqtt.connectAsync(`mqtt://127.0.0.1:${h.gateway.mqttPort}`, {
      clientId: "operator-watcher",
      username: "operator",
      password: OPERATOR_TOKEN,
      protocolVersion: 4,
      reconnectPeriod: 0,
    });
    watcher.on("error", () => {});
    await watcher.subscribeAsync("devices/+/up/#", { qos: 0 });
    (watcher.stream as unknown as { pause(): void }).pause();
    // Valid envelopes of 60 KB bodies (telemetry does not look inside them): routed to the watcher
    // as they are accepted (refused ones would be routed to no one).
    for (let seq = 0; seq < 400; seq++)
      device.client.publish(`devices/${key.deviceId}/up/meter.reading`, Buffer.from(envelopeBytes(key, seq, new Uint8Array(60_000).fill(7))), { qos: 0 });
    for (let i = 0; i < 300 && h.gateway.errorStats().JG_ERR_MQTT_SLOW_CONSUMER === undefined; i++) await new Promise((r) => setTimeout(r, 100));
    expect(h.gateway.errorStats().JG_ERR_MQTT_SLOW_CONSUMER).toBeGreaterThanOrEqual(1);
    cleanups.push(() => watcher.endAsync(true).catch(() => {}));
    // The device was never stalled: a good envelope still settles.
    await device.client.publishAsync(`devices/${key.deviceId}/up/meter.reading`, Buffer.from(envelopeBytes(key, 400)), { qos: 1 });
    await device.until(() => device.receipts.some((r) => r.seq === 400), 60_000);
  }, 60_000);
});
