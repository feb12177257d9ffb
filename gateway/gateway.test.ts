/**
 * The gateway through real parts: an MQTT client (mqtt.js) to the embedded aedes broker, the
 * durable log, the in-process node and the telemetry service, and back to the device as receipts.
 */
import mqtt from "mqtt";
import { afterEach, describe, expect, it, vi } from "vitest";
import { generateDeviceKey, mqttPassword } from "../devices/keys.ts";
import { TELEMETRY_SERVICE } from "./genesis.ts";
import { decodeDeviceRecord, deviceKey } from "../services/telemetry/types.ts";
import { connectDevice, envelopeBytes, type Harness, startHarness, type TestDevice } from "./testing/harness.ts";

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function harness(): Promise<Harness> {
  const h = await startHarness();
  cleanups.push(() => h.stop());
  return h;
}

async function counter(metric: { get(): Promise<{ values: { value: number }[] }> }): Promise<number> {
  return (await metric.get()).values.reduce((sum, v) => sum + v.value, 0);
}

async function device(h: Harness, key = generateDeviceKey()): Promise<TestDevice & { key: typeof key }> {
  await h.register(key);
  const d = await connectDevice(h.gateway.mqttPort, key);
  cleanups.push(() => d.close());
  return { ...d, key };
}

// Each test starts a node and a gateway and registers devices through blocks: seconds alone, and
// past the default 30 s beside the rest of the suite on a busy 2-core machine (seen once).
describe("gateway", { timeout: 120_000 }, () => {
  it("settles PUBACKed envelopes on the ledger and sends each device a receipt", async () => {
    const h = await harness();
    const a = await device(h);
    const b = await device(h);
    // All at once, so they share packages however slow the machine is (awaited one by one, each could go alone).
    await Promise.all(
      Array.from({ length: 20 }, (_, seq) => [
        a.client.publishAsync(`devices/${a.key.deviceId}/up/meter.reading`, Buffer.from(envelopeBytes(a.key, seq)), { qos: 1 }),
        b.client.publishAsync(`devices/${b.key.deviceId}/up/meter.reading`, Buffer.from(envelopeBytes(b.key, seq)), { qos: 1 }),
      ]).flat(),
    );
    await a.until(() => a.receipts.length === 20);
    await b.until(() => b.receipts.length === 20);
    expect(a.receipts.map((r) => r.seq).sort((x, y) => x - y)).toEqual(Array.from({ length: 20 }, (_, i) => i));
    expect(a.errors).toEqual([]);
    // One receipt message per package the device's envelopes went in, not one per envelope.
    const packages = new Set(a.receipts.map((r) => Buffer.from(r.packageHash).toString("hex")));
    expect(a.receiptMessages).toHaveLength(packages.size);
    expect(a.receiptMessages.length).toBeLessThan(20);
    // The receipt names a real block, and the ledger has the device's envelopes settled.
    const receipt = a.receipts[0]!;
    expect(await h.node.stateRoot(receipt.blockHash)).toHaveLength(32);
    const best = await h.node.bestBlock();
    const record = decodeDeviceRecord((await h.node.serviceValue(best.headerHash, TELEMETRY_SERVICE.id, deviceKey(a.key.deviceId)))!);
    expect(record.ok && record.value.envelopesSettled).toBe(20n);
    // Everything told is taken out of the log (the removal commits just after the receipts go out).
    for (let i = 0; i < 1_000 && h.gateway.log.count > 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(h.gateway.log.count).toBe(0);
  });

  it("after a failed log write, takes the device's resend of every seq in it as new, not as a replay", async () => {
    const h = await harness();
    const key = generateDeviceKey();
    const first = await device(h, key);
    // The first two appends fail together, as a failed LMDB transaction fails all of its batch.
    const append = h.gateway.log.append.bind(h.gateway.log);
    const failed: number[] = [];
    vi.spyOn(h.gateway.log, "append").mockImplementation(async (entry) => {
      if (failed.length >= 2) return append(entry);
      failed.push(entry.seq);
      await new Promise((r) => setTimeout(r, 50)); // both in flight before either fails
      throw new Error("disk full (test)");
    });
    const topic = `devices/${key.deviceId}/up/meter.reading`;
    const closed = new Promise<void>((resolve) => first.client.once("close", () => resolve()));
    let acked = 0;
    for (const seq of [0, 1]) first.client.publish(topic, Buffer.from(envelopeBytes(key, seq)), { qos: 1 }, (error) => (acked += error ? 0 : 1));
    await closed; // the gateway closes the connection: no PUBACK
    await first.close();
    expect(failed.sort()).toEqual([0, 1]);
    expect(acked).toBe(0);
    // The device comes back and sends both again: both are new, settle, and are receipted.
    const again = await device(h, key);
    for (const seq of [0, 1]) await again.client.publishAsync(topic, Buffer.from(envelopeBytes(key, seq)), { qos: 1 });
    await again.until(() => again.receipts.length === 2);
    expect(again.receipts.map((r) => r.seq).sort()).toEqual([0, 1]);
    expect(again.errors).toEqual([]);
  });

  it("refuses bad envelopes with coded errors on the device's error topic, and settles nothing from them", async () => {
    const h = await harness();
    const d = await device(h);
    const topic = `devices/${d.key.deviceId}/up/meter.reading`;
    const other = generateDeviceKey();
    const good = envelopeBytes(d.key, 0);
    const forged = envelopeBytes(d.key, 3);
    forged[forged.length - 1]! ^= 1; // last byte of the signature
    await d.client.publishAsync(topic, Buffer.from([1, 2, 3]), { qos: 1 });
    await d.client.publishAsync(topic, Buffer.from(forged), { qos: 1 }); // PUBACKed; refused by refine after settlement
    await d.client.publishAsync(topic, Buffer.from(envelopeBytes(other, 0)), { qos: 1 }); // another device's envelope
    await d.client.publishAsync(topic, Buffer.from(envelopeBytes(d.key, 1, [{ x: 1 }], "meter.reading", Date.now() + 3_600_000)), { qos: 1 });
    await d.client.publishAsync(`devices/${d.key.deviceId}/up/router.usage`, Buffer.from(envelopeBytes(d.key, 2)), { qos: 1 }); // kind ≠ topic
    await d.client.publishAsync(topic, Buffer.from(good), { qos: 1 });
    await d.client.publishAsync(topic, Buffer.from(good), { qos: 1 }); // the same again
    await d.client.publishAsync(topic, Buffer.from(envelopeBytes(d.key, 5_000_000)), { qos: 1 }); // far ahead
    await d.until(() => d.errors.length === 7 && d.receipts.length === 1);
    // Refused before PUBACK, in the order sent:
    expect(d.errors.filter((e) => e.code !== "JG_ERR_ENVELOPE_SIGNATURE").map((e) => e.code)).toEqual([
      "JG_ERR_ENVELOPE_MALFORMED",
      "JG_ERR_ENVELOPE_DEVICE",
      "JG_ERR_ENVELOPE_FUTURE",
      "JG_ERR_ENVELOPE_DEVICE",
      "JG_ERR_ENVELOPE_REPLAY",
      "JG_ERR_ENVELOPE_SEQ",
    ]);
    // Refused by the service's refine, once its package settled:
    expect(d.errors.filter((e) => e.code === "JG_ERR_ENVELOPE_SIGNATURE").map((e) => e.seq)).toEqual([3]);
    expect(d.receipts.map((r) => r.seq)).toEqual([0]);
    expect(h.gateway.errorStats()).toMatchObject({
      JG_ERR_ENVELOPE_MALFORMED: 1,
      JG_ERR_ENVELOPE_REPLAY: 1,
      JG_ERR_ENVELOPE_DEVICE: 2,
      JG_ERR_ENVELOPE_SIGNATURE: 1,
    });
  });

  it("PUBACKs an envelope with a bad signature, then tells JG_ERR_ENVELOPE_SIGNATURE on down/errors and never receipts or credits it", async () => {
    const h = await harness();
    const d = await device(h);
    const topic = `devices/${d.key.deviceId}/up/meter.reading`;
    const forged = envelopeBytes(d.key, 0);
    forged[forged.length - 1]! ^= 1; // last byte of the signature
    // The PUBACK comes (publishAsync resolves), with no error before it: the signature is refine's to check.
    await d.client.publishAsync(topic, Buffer.from(forged), { qos: 1 });
    expect(d.errors).toEqual([]);
    for (let seq = 1; seq <= 3; seq++) await d.client.publishAsync(topic, Buffer.from(envelopeBytes(d.key, seq)), { qos: 1 });
    await d.until(() => d.errors.length === 1 && d.receipts.length === 3);
    expect(d.errors).toEqual([
      { seq: 0, code: "JG_ERR_ENVELOPE_SIGNATURE", detail: expect.stringMatching(/^refused by service \d+ in package [0-9a-f]{64}$/) },
    ]);
    expect(d.receipts.map((r) => r.seq).sort()).toEqual([1, 2, 3]);
    // Credited on the ledger: the three good ones only.
    const best = await h.node.bestBlock();
    const record = decodeDeviceRecord((await h.node.serviceValue(best.headerHash, TELEMETRY_SERVICE.id, deviceKey(d.key.deviceId)))!);
    expect(record.ok && record.value.envelopesSettled).toBe(3n);
    expect(await counter(h.gateway.metrics.refusedOnChain)).toBe(1);
    expect(await counter(h.gateway.metrics.settled)).toBe(3);
    // Told, so out of the log; and its seq stays used: the same seq again is a replay.
    for (let i = 0; i < 1_000 && h.gateway.log.count > 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(h.gateway.log.count).toBe(0);
    await d.client.publishAsync(topic, Buffer.from(envelopeBytes(d.key, 0)), { qos: 1 });
    await d.until(() => d.errors.length === 2);
    expect(d.errors[1]).toMatchObject({ seq: 0, code: "JG_ERR_ENVELOPE_REPLAY" });
    await new Promise((r) => setTimeout(r, 500));
    expect(d.receipts).toHaveLength(3);
  });

  it("with verifySignaturesBeforePuback, refuses a bad signature before PUBACK, and the seq stays free", async () => {
    const h = await startHarness({ gateway: { verifySignaturesBeforePuback: true } });
    cleanups.push(() => h.stop());
    const d = await device(h);
    const topic = `devices/${d.key.deviceId}/up/meter.reading`;
    const forged = envelopeBytes(d.key, 0);
    forged[forged.length - 1]! ^= 1;
    await d.client.publishAsync(topic, Buffer.from(forged), { qos: 1 });
    await d.until(() => d.errors.length === 1);
    expect(d.errors[0]).toEqual({ seq: 0, code: "JG_ERR_ENVELOPE_SIGNATURE", detail: "signature does not verify" });
    expect(h.gateway.log.count).toBe(0);
    await d.client.publishAsync(topic, Buffer.from(envelopeBytes(d.key, 0)), { qos: 1 });
    await d.until(() => d.receipts.length === 1);
    expect(d.receipts[0]!.seq).toBe(0);
    expect(d.errors).toHaveLength(1);
  });

  it("lets only registered devices with a valid token connect", async () => {
    const h = await harness();
    const registered = await h.register();
    const stranger = generateDeviceKey();
    const url = `mqtt://127.0.0.1:${h.gateway.mqttPort}`;
    const attempt = (username: string, password: string) =>
      mqtt
        .connectAsync(url, {
          clientId: username === "operator" ? "operator-test" : username,
          username,
          password,
          protocolVersion: 4,
          reconnectPeriod: 0,
          connectTimeout: 5_000,
        })
        .then(
          async (c) => {
            await c.endAsync(true);
            return "connected";
          },
          (e: { code?: number }) => `refused ${e.code}`,
        );
    expect(await attempt(stranger.deviceId, mqttPassword(stranger, Date.now() + 60_000))).toBe("refused 5");
    expect(await attempt(registered.deviceId, mqttPassword(stranger, Date.now() + 60_000))).toBe("refused 4"); // another key's token
    expect(await attempt(registered.deviceId, mqttPassword(registered, Date.now() - 1))).toBe("refused 4"); // expired
    expect(await attempt(registered.deviceId, mqttPassword(registered, Date.now() + 48 * 3600_000))).toBe("refused 4"); // too long-lived
    expect(await attempt("not-a-device", "x")).toBe("refused 4");
    expect(await attempt(registered.deviceId, mqttPassword(registered, Date.now() + 60_000))).toBe("connected");
    expect(await attempt("operator", "test-operator-token")).toBe("connected");
  });

  it("disconnects a device that publishes outside its topics, and refuses foreign subscriptions", async () => {
    const h = await harness();
    const d = await device(h);
    const other = await h.register();
    // SUBACK 0x80 [MQTT-3.9.3]: mqtt.js turns a refused subscription into an error.
    await expect(d.client.subscribeAsync(`devices/${other.deviceId}/down/#`, { qos: 1 })).rejects.toThrow(/Subscribe error/);
    const closed = new Promise<void>((resolve) => d.client.once("close", () => resolve()));
    d.client.publish(`devices/${other.deviceId}/up/meter.reading`, Buffer.from(envelopeBytes(other, 0)), { qos: 1 });
    await closed;
    expect(h.gateway.errorStats().JG_ERR_MQTT_TOPIC).toBe(2);
    // On /metrics by what was refused: the subscription as a subscription, the publish as an envelope.
    const text = await h.gateway.metrics.registry.metrics();
    expect(text).toMatch(/^jamgate_mqtt_subscriptions_refused_total\{code="JG_ERR_MQTT_TOPIC"\} 1$/m);
    expect(text).toMatch(/^jamgate_envelopes_rejected_total\{code="JG_ERR_MQTT_TOPIC"\} 1$/m);
  });

  it("speaks MQTT over WebSocket too", async () => {
    const h = await harness();
    const key = await h.register();
    const client = await mqtt.connectAsync(`ws://127.0.0.1:${h.gateway.wsPort}`, {
      clientId: key.deviceId,
      username: key.deviceId,
      password: mqttPassword(key, Date.now() + 60_000),
      protocolVersion: 4,
      reconnectPeriod: 0,
    });
    try {
      const receipts: number[] = [];
      client.on("message", (_topic, payload) => receipts.push(payload.length));
      await client.subscribeAsync(`devices/${key.deviceId}/down/receipts`, { qos: 1 });
      await client.publishAsync(`devices/${key.deviceId}/up/meter.reading`, Buffer.from(envelopeBytes(key, 0)), { qos: 1 });
      for (let i = 0; i < 500 && receipts.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
      expect(receipts).toHaveLength(1);
    } finally {
      await client.endAsync(true);
    }
  });

  it("slows a device that reconnects in a loop (CONNACK 3)", async () => {
    const h = await harness();
    const key = await h.register();
    const outcomes: string[] = [];
    for (let i = 0; i < 8; i++) {
      outcomes.push(
        await mqtt
          .connectAsync(`mqtt://127.0.0.1:${h.gateway.mqttPort}`, {
            clientId: key.deviceId,
            username: key.deviceId,
            password: mqttPassword(key, Date.now() + 60_000),
            protocolVersion: 4,
            reconnectPeriod: 0,
          })
          .then(
            async (c) => {
              await c.endAsync(true);
              return "ok";
            },
            (e: { code?: number }) => `refused ${e.code}`,
          ),
      );
    }
    expect(outcomes.slice(0, 5)).toEqual(["ok", "ok", "ok", "ok", "ok"]);
    expect(outcomes.slice(5)).toContain("refused 3");
    expect(h.gateway.errorStats().JG_ERR_MQTT_RATE).toBeGreaterThanOrEqual(1);
  });

  it("drives a remote node over the JIP-2 WebSocket just the same (--node ws://…)", async () => {
    const h = await startHarness({ overRpc: true });
    cleanups.push(() => h.stop());
    const d = await device(h);
    for (let seq = 0; seq < 5; seq++)
      await d.client.publishAsync(`devices/${d.key.deviceId}/up/meter.reading`, Buffer.from(envelopeBytes(d.key, seq)), { qos: 1 });
    await d.until(() => d.receipts.length === 5);
    expect(d.errors).toEqual([]);
  });
});
