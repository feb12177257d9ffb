// The SDK as a firmware author or an app imports it: through the package's exports ("jamgate/devices").
import * as sdk from "jamgate/devices";
import * as cborModule from "jamgate/devices/cbor";
import * as envelopeModule from "jamgate/devices/envelope";
import * as keysModule from "jamgate/devices/keys";
import * as messagesModule from "jamgate/devices/messages";
import * as readingsModule from "jamgate/devices/readings";
import * as wifiModule from "jamgate/devices/wifi";
import { describe, expect, it } from "vitest";
import * as client from "./client.ts";
import * as errors from "./errors.ts";
import * as keys from "./keys.ts";
import * as messages from "./messages.ts";
import * as offlineQueue from "./offline-queue.ts";
import * as readings from "./readings.ts";
import * as wifi from "./wifi.ts";

describe('the SDK export, "jamgate/devices"', () => {
  it("exports every module's API", () => {
    for (const module of [envelopeModule, keys, readings, messages, errors, offlineQueue, client, wifi]) {
      for (const name of Object.keys(module)) expect(sdk, name).toHaveProperty(name, (module as Record<string, unknown>)[name]);
    }
    for (const name of ["encodeCbor", "decodeCbor", "meterReadings", "seededRandom"]) expect(typeof (sdk as Record<string, unknown>)[name]).toBe("function");
  });

  it("exports the browser-safe modules one by one, and not the Node-only ones", async () => {
    expect(keysModule.generateDeviceKey).toBe(keys.generateDeviceKey);
    expect(readingsModule.encodeReadings).toBe(readings.encodeReadings);
    expect(messagesModule.decodeReceipts).toBe(messages.decodeReceipts);
    expect(wifiModule.signVoucher).toBe(wifi.signVoucher);
    expect(typeof cborModule.encodeCbor).toBe("function");
    for (const nodeOnly of ["jamgate/devices/client", "jamgate/devices/offline-queue", "jamgate/devices/cli"]) {
      await expect(import(/* @vite-ignore */ nodeOnly)).rejects.toThrow();
    }
  });

  it("signs readings into an envelope that decodes and verifies", () => {
    const key = sdk.generateDeviceKey();
    const it = sdk.meterReadings(1, 1_700_000_000_000);
    const rows = Array.from({ length: 60 }, () => {
      const r = it.next().value!;
      return { t: r.timeMs, importWh: r.importWh, exportWh: r.exportWh };
    });
    const body = sdk.encodeReadings(rows);
    const bytes = sdk.encodeEnvelope(
      sdk.signEnvelope({ version: sdk.ENVELOPE_VERSION, device: key.deviceId, seq: 0, kind: "meter.reading", timeMs: rows[59]!.t, body }, key.secretKey),
    );
    const decoded = sdk.decodeEnvelope(bytes);
    expect(decoded.ok).toBe(true);
    if (!decoded.ok) return;
    expect(sdk.verifyEnvelope(decoded.envelope, key.publicKey)).toBe(true);
    expect(sdk.decodeBody(decoded.envelope.body)).toEqual(rows);
    expect(typeof sdk.DeviceClient).toBe("function");
  });
});
