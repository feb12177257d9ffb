/**
 * Two gateways, one Redis (a real redis-server), one node: receipts and errors reach a device on
 * whichever gateway it is connected to; a device that moves between them mid-stream and resends is
 * settled exactly once and told so; a session holds at most its bound of messages whichever gateway
 * queues them; Redis killed and started again mid-run loses nothing PUBACKed. Both gateways run in
 * this process, each with its own data dir, durable log, Redis connections and RPC client to the
 * node (over its JIP-2 WebSocket, as `jamgate start --node` drives it); cluster-kill.test.ts runs
 * them as `jamgate start --cluster` processes.
 */
import { connect as tcpConnect } from "node:net";
import mqtt, { type MqttClient } from "mqtt";
import { generate, parser as mqttParser, type Packet } from "mqtt-packet";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DeviceId } from "../devices/envelope.ts";
import { type DeviceKey, mqttPassword } from "../devices/keys.ts";
import { type DeviceError, decodeDeviceError, decodeReceipts, type Receipt } from "../devices/messages.ts";
import { tinyParams } from "../node/chain/params.ts";
import { keyPairFromSeed } from "../node/crypto/ed25519.ts";
import { RpcClient } from "../node/rpc/client.ts";
import { tempDir } from "../node/testing/fixtures.ts";
import { decodeDeviceRecord, deviceKey } from "../services/telemetry/types.ts";
import { Cluster, parseClusterUrl } from "./cluster/index.ts";
import { Gateway } from "./gateway.ts";
import { TELEMETRY_SERVICE } from "./genesis.ts";
import { telemetryService } from "./services/telemetry.ts";
import { envelopeBytes, type Harness, OPERATOR_TOKEN, startHarness } from "./testing/harness.ts";
import { type RedisServer, startRedis } from "./testing/redis.ts";

/** Messages a session holds here: small, so the bound is reached with a few refusals. */
const SESSION_QUEUE_MAX = 5;
/** Deadlines for what takes a few slots (slots of 500 ms): generous for a busy 2-core machine. */
const SETTLE_MS = 60_000;

let redis: RedisServer;
let h: Harness;
let clusterA: Cluster;
let clusterB: Cluster;
let a: Gateway;
let b: Gateway;
let rpcB: RpcClient;
let redisClient: Redis;
const open: MqttClient[] = [];

/** Short health checks, so a Redis that stops answering is noticed in ~1.5 s instead of ~15. */
const connectCluster = () => Cluster.connect({ url: parseClusterUrl(redis.url), limits: { resumeGraceMs: 500, healthCheckMs: 500, healthTimeoutMs: 1_000 } });

beforeAll(async () => {
  redis = await startRedis();
  redisClient = new Redis(redis.port, "127.0.0.1", { lazyConnect: true, maxRetriesPerRequest: null });
  redisClient.on("error", () => {}); // while the test has Redis down
  await redisClient.connect();
  clusterA = await connectCluster();
  clusterB = await connectCluster();
  const limits = { sessionQueueMax: SESSION_QUEUE_MAX };
  h = await startHarness({ slotMs: 500, overRpc: true, gateway: { cluster: clusterA, limits } });
  a = h.gateway;
  rpcB = await RpcClient.connect(`ws://127.0.0.1:${h.node.rpcPort}`, { token: OPERATOR_TOKEN });
  b = new Gateway({
    dataDir: tempDir(),
    api: rpcB,
    params: tinyParams,
    // The harness's chain authorizes this key; each gateway of a real cluster has its own (cluster-kill.test.ts).
    signer: keyPairFromSeed(new Uint8Array(32).fill(42)),
    operatorToken: OPERATOR_TOKEN,
    services: [telemetryService(TELEMETRY_SERVICE.id)],
    mqttPort: 0,
    batchDeadlineMs: 20,
    limits,
    cluster: clusterB,
  });
  await b.start();
}, 120_000);

afterAll(async () => {
  for (const c of open.splice(0)) await c.endAsync(true).catch(() => {});
  await b?.stop();
  rpcB?.close();
  await clusterB?.close();
  await h?.stop();
  await clusterA?.close();
  redisClient?.disconnect();
  await redis?.stop();
});

/** A device's persistent session (clean session 0, as the SDK connects) on `gateway`, with what reaches it. */
async function session(gateway: Gateway, key: DeviceKey) {
  const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${gateway.mqttPort}`, {
    clientId: key.deviceId,
    username: key.deviceId,
    password: mqttPassword(key, Date.now() + 600_000),
    protocolVersion: 4,
    reconnectPeriod: 0,
    clean: false,
  });
  client.on("error", () => {});
  open.push(client);
  const receipts: Receipt[] = [];
  const errors: DeviceError[] = [];
  const control: Buffer[] = [];
  client.on("message", (topic, payload) => {
    if (topic.endsWith("/receipts")) receipts.push(...decodeReceipts(new Uint8Array(payload))!);
    else if (topic.endsWith("/errors")) errors.push(decodeDeviceError(new Uint8Array(payload))!);
    else if (topic.endsWith("/control")) control.push(payload);
  });
  await client.subscribeAsync(`devices/${key.deviceId as DeviceId}/down/#`, { qos: 1 });
  return {
    client,
    receipts,
    errors,
    control,
    publish: (seq: number, bytes = envelopeBytes(key, seq)) => client.publishAsync(`devices/${key.deviceId}/up/meter.reading`, Buffer.from(bytes), { qos: 1 }),
    leave: () => client.endAsync(),
  };
}

async function until(check: () => boolean | Promise<boolean>, what: string, timeoutMs = SETTLE_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** The envelopes the telemetry service has settled for the device, read from the ledger's state. */
async function settledOnLedger(key: DeviceKey): Promise<bigint> {
  const best = await rpcB.bestBlock();
  const value = await rpcB.serviceValue(best.headerHash, TELEMETRY_SERVICE.id, deviceKey(key.deviceId));
  const record = value === null ? null : decodeDeviceRecord(value);
  return record?.ok ? record.value.envelopesSettled : 0n;
}

/** Waits a few more blocks and checks the ledger's count stays put: a late second settlement would show. */
async function settledStaysAt(key: DeviceKey, count: bigint): Promise<void> {
  await until(async () => (await settledOnLedger(key)) === count, `${count} settled on the ledger`);
  const from = (await rpcB.bestBlock()).slot;
  await until(async () => (await rpcB.bestBlock()).slot >= from + 6, "six more blocks");
  expect(await settledOnLedger(key)).toBe(count);
}

const seqsOf = (items: readonly { seq: number | null }[]) => items.map((r) => r.seq).sort((x, y) => (x ?? -1) - (y ?? -1));
const metric = async (g: Gateway, pattern: RegExp) => Number((await g.metrics.registry.metrics()).match(pattern)?.[1] ?? 0);

/** A signed envelope with its signature zeroed: PUBACKed unchecked, refused by refine (JG_ERR_ENVELOPE_SIGNATURE, after settlement). */
function forged(key: DeviceKey, seq: number): Uint8Array {
  const bytes = envelopeBytes(key, seq);
  bytes.fill(0, bytes.length - 64);
  return bytes;
}

describe("several gateways sharing Redis and one node", () => {
  it("routes a device's receipts, errors and control messages to the gateway it is connected to", async () => {
    const key = await h.register();
    // On A: five envelopes and one forged, all PUBACKed; then the device moves to B before they settle.
    const onA = await session(a, key);
    for (let seq = 0; seq < 5; seq++) await onA.publish(seq);
    await onA.publish(5, forged(key, 5));
    await onA.leave();
    const onB = await session(b, key);
    // Settled by A's settlement and published by A's broker; what had not reached it on A reaches it on B.
    const receipts = () => [...onA.receipts, ...onB.receipts];
    const errors = () => [...onA.errors, ...onB.errors];
    await until(() => new Set(receipts().map((r) => r.seq)).size === 5 && errors().length >= 1, "receipts and the error");
    expect(onB.receipts.length + onB.errors.length).toBeGreaterThan(0);
    expect([...new Set(seqsOf(receipts()))]).toEqual([0, 1, 2, 3, 4]);
    expect(errors().map((e) => [e.seq, e.code])).toContainEqual([5, "JG_ERR_ENVELOPE_SIGNATURE"]);
    // A message A publishes for the device now, while it is online on B, crosses at once (not at a next connect).
    a.publishControl(key.deviceId, new Uint8Array([1, 2, 3]));
    await until(() => onB.control.length === 1, "A's control message on B", 15_000);
    expect([...onB.control[0]!]).toEqual([1, 2, 3]);
    await settledStaysAt(key, 5n);
  }, 120_000);

  it("settles a device that moves mid-stream and resends exactly once, and answers each resend JG_ERR_ENVELOPE_REPLAY before its PUBACK", async () => {
    const key = await h.register();
    const onA = await session(a, key);
    for (let seq = 0; seq < 10; seq++) await onA.publish(seq);
    // Moves to B without waiting for anything to settle, and resends its last three (their PUBACKs lost, as far as it knows) and five new ones.
    await onA.leave();
    // A tells Redis its seqs after their log write, in batches: on a busy machine B's connect could
    // come first, and then the ledger, not B, refuses the resends (the next case). This one is B
    // answering them from what Redis knows.
    const windowKey = `${parseClusterUrl(redis.url).channelPrefix}window:${key.deviceId}`;
    await until(async () => (await redisClient.zcard(windowKey)) === 10, "A's seqs in Redis", 15_000);
    const rejectedBefore = await metric(b, /^jamgate_envelopes_rejected_total\{code="JG_ERR_ENVELOPE_REPLAY"\} (\d+)$/m);
    const refusedOnChain = async () =>
      (await metric(a, /^jamgate_envelopes_refused_on_chain_total (\d+)$/m)) + (await metric(b, /^jamgate_envelopes_refused_on_chain_total (\d+)$/m));
    const refusedBefore = await refusedOnChain();
    const onB = await session(b, key);
    for (const seq of [7, 8, 9, 10, 11, 12, 13, 14]) await onB.publish(seq);
    const receipts = () => [...onA.receipts, ...onB.receipts];
    await until(() => new Set(receipts().map((r) => r.seq)).size === 15, "receipts for 0…14");
    // Each seq settled once: a receipt each, whichever gateway settled it; the resends answered "already have it" by B, before their PUBACK.
    expect([...new Set(seqsOf(receipts()))]).toEqual(Array.from({ length: 15 }, (_, i) => i));
    expect(onA.errors).toEqual([]);
    expect(seqsOf(onB.errors)).toEqual([7, 8, 9]);
    expect(onB.errors.every((e) => e.code === "JG_ERR_ENVELOPE_REPLAY")).toBe(true);
    expect((await metric(b, /^jamgate_envelopes_rejected_total\{code="JG_ERR_ENVELOPE_REPLAY"\} (\d+)$/m)) - rejectedBefore).toBe(3);
    await settledStaysAt(key, 15n);
    // Nothing was refused on chain: no duplicate reached a package.
    expect((await refusedOnChain()) - refusedBefore).toBe(0);
  }, 120_000);

  it("leaves the ledger to refuse a resend the shared window missed (a gateway killed before it told Redis): settled once, the resend told JG_ERR_ENVELOPE_REPLAY after settlement", async () => {
    const key = await h.register();
    const onA = await session(a, key);
    for (let seq = 0; seq < 3; seq++) await onA.publish(seq);
    await onA.leave();
    // As if A had died between its log write and its note to Redis.
    const windowKey = `${parseClusterUrl(redis.url).channelPrefix}window:${key.deviceId}`;
    await until(async () => (await redisClient.zcard(windowKey)) === 3, "A's seqs in Redis", 15_000);
    await redisClient.del(windowKey);
    const onB = await session(b, key);
    // Seq 0 is below what the ledger can tell B (at most its highest settled), so B takes it; 3 is new.
    await onB.publish(0);
    await onB.publish(3);
    const receipts = () => [...onA.receipts, ...onB.receipts];
    await until(() => new Set(receipts().map((r) => r.seq)).size === 4 && onB.errors.length === 1, "receipts for 0…3 and one error");
    expect([...new Set(seqsOf(receipts()))]).toEqual([0, 1, 2, 3]);
    expect(onB.errors.map((e) => [e.seq, e.code])).toEqual([[0, "JG_ERR_ENVELOPE_REPLAY"]]);
    expect(onB.errors[0]!.detail).toMatch(/refused by service/);
    await settledStaysAt(key, 4n);
  }, 120_000);

  it("learns a device's whole settled window from the ledger when Redis knows none of its seqs: a resend of any settled seq is JG_ERR_ENVELOPE_REPLAY before its PUBACK", async () => {
    // d1 is known to B before it settles anything (B then reads its window from the ledger at its next connect);
    // d2 is new to B (B's registry reads it at that connect).
    const [d1, d2] = [await h.register(), await h.register()];
    const early = await session(b, d1);
    await early.leave();
    for (const key of [d1, d2]) {
      const onA = await session(a, key);
      for (let seq = 0; seq < 5; seq++) await onA.publish(seq);
      await until(() => new Set(onA.receipts.map((r) => r.seq)).size === 5, "receipts for 0…4 on A");
      await onA.leave();
      await until(async () => (await settledOnLedger(key)) === 5n, "0…4 settled on the ledger");
      // Redis lost the device's seqs (a restart without its data, a week away).
      const windowKey = `${parseClusterUrl(redis.url).channelPrefix}window:${key.deviceId}`;
      await until(async () => (await redisClient.zcard(windowKey)) === 5, "A's seqs in Redis", 15_000);
      await redisClient.del(windowKey);
    }
    const rejected = () => metric(b, /^jamgate_envelopes_rejected_total\{code="JG_ERR_ENVELOPE_REPLAY"\} (\d+)$/m);
    const refusedOnChain = () => metric(b, /^jamgate_envelopes_refused_on_chain_total (\d+)$/m);
    for (const key of [d1, d2]) {
      const [rejectedBefore, refusedBefore] = [await rejected(), await refusedOnChain()];
      const onB = await session(b, key);
      // Below the highest settled (4) as well as the highest itself, then a new one.
      for (const seq of [1, 3, 4, 5]) await onB.publish(seq);
      await until(() => onB.receipts.some((r) => r.seq === 5), "the receipt for 5");
      expect(seqsOf(onB.errors)).toEqual([1, 3, 4]);
      expect(onB.errors.every((e) => e.code === "JG_ERR_ENVELOPE_REPLAY" && !/refused by service/.test(e.detail))).toBe(true);
      expect((await rejected()) - rejectedBefore).toBe(3);
      await settledStaysAt(key, 6n);
      expect((await refusedOnChain()) - refusedBefore).toBe(0);
      await onB.leave();
    }
  }, 180_000);

  it("holds at most sessionQueueMax messages for a session away, whichever gateway queues them, and delivers them on any gateway", async () => {
    const key = await h.register();
    const away = await session(a, key);
    const notHeldBefore = await metric(a, /^jamgate_mqtt_messages_not_held_total\{code="JG_ERR_MQTT_SESSION_QUEUE"\} (\d+)$/m);
    for (let seq = 0; seq < SESSION_QUEUE_MAX + 2; seq++) await away.publish(seq, forged(key, seq));
    await away.leave();
    // A settles them while the device is away: one error each; the session holds SESSION_QUEUE_MAX, A counts the rest.
    await until(
      async () => (await metric(a, /^jamgate_mqtt_messages_not_held_total\{code="JG_ERR_MQTT_SESSION_QUEUE"\} (\d+)$/m)) - notHeldBefore === 2,
      "2 not held",
    );
    expect(await redisClient.llen(`outgoing:${key.deviceId}`)).toBe(SESSION_QUEUE_MAX);
    // Back on B: the ones held, PUBACKed there and gone from Redis.
    const back = await session(b, key);
    await until(() => back.errors.length === SESSION_QUEUE_MAX, `${SESSION_QUEUE_MAX} errors on B`);
    await until(async () => (await redisClient.llen(`outgoing:${key.deviceId}`)) === 0, "the session's queue emptied");
    expect(back.errors.every((e) => e.code === "JG_ERR_ENVELOPE_SIGNATURE")).toBe(true);
  }, 120_000);

  it("writes a message it could not hold to a session online once, and stores nothing of it in Redis", async () => {
    const key = await h.register();
    const away = await session(a, key);
    for (let seq = 0; seq < SESSION_QUEUE_MAX; seq++) await away.publish(seq, forged(key, seq));
    await away.leave();
    await until(async () => (await redisClient.llen(`outgoing:${key.deviceId}`)) === SESSION_QUEUE_MAX, "the session's queue full");
    const held = new Set(await redisClient.keys("packet:*"));
    // Back on B with a client that never PUBACKs: the queue stays full while it is online.
    const socket = tcpConnect(b.mqttPort, "127.0.0.1");
    const parse = mqttParser({ protocolVersion: 4 });
    const got: Packet[] = [];
    parse.on("packet", (packet: Packet) => got.push(packet));
    socket.on("data", (chunk) => parse.parse(chunk));
    socket.on("error", () => {});
    socket.write(
      generate({
        cmd: "connect",
        protocolId: "MQTT",
        protocolVersion: 4,
        clean: false,
        clientId: key.deviceId,
        keepalive: 60,
        username: key.deviceId,
        password: Buffer.from(mqttPassword(key, Date.now() + 600_000)),
      }),
    );
    try {
      await until(() => got.filter((p) => p.cmd === "publish").length === SESSION_QUEUE_MAX, "the held messages delivered", 15_000);
      const notHeldBefore = await metric(a, /^jamgate_mqtt_messages_not_held_total\{code="JG_ERR_MQTT_SESSION_QUEUE"\} (\d+)$/m);
      a.publishControl(key.deviceId, new Uint8Array([7]));
      await until(() => got.some((p) => p.cmd === "publish" && p.topic.endsWith("/control")), "the control message, not held, written", 15_000);
      expect((await metric(a, /^jamgate_mqtt_messages_not_held_total\{code="JG_ERR_MQTT_SESSION_QUEUE"\} (\d+)$/m)) - notHeldBefore).toBe(1);
      const control = got.find((p) => p.cmd === "publish" && p.topic.endsWith("/control")) as Packet & { messageId: number };
      socket.write(generate({ cmd: "puback", messageId: control.messageId }));
      // Its PUBACK cleared nothing, and nothing of it was stored: the keys are those of the messages held
      // (a short wait for what must not happen: the PUBACK has nothing to show when it is handled).
      await new Promise((r) => setTimeout(r, 300));
      expect(new Set(await redisClient.keys("packet:*"))).toEqual(held);
      expect(await redisClient.llen(`outgoing:${key.deviceId}`)).toBe(SESSION_QUEUE_MAX);
    } finally {
      socket.destroy();
    }
  }, 120_000);

  it("connects with the Redis password it is given, and fails with JG_ERR_CLUSTER_UNREACHABLE on a wrong one or a Redis that does not answer", async () => {
    const url = parseClusterUrl(redis.url);
    await redisClient.config("SET", "requirepass", "s3cret");
    try {
      await expect(Cluster.connect({ url })).rejects.toMatchObject({
        code: "JG_ERR_CLUSTER_UNREACHABLE",
        message: expect.stringMatching(/NOAUTH|Authentication/i),
      });
      await expect(Cluster.connect({ url, password: "wrong" })).rejects.toMatchObject({
        code: "JG_ERR_CLUSTER_UNREACHABLE",
        message: expect.stringMatching(/WRONGPASS/),
      });
      const withPassword = await Cluster.connect({ url, password: "s3cret" });
      expect(withPassword.available).toBe(true);
      await withPassword.close();
    } finally {
      await redisClient.config("SET", "requirepass", "");
    }
    // Nothing listens on port 1.
    await expect(Cluster.connect({ url: parseClusterUrl("redis://127.0.0.1:1/0") })).rejects.toMatchObject({ code: "JG_ERR_CLUSTER_UNREACHABLE" });
  });

  it("notices a Redis that stops answering without closing its connections (a network cut), refuses new sessions meanwhile, and comes back", async () => {
    redis.freeze();
    try {
      await until(() => !clusterA.available && !clusterB.available, "both gateways see Redis gone", 15_000);
    } finally {
      redis.thaw();
    }
    await until(() => clusterA.available && clusterB.available, "both gateways reconnected", 30_000);
  }, 60_000);

  it("keeps taking envelopes while Redis is down and refuses new sessions (CONNACK 3), then reconnects and loses nothing PUBACKed", async () => {
    const key = await h.register();
    const other = await h.register();
    const onA = await session(a, key);
    await onA.publish(0);
    await redis.kill();
    await until(() => !clusterA.available && !clusterB.available, "both gateways see Redis gone", 15_000);
    // The device connected to A still publishes, and each PUBACK comes (the log is A's own).
    for (let seq = 1; seq < 6; seq++) await onA.publish(seq);
    // A new session cannot open: its session lives in Redis.
    const refused = await mqtt
      .connectAsync(`mqtt://127.0.0.1:${b.mqttPort}`, {
        clientId: other.deviceId,
        username: other.deviceId,
        password: mqttPassword(other, Date.now() + 600_000),
        protocolVersion: 4,
        reconnectPeriod: 0,
        clean: false,
      })
      .then(
        (c) => (open.push(c), "connected"),
        (e: { code?: number }) => `refused ${e.code}`,
      );
    expect(refused).toBe("refused 3");
    expect(b.errorStats().JG_ERR_CLUSTER_UNAVAILABLE).toBeGreaterThanOrEqual(1);
    await redis.restart();
    await until(() => clusterA.available && clusterB.available, "both gateways reconnected", 30_000);
    for (let seq = 6; seq < 10; seq++) await onA.publish(seq);
    // Everything PUBACKed is settled once; the receipts that waited for Redis come too.
    await until(() => new Set(onA.receipts.map((r) => r.seq)).size === 10, "receipts for 0…9");
    await settledStaysAt(key, 10n);
    // New sessions open again, on either gateway.
    const onB = await session(b, other);
    await onB.publish(0);
    await until(() => onB.receipts.some((r) => r.seq === 0), "a receipt on B after the restart");
  }, 180_000);
});
