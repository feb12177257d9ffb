/**
 * Gateway.acceptOwn (gateway.ts): an envelope the gateway built itself, as the RADIUS listener
 * builds a router's usage, takes the accept path of an MQTT publish: the same checks and seq
 * window, in the durable log when it resolves, then settled like any other.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DeviceId } from "../../devices/envelope.ts";
import { generateDeviceKey } from "../../devices/keys.ts";
import { envelopeBytes, type Harness, startHarness } from "../testing/harness.ts";

let harness: Harness;

beforeAll(async () => {
  harness = await startHarness();
}, 60_000);

afterAll(async () => {
  await harness?.stop();
});

describe("Gateway.acceptOwn", { timeout: 60_000 }, () => {
  it("logs the envelope durably before it resolves, refuses a replay and what the checks refuse, and settles what it took", async () => {
    const key = await harness.register();
    const inLog = (seq: number) => [...harness.gateway.log.all()].some((e) => e.deviceId === key.deviceId && e.seq === seq);
    expect(await harness.gateway.acceptOwn(key.deviceId, "meter.reading", envelopeBytes(key, 0))).toEqual({ ok: true });
    expect(inLog(0)).toBe(true);
    expect(await harness.gateway.acceptOwn(key.deviceId, "meter.reading", envelopeBytes(key, 0))).toMatchObject({ ok: false, code: "JG_ERR_ENVELOPE_REPLAY" });
    expect(await harness.gateway.acceptOwn(key.deviceId, "router.usage", envelopeBytes(key, 1))).toMatchObject({ ok: false, code: "JG_ERR_ENVELOPE_DEVICE" });
    const stranger = generateDeviceKey();
    expect(await harness.gateway.acceptOwn(stranger.deviceId as DeviceId, "meter.reading", envelopeBytes(stranger, 0))).toMatchObject({
      ok: false,
      code: "JG_ERR_DEVICE_UNREGISTERED",
    });
    expect(harness.gateway.errorStats()).toMatchObject({ JG_ERR_ENVELOPE_REPLAY: 1, JG_ERR_ENVELOPE_DEVICE: 1, JG_ERR_DEVICE_UNREGISTERED: 1 });
    // Settled as a published envelope is: its entry leaves the log once its receipt is told.
    const deadline = Date.now() + 45_000;
    while (inLog(0)) {
      if (Date.now() > deadline) throw new Error("the envelope was not settled within 45 s");
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(await harness.gateway.metrics.registry.getSingleMetricAsString("jamgate_envelopes_settled_total")).toMatch(/jamgate_envelopes_settled_total 1\b/);
  });
});
