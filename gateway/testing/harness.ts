/** A node, a gateway and devices in one process, on loopback ports, for gateway tests. */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import mqtt, { type MqttClient } from "mqtt";
import { type DeviceId, encodeEnvelope, type EnvelopeKind, signEnvelope } from "../../devices/envelope.ts";
import { encodeReadings } from "../../devices/readings.ts";
import { type DeviceKey, generateDeviceKey, mqttPassword } from "../../devices/keys.ts";
import { decodeDeviceError, decodeReceipts, type DeviceError, type Receipt } from "../../devices/messages.ts";
import { tinyParams } from "../../node/chain/params.ts";
import { keyPairFromSeed } from "../../node/crypto/ed25519.ts";
import type { NodeApi } from "../../node/api.ts";
import { RpcClient } from "../../node/rpc/client.ts";
import { NodeThread } from "../../node/thread/host.ts";
import { type Lowered, lowerOtherThreads } from "../../node/thread/priority.ts";
import { builtinServices, TELEMETRY_SERVICE } from "../genesis.ts";
import { Gateway, type GatewayOptions } from "../gateway.ts";
import { Registrations } from "../registration.ts";
import { telemetryService } from "../services/telemetry.ts";

export const OPERATOR_TOKEN = "test-operator-token";

export interface Harness {
  /** The node on its own thread, as `jamgate start` runs it. */
  readonly node: NodeThread;
  readonly gateway: Gateway;
  readonly registrations: Registrations;
  readonly dataDir: string;
  /** What nodeFirst did, or null without it. */
  readonly priorities: Lowered | null;
  register(key?: DeviceKey): Promise<DeviceKey>;
  stop(): Promise<void>;
}

/** nodeFirst: the node's threads ahead of the rest of the process, as `jamgate start` runs them (gateway/stack.ts). */
export async function startHarness(
  options: { slotMs?: number; gateway?: Partial<GatewayOptions>; dataDir?: string; overRpc?: boolean; nodeFirst?: boolean } = {},
): Promise<Harness> {
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), "jamgate-gw-"));
  const gatewayKey = keyPairFromSeed(new Uint8Array(32).fill(42));
  // With overRpc, the gateway drives the node as a remote one: JIP-2 over a loopback WebSocket.
  const node = await NodeThread.open({
    dataDir: join(dataDir, "node"),
    slotMs: options.slotMs ?? 100,
    services: builtinServices([gatewayKey.publicKey]),
    ...(options.overRpc ? { rpc: { port: 0, host: "127.0.0.1", token: OPERATOR_TOKEN } } : {}),
  });
  const api: NodeApi = node.rpcPort === null ? node : await RpcClient.connect(`ws://127.0.0.1:${node.rpcPort}`, { token: OPERATOR_TOKEN });
  const telemetry = telemetryService(TELEMETRY_SERVICE.id);
  const gateway = new Gateway({
    dataDir,
    api,
    params: tinyParams,
    signer: gatewayKey,
    operatorToken: OPERATOR_TOKEN,
    services: [telemetry],
    mqttPort: 0,
    wsPort: 0,
    batchDeadlineMs: 20,
    ...options.gateway,
  });
  await gateway.start();
  const priorities = options.nodeFirst === true ? lowerOtherThreads(node.threadIds) : null;
  const registrations = new Registrations(api, tinyParams, gatewayKey, gateway.registry, () => telemetry, gateway.ledger);
  return {
    node,
    gateway,
    registrations,
    dataDir,
    priorities,
    async register(key = generateDeviceKey()) {
      await registrations.register(key.publicKey, "meter");
      const deadline = Date.now() + 30_000;
      for (;;) {
        const view = await registrations.view(key.deviceId);
        if (view?.status === "registered") break;
        // A failed registration never turns registered: say why at once instead of waiting out the deadline.
        if (view?.status === "failed") throw new Error(`device ${key.deviceId} not registered: ${view.code} ${view.detail ?? ""}`);
        if (Date.now() > deadline) throw new Error(`device ${key.deviceId} not registered within 30 s (status ${view?.status ?? "unknown"})`);
        await new Promise((r) => setTimeout(r, 20));
      }
      return key;
    },
    async stop() {
      await gateway.stop();
      if (api instanceof RpcClient) api.close();
      await node.stop();
    },
  };
}

/** A signed envelope of `readings`, encoded as the SDK does (the column form when they allow it, devices/readings.ts). */
export function envelopeBytes(
  key: DeviceKey,
  seq: number,
  readings: unknown = [{ importWh: 1000 + seq }],
  kind: EnvelopeKind = "meter.reading",
  timeMs = Date.now(),
): Uint8Array {
  return encodeEnvelope(signEnvelope({ version: 1, device: key.deviceId, seq, kind, timeMs, body: encodeReadings(readings) }, key.secretKey));
}

export interface TestDevice {
  readonly client: MqttClient;
  /** One per settled envelope (a receipt message covering several seqs gives one each). */
  readonly receipts: Receipt[];
  /** Receipt messages received, each with the number of seqs it covered. */
  readonly receiptMessages: number[];
  readonly errors: DeviceError[];
  /** Resolves once `check` holds (polling the lists), or rejects after timeoutMs. */
  until(check: () => boolean, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

export async function connectDevice(port: number, key: DeviceKey, password = mqttPassword(key, Date.now() + 60_000)): Promise<TestDevice> {
  const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, {
    clientId: key.deviceId,
    username: key.deviceId,
    password,
    protocolVersion: 4,
    reconnectPeriod: 0,
    clean: true,
  });
  const receipts: Receipt[] = [];
  const receiptMessages: number[] = [];
  const errors: DeviceError[] = [];
  client.on("message", (topic, payload) => {
    if (topic.endsWith("/receipts")) {
      const batch = decodeReceipts(new Uint8Array(payload))!;
      receipts.push(...batch);
      receiptMessages.push(batch.length);
    } else if (topic.endsWith("/errors")) errors.push(decodeDeviceError(new Uint8Array(payload))!);
  });
  await client.subscribeAsync(`devices/${key.deviceId as DeviceId}/down/#`, { qos: 1 });
  return {
    client,
    receipts,
    receiptMessages,
    errors,
    async until(check, timeoutMs = 15_000) {
      const deadline = Date.now() + timeoutMs;
      while (!check()) {
        if (Date.now() > deadline)
          throw new Error(`condition not met within ${timeoutMs} ms (receipts ${receipts.length}, errors ${JSON.stringify(errors.slice(0, 3))})`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    async close() {
      await client.endAsync(true);
    },
  };
}
