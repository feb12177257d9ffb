/**
 * A cluster as docs/cluster.md deploys it, every part its own process: `jamgate node start`, two
 * `jamgate start --node ws://… --cluster redis://…` on their own data dirs, a real redis-server,
 * and a TCP load balancer in front. Devices (the device SDK) stream envelopes through the
 * balancer; one gateway is killed with SIGKILL under that load. Its devices reconnect through the
 * balancer to the other and go on; once the killed gateway is started again on its data dir, every
 * envelope it had PUBACKed is settled, none twice, and each device has a receipt for every seq.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { DeviceClient } from "../devices/client.ts";
import { type DeviceKey, generateDeviceKey } from "../devices/keys.ts";
import type { DeviceError, Receipt } from "../devices/messages.ts";
import { RpcClient } from "../node/rpc/client.ts";
import { tempDir } from "../node/testing/fixtures.ts";
import { freePort } from "../node/testing/ports.ts";
import { runCli, type RunningCli } from "../scripts/testing/process.ts";
import { decodeDeviceRecord, deviceKey } from "../services/telemetry/types.ts";
import { TELEMETRY_SERVICE } from "./genesis.ts";
import { type RedisServer, startRedis } from "./testing/redis.ts";
import { startTcpBalancer, type TcpBalancer } from "./testing/tcp-balancer.ts";

/** Devices streaming, and envelopes each sends: under the 64-seq window, so envelopes the killed gateway holds are never pushed out of it (docs/cluster.md, Limits). */
const DEVICES = 8;
const ENVELOPES = 40;
/** Between a device's envelopes: ~80 envelopes/s in all, steady through the kill. */
const SEND_EVERY_MS = 100;
/** A `jamgate` start from source on a busy 2-core machine took over 20 s (crash.test.ts). */
const START_MS = 90_000;
const SETTLE_MS = 90_000;

const processes: RunningCli[] = [];
const clients: DeviceClient[] = [];
let redis: RedisServer | null = null;
let balancer: TcpBalancer | null = null;
let rpc: RpcClient | null = null;

afterAll(async () => {
  for (const c of clients.splice(0)) await c.close();
  await balancer?.close();
  rpc?.close();
  for (const p of processes.splice(0)) {
    if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill("SIGKILL");
    await p.exited;
  }
  await redis?.stop();
});

async function until(check: () => boolean | Promise<boolean>, what: string, timeoutMs = SETTLE_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe("a cluster of gateway processes, one killed with SIGKILL under load", () => {
  it("settles every envelope the killed gateway PUBACKed once it is started again, none twice, while its devices go on through the other", async () => {
    redis = await startRedis();
    const nodeDir = tempDir();
    const dirs = [tempDir(), tempDir()] as const;
    // Each gateway's own key, made before the node's genesis authorizes it (as `jamgate start` makes it: a 32-byte seed in hex, 0600).
    for (const [i, dir] of dirs.entries()) writeFileSync(join(dir, "gateway-key"), `${Buffer.alloc(32, 60 + i).toString("hex")}\n`, { mode: 0o600 });
    const rpcPort = await freePort();
    const node = runCli([
      "node",
      "start",
      "--data-dir",
      nodeDir,
      "--rpc-port",
      String(rpcPort),
      "--slot-ms",
      "500",
      "--authorize",
      dirs[0],
      "--authorize",
      dirs[1],
    ]);
    processes.push(node);
    await node.waitFor(/"msg":"node started"/, START_MS);

    const ports = await Promise.all(dirs.map(async () => ({ mqtt: await freePort(), http: await freePort() })));
    const startGateway = (i: 0 | 1) => {
      const cli = runCli([
        "start",
        "--data-dir",
        dirs[i],
        "--node",
        `ws://127.0.0.1:${rpcPort}`,
        "--node-token-file",
        join(nodeDir, "rpc-token"),
        "--cluster",
        redis!.url,
        "--mqtt-port",
        String(ports[i]!.mqtt),
        "--ws-port",
        "0",
        "--http-port",
        String(ports[i]!.http),
        "--radius-port",
        "0",
        "--batch-ms",
        "50",
      ]);
      processes.push(cli);
      return cli;
    };
    const gateways: RunningCli[] = [startGateway(0), startGateway(1)];
    await Promise.all(gateways.map((g) => g.waitFor(/"msg":"jamgate started"/, START_MS)));
    balancer = await startTcpBalancer(ports.map((p) => p.mqtt));
    rpc = await RpcClient.connect(`ws://127.0.0.1:${rpcPort}`);

    // Devices registered through either gateway (its operator token), then connected through the balancer.
    const keys: DeviceKey[] = Array.from({ length: DEVICES }, () => generateDeviceKey());
    for (const [n, key] of keys.entries()) {
      const i = (n % 2) as 0 | 1;
      const token = readFileSync(join(dirs[i], "operator-token"), "utf8").trim();
      const posted = await fetch(`http://127.0.0.1:${ports[i]!.http}/v1/devices`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: JSON.stringify({ publicKey: Buffer.from(key.publicKey).toString("hex"), kind: "meter" }),
      });
      expect(posted.status).toBe(202);
    }
    await until(async () => {
      const best = await rpc!.bestBlock();
      for (const key of keys) if ((await rpc!.serviceValue(best.headerHash, TELEMETRY_SERVICE.id, deviceKey(key.deviceId))) === null) return false;
      return true;
    }, "devices registered");

    const receipts = keys.map(() => new Set<number>());
    const errors: DeviceError[][] = keys.map(() => []);
    const acked = keys.map(() => new Set<number>());
    const deviceDir = tempDir();
    for (const [n, key] of keys.entries()) {
      const client = await DeviceClient.connect({
        url: `mqtt://127.0.0.1:${balancer.port}`,
        key,
        dataDir: deviceDir,
        reconnectDelayMs: 100,
        reconnectDelayMaxMs: 1_000,
      });
      clients.push(client);
      client.on("receipt", (r: Receipt) => receipts[n]!.add(r.seq));
      client.on("deviceError", (e) => errors[n]!.push(e));
      client.on("acked", ({ seq }) => acked[n]!.add(seq));
    }
    // The balancer spread them over both gateways.
    expect(balancer.given.get(ports[0]!.mqtt)).toBeGreaterThan(0);
    expect(balancer.given.get(ports[1]!.mqtt)).toBeGreaterThan(0);

    // Stream; kill gateway 0 a third of the way in, its envelopes PUBACKed and not yet settled.
    let sent = 0;
    const streaming = (async () => {
      for (let seq = 0; seq < ENVELOPES; seq++) {
        for (const [n, client] of clients.entries()) expect(client.send("meter.reading", [{ importWh: 1000 + seq * 10 + n }])).toMatchObject({ ok: true, seq });
        sent = seq + 1;
        await new Promise((r) => setTimeout(r, SEND_EVERY_MS));
      }
    })();
    const ackedCount = () => acked.reduce((s, a) => s + a.size, 0);
    await until(() => ackedCount() >= (DEVICES * ENVELOPES) / 3, "a third PUBACKed");
    gateways[0]!.child.kill("SIGKILL");
    expect((await gateways[0]!.exited).signal).toBe("SIGKILL");
    // Its devices go on through the other gateway: everything is PUBACKed while gateway 0 is down.
    await streaming;
    expect(sent).toBe(ENVELOPES);
    await until(() => clients.every((c) => c.queued === 0), "every envelope PUBACKed, gateway 0 still down");

    // Gateway 0 again on its data dir: it resumes with envelopes it had PUBACKed and not settled.
    gateways[0] = startGateway(0);
    const resumed = JSON.parse(await gateways[0].waitFor(/"msg":"resumed at slot/, START_MS)) as { pendingEnvelopes: number };
    expect(resumed.pendingEnvelopes).toBeGreaterThan(0);

    // Every seq of every device settled, once: the ledger counts ENVELOPES each, and keeps that count.
    const settled = async (key: DeviceKey) => {
      const best = await rpc!.bestBlock();
      const value = await rpc!.serviceValue(best.headerHash, TELEMETRY_SERVICE.id, deviceKey(key.deviceId));
      const record = value === null ? null : decodeDeviceRecord(value);
      return record?.ok ? record.value.envelopesSettled : 0n;
    };
    await until(async () => (await Promise.all(keys.map(settled))).every((n) => n === BigInt(ENVELOPES)), "every envelope settled");
    await until(() => receipts.every((r) => r.size === ENVELOPES), "a receipt for every seq");
    const from = (await rpc.bestBlock()).slot;
    await until(async () => (await rpc!.bestBlock()).slot >= from + 6, "six more blocks");
    expect(await Promise.all(keys.map(settled))).toEqual(keys.map(() => BigInt(ENVELOPES)));
    for (const [n] of keys.entries()) {
      expect([...receipts[n]!].sort((x, y) => x - y)).toEqual(Array.from({ length: ENVELOPES }, (_, i) => i));
      // A resend of what a gateway already had is answered "already have it"; nothing else is refused.
      expect(errors[n]!.filter((e) => e.code !== "JG_ERR_ENVELOPE_REPLAY")).toEqual([]);
    }
  }, 400_000);
});
