/**
 * Garbage at the gateway: random payloads from a registered device on its own topic, and random
 * bytes on the raw MQTT port. The gateway answers each payload with a coded error, accepts
 * nothing from them, stays up, and still settles a good envelope afterwards.
 */
import { connect as tcpConnect } from "node:net";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { errorRegistry } from "../devices/protocol/errors.ts";
import { connectDevice, envelopeBytes, type Harness, startHarness, type TestDevice } from "./testing/harness.ts";
import type { DeviceKey } from "../devices/keys.ts";

let h: Harness;
let key: DeviceKey;
let device: TestDevice;

beforeAll(async () => {
  h = await startHarness();
  key = await h.register();
  device = await connectDevice(h.gateway.mqttPort, key);
}, 30_000);

afterAll(async () => {
  await device.close();
  await h.stop();
});

describe("gateway under garbage", () => {
  // Up to just under the PUBLISH packet bound (packetLimits.publishBytesMax): past it the connection
  // is closed unread (packet-bounds.test.ts), so an envelope a little over 64 KiB is the largest answered.
  it("answers random payloads with registry error codes and accepts none of them", async () => {
    const topic = `devices/${key.deviceId}/up/meter.reading`;
    let sent = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.uint8Array({ maxLength: 300 }),
          fc.uint8Array({ minLength: 65_000, maxLength: 66_400 }),
          fc.jsonValue().map((v) => new TextEncoder().encode(JSON.stringify(v))),
        ),
        async (payload) => {
          await device.client.publishAsync(topic, Buffer.from(payload), { qos: 1 });
          sent++;
        },
      ),
      { numRuns: 150 },
    );
    await device.until(() => device.errors.length === sent);
    for (const e of device.errors) expect(Object.keys(errorRegistry)).toContain(e.code);
    expect(device.receipts).toEqual([]);
    expect(h.gateway.log.count).toBe(0);
    // Still working: a good envelope settles.
    await device.client.publishAsync(topic, Buffer.from(envelopeBytes(key, 0)), { qos: 1 });
    await device.until(() => device.receipts.length === 1);
  }, 60_000);

  it("drops raw non-MQTT bytes on the broker port without falling over", async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 2_000 }), async (bytes) => {
        await new Promise<void>((resolve) => {
          const socket = tcpConnect(h.gateway.mqttPort, "127.0.0.1", () => socket.end(Buffer.from(bytes)));
          socket.on("error", () => resolve());
          socket.on("close", () => resolve());
          socket.setTimeout(3_000, () => socket.destroy());
        });
      }),
      { numRuns: 60 },
    );
    const again = await connectDevice(h.gateway.mqttPort, key);
    await again.client.publishAsync(`devices/${key.deviceId}/up/meter.reading`, Buffer.from(envelopeBytes(key, 1)), { qos: 1 });
    await again.until(() => again.receipts.length === 1);
    await again.close();
  }, 60_000);
});
