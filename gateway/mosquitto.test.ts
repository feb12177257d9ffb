/**
 * Real peers: Debian's mosquitto_pub and mosquitto_sub against the embedded broker. The key,
 * the envelope and the password come from the `jamgate device` commands, as an operator
 * integrating a PLC or a shell script would do it.
 */
import { execFile, execFileSync, spawn } from "node:child_process";
import { promisify } from "node:util";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decodeReceipts } from "../devices/messages.ts";
import { generateDeviceKey, keyFromJson } from "../devices/keys.ts";
import { tempDir } from "../node/testing/fixtures.ts";
import { JAMGATE_BIN } from "../scripts/testing/process.ts";
import { type Harness, startHarness } from "./testing/harness.ts";

/** The broker runs in this process: its clients must be run without blocking the event loop. */
const run = promisify(execFile);
const jamgate = async (...args: string[]) => (await run(process.execPath, [JAMGATE_BIN, ...args], { encoding: "utf8" })).stdout;

let h: Harness;
beforeAll(async () => {
  for (const tool of ["mosquitto_pub", "mosquitto_sub"]) {
    try {
      execFileSync("which", [tool]);
    } catch {
      throw new Error(`${tool} is missing: run the tests with \`npm test\`, which installs Debian's mosquitto-clients`);
    }
  }
  // Slots of 1 s: a receipt comes at least a slot after the PUBACK, while mosquitto_pub has left the session.
  h = await startHarness({ slotMs: 1000 });
}, 30_000);
afterAll(async () => {
  await h.stop();
});

describe("mosquitto clients against the embedded broker", () => {
  it("publishes an envelope made by `jamgate device envelope` and receives its receipt with mosquitto_sub", async () => {
    const dir = tempDir();
    const keyFile = join(dir, "key.json");
    await jamgate("device", "keygen", "--out", keyFile);
    const key = keyFromJson(JSON.parse(readFileSync(keyFile, "utf8")));
    await h.register(key);
    writeFileSync(
      join(dir, "readings.jsonl"),
      [
        '{"t": 1700000000000, "importWh": 1200, "exportWh": 0, "powerW": 430, "voltageV": 231}',
        '{"t": 1700000001000, "importWh": 1201, "exportWh": 0, "powerW": 428, "voltageV": 230}',
      ].join("\n"),
    );
    const [, token] = await Promise.all([
      jamgate("device", "envelope", "--key", keyFile, "--seq", "0", "--readings", join(dir, "readings.jsonl"), "--out", join(dir, "env.cbor")),
      jamgate("device", "token", "--key", keyFile),
    ]);
    const password = token.trim();
    const port = String(h.gateway.mqttPort);

    // A device has one session, named by its device id (its client id), so the two tools take turns
    // in it. mosquitto_sub subscribes in the persistent session (-c) and waits for its SUBACK (-E):
    // from then on the broker holds the receipt for the session, however long the rest takes.
    const session = ["-h", "127.0.0.1", "-p", port, "-V", "mqttv311", "-q", "1", "-u", key.deviceId, "-P", password, "-i", key.deviceId, "-c"];
    const subscriber = [...session, "-t", `devices/${key.deviceId}/down/receipts`];
    await run("mosquitto_sub", [...subscriber, "-E"], { timeout: 20_000 });
    // mosquitto_pub publishes in the same session (-c keeps it and its subscription) and leaves at its
    // PUBACK, a slot (1 s here) before a receipt can exist.
    await run("mosquitto_pub", [...session, "-t", `devices/${key.deviceId}/up/meter.reading`, "-f", join(dir, "env.cbor")], { timeout: 20_000 });
    // The session back, mosquitto_sub gets the receipt it held (binary payload via -N; one message then exit).
    const sub = spawn("mosquitto_sub", [...subscriber, "-C", "1", "-N", "-W", "30"]);
    const received: Buffer[] = [];
    sub.stdout.on("data", (chunk: Buffer) => received.push(chunk));
    let subErr = "";
    sub.stderr.on("data", (chunk: Buffer) => (subErr += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => sub.on("exit", resolve));
    expect(code, subErr).toBe(0);
    const receipts = decodeReceipts(new Uint8Array(Buffer.concat(received)));
    expect(receipts?.map((r) => r.seq)).toEqual([0]);
    expect(await h.node.stateRoot(receipts![0]!.blockHash)).toHaveLength(32);
  }, 60_000);

  it("refuses mosquitto_pub with a wrong password (CONNACK 4)", async () => {
    const key = await h.register(generateDeviceKey());
    let failure = "";
    try {
      await run(
        "mosquitto_pub",
        [
          "-h",
          "127.0.0.1",
          "-p",
          String(h.gateway.mqttPort),
          "-V",
          "mqttv311",
          "-q",
          "1",
          "-i",
          key.deviceId,
          "-u",
          key.deviceId,
          "-P",
          "v1.1.x",
          "-t",
          `devices/${key.deviceId}/up/meter.reading`,
          "-m",
          "x",
        ],
        { timeout: 20_000 },
      );
    } catch (e) {
      failure = String((e as { stderr?: string }).stderr ?? e);
    }
    expect(failure).toMatch(/not authori[sz]ed|bad user name or password|Connection Refused/i);
  });
});
