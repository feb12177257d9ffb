/**
 * A device written in another language from docs/protocol.md alone (devices/interop/python/
 * device.py: Python with Debian's paho-mqtt, cbor2 and PyNaCl; its author read only the docs)
 * against the real gateway: it registers, connects, settles envelopes with receipts, gets its
 * replay and a garbage payload answered as the document says — over plain MQTT and over TLS. If
 * the document and the gateway drift apart, this fails.
 */
import { execFile, execFileSync } from "node:child_process";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DeviceKey } from "../keys.ts";
import { tempDir } from "../../node/testing/fixtures.ts";
import { type Harness, startHarness } from "../../gateway/testing/harness.ts";
import { makeTestPki } from "../../gateway/testing/tls.ts";

const run = promisify(execFile);
const DEVICE = new URL("./python/device.py", import.meta.url).pathname;
/** Debian's Python: the one python3-paho-mqtt, python3-cbor2 and python3-nacl install into. */
const PYTHON = "/usr/bin/python3";

interface RunResult {
  readonly deviceId: string;
  readonly receipts: number[];
  readonly errors: { s: number | null; c: string }[];
  readonly ok: boolean;
}

const pki = makeTestPki(tempDir());
let h: Harness;

beforeAll(async () => {
  try {
    execFileSync(PYTHON, ["-c", "import paho.mqtt.client, cbor2, nacl.signing"]);
  } catch {
    throw new Error(
      `${PYTHON} with paho-mqtt, cbor2 and PyNaCl is missing: run the tests with \`npm test\`, which installs Debian's python3-paho-mqtt, python3-cbor2 and python3-nacl`,
    );
  }
  h = await startHarness({ gateway: { tls: { cert: pki.cert, key: pki.key }, mqttsPort: 0 } });
}, 60_000);

afterAll(async () => {
  await h?.stop();
});

async function pythonDevice(seedHex: string): Promise<DeviceKey> {
  const { stdout } = await run(PYTHON, [DEVICE, "keygen", "--seed-hex", seedHex]);
  const { deviceId, publicKey } = JSON.parse(stdout) as { deviceId: string; publicKey: string };
  // Only the public half goes to registration; the device keeps its seed.
  return await h.register({ deviceId, publicKey: Uint8Array.from(Buffer.from(publicKey, "hex")) } as DeviceKey);
}

async function runDevice(args: string[]): Promise<RunResult> {
  const { stdout } = await run(PYTHON, [DEVICE, "run", ...args, "--timeout-s", "90"], { timeout: 120_000 });
  return JSON.parse(stdout.trim().split("\n").at(-1)!) as RunResult;
}

describe("a device written from docs/protocol.md alone (Python)", () => {
  it("derives its id as the gateway does, settles its envelopes over plain MQTT, and gets its replay and a garbage payload answered as documented", async () => {
    const key = await pythonDevice("11".repeat(32));
    const result = await runDevice(["--seed-hex", "11".repeat(32), "--host", "127.0.0.1", "--port", String(h.gateway.mqttPort), "--count", "3"]);
    expect(result).toEqual({
      deviceId: key.deviceId,
      receipts: [0, 1, 2],
      errors: [
        { s: 0, c: "JG_ERR_ENVELOPE_REPLAY" },
        { s: null, c: "JG_ERR_ENVELOPE_MALFORMED" },
      ],
      ok: true,
    });
  }, 150_000);

  it("does the same over MQTT over TLS, checking the gateway's certificate against its CA", async () => {
    await pythonDevice("22".repeat(32));
    const result = await runDevice([
      "--seed-hex",
      "22".repeat(32),
      "--host",
      "127.0.0.1",
      "--port",
      String(h.gateway.mqttsPort),
      "--cafile",
      pki.caFile,
      "--count",
      "2",
    ]);
    expect(result).toMatchObject({ receipts: [0, 1], ok: true });
  }, 150_000);
});
