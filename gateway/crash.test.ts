/**
 * Nothing accepted is lost, nothing is settled twice: `jamgate start` is killed with SIGKILL
 * while a device streams envelopes, started again on the same data dir, and the device resends
 * what it had no PUBACK for (as the device SDK's offline queue does). In the end every envelope
 * is settled on the ledger exactly once.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import mqtt from "mqtt";
import { afterEach, describe, expect, it } from "vitest";
import { generateDeviceKey, mqttPassword } from "../devices/keys.ts";
import { RpcClient } from "../node/rpc/client.ts";
import { tempDir } from "../node/testing/fixtures.ts";
import { freePort } from "../node/testing/ports.ts";
import { runCli, type RunningCli } from "../scripts/testing/process.ts";
import { TELEMETRY_SERVICE } from "./genesis.ts";
import { decodeDeviceRecord, deviceKey } from "../services/telemetry/types.ts";
import { envelopeBytes } from "./testing/harness.ts";

const processes: RunningCli[] = [];
afterEach(async () => {
  for (const p of processes.splice(0)) {
    if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill("SIGKILL");
    await p.exited;
  }
});

describe("jamgate start, killed mid-stream", () => {
  it("settles every PUBACKed envelope exactly once after SIGKILL and restart", async () => {
    const dataDir = tempDir();
    const [mqttPort, wsPort, httpPort, rpcPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
    const start = async () => {
      const cli = runCli([
        "start",
        "--data-dir",
        dataDir,
        "--mqtt-port",
        String(mqttPort),
        "--ws-port",
        String(wsPort),
        "--http-port",
        String(httpPort),
        "--rpc-port",
        String(rpcPort),
        "--slot-ms",
        "200",
        "--batch-ms",
        "50",
      ]);
      processes.push(cli);
      // Generous: on a busy 2-core machine a start (tsx, the node's thread, warm refine threads) took over 20 s.
      await cli.waitFor(/"msg":"jamgate started"/, 90_000);
      return cli;
    };
    const first = await start();

    // Onboard a device over HTTP with the operator token from the data dir.
    const token = readFileSync(join(dataDir, "operator-token"), "utf8").trim();
    const key = generateDeviceKey();
    const http = `http://127.0.0.1:${httpPort}`;
    const posted = await fetch(`${http}/v1/devices`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify({ publicKey: Buffer.from(key.publicKey).toString("hex"), kind: "meter" }),
    });
    expect(posted.status).toBe(202);
    for (let i = 0; ; i++) {
      const view = (await (await fetch(`${http}/v1/devices/${key.deviceId}`)).json()) as { status?: string };
      if (view.status === "registered") break;
      if (i > 600) throw new Error(`not registered within 30 s: ${JSON.stringify(view)}`);
      await new Promise((r) => setTimeout(r, 50));
    }

    // Stream envelopes; kill the gateway after 150 PUBACKs, with more in flight.
    const total = 400;
    const acked = new Set<number>();
    const connect = () =>
      mqtt.connectAsync(`mqtt://127.0.0.1:${mqttPort}`, {
        clientId: key.deviceId,
        username: key.deviceId,
        password: mqttPassword(key, Date.now() + 600_000),
        protocolVersion: 4,
        reconnectPeriod: 0,
      });
    const client = await connect();
    client.on("error", () => {});
    let killed = false;
    const sends: Promise<void>[] = [];
    for (let seq = 0; seq < total && !killed; seq++) {
      sends.push(
        client.publishAsync(`devices/${key.deviceId}/up/meter.reading`, Buffer.from(envelopeBytes(key, seq)), { qos: 1 }).then(
          () => {
            acked.add(seq);
            if (acked.size === 150 && !killed) {
              killed = true;
              first.child.kill("SIGKILL");
            }
          },
          () => {},
        ),
      );
      if (seq % 20 === 19) await new Promise((r) => setTimeout(r, 5));
    }
    await first.exited;
    await client.endAsync(true).catch(() => {});
    await Promise.race([Promise.all(sends), new Promise((r) => setTimeout(r, 1_000))]);
    expect(killed).toBe(true);
    expect(acked.size).toBeGreaterThanOrEqual(150);

    // Restart; the device resends everything it has no PUBACK for (the acked ones it forgets).
    await start();
    const again = await connect();
    const errors: string[] = [];
    again.on("message", (topic, payload) => {
      if (topic.endsWith("/errors")) errors.push(payload.toString("latin1"));
    });
    await again.subscribeAsync(`devices/${key.deviceId}/down/errors`, { qos: 1 });
    for (let seq = 0; seq < total; seq++) {
      if (!acked.has(seq)) await again.publishAsync(`devices/${key.deviceId}/up/meter.reading`, Buffer.from(envelopeBytes(key, seq)), { qos: 1 });
    }

    // Every envelope is settled, once: the ledger counts exactly `total` for the device.
    const rpc = await RpcClient.connect(`ws://127.0.0.1:${rpcPort}`);
    try {
      let settled = 0n;
      for (let i = 0; i < 600 && settled < BigInt(total); i++) {
        const best = await rpc.bestBlock();
        const value = await rpc.serviceValue(best.headerHash, TELEMETRY_SERVICE.id, deviceKey(key.deviceId));
        const record = value === null ? null : decodeDeviceRecord(value);
        settled = record?.ok ? record.value.envelopesSettled : 0n;
        if (settled < BigInt(total)) await new Promise((r) => setTimeout(r, 100));
      }
      expect(settled).toBe(BigInt(total));
      // Give a late duplicate settlement the chance to show (blocks, not wall time: a package
      // submitted now is accumulated within a few), then check again.
      const settledAt = (await rpc.bestBlock()).slot;
      for (let i = 0; i < 600 && (await rpc.bestBlock()).slot < settledAt + 8; i++) await new Promise((r) => setTimeout(r, 50));
      const best = await rpc.bestBlock();
      expect(best.slot).toBeGreaterThanOrEqual(settledAt + 8);
      const record = decodeDeviceRecord((await rpc.serviceValue(best.headerHash, TELEMETRY_SERVICE.id, deviceKey(key.deviceId)))!);
      expect(record.ok && record.value.envelopesSettled).toBe(BigInt(total));
    } finally {
      rpc.close();
      await again.endAsync(true);
    }
    // Resent envelopes that were logged before the kill are answered "already have it", nothing else.
    expect(errors.every((e) => e.includes("JG_ERR_ENVELOPE_REPLAY"))).toBe(true);
  }, 300_000);
});
