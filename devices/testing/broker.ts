/**
 * A real MQTT 3.1.1 broker for device tests: aedes 1.x on a `net` server on a free port, checking
 * passwords as the gateway must (docs/protocol.md: a device-signed token, not expired, valid for
 * at most 24 h) and only letting a device publish under its own up topics. Tests can make
 * publishes fail (aedes then drops the client without a PUBACK [MQTT-3.3.5-2]), answer publishes
 * on the down topics, and restart the broker on the same port. Test support only.
 */
import { createServer, type Server } from "node:net";
import * as ed from "@noble/ed25519";
import { Aedes, type AuthenticateError } from "aedes";
import { decodeEnvelope, type DeviceId, type Envelope } from "../envelope.ts";
import { type DeviceKey, parseMqttPassword, TOKEN_LIFETIME_MAX_MS } from "../keys.ts";
import { type DownChannel, downTopic, parseUpTopic } from "../messages.ts";

export interface ReceivedEnvelope {
  readonly topic: string;
  readonly envelope: Envelope;
}

export interface TestBroker {
  readonly url: string;
  readonly port: number;
  /** Passwords accepted, in order (one per successful CONNECT). */
  readonly passwords: string[];
  /** Envelopes authorized (so PUBACKed), in arrival order. */
  readonly received: ReceivedEnvelope[];
  /** Topic filters subscribed to, in order. */
  readonly subscriptions: string[];
  /** When set, authorizePublish refuses: aedes closes the client's connection and sends no PUBACK. */
  failPublish: boolean;
  /** When set, every CONNECT is refused with CONNACK 3 (server unavailable). */
  refuseConnections: boolean;
  /** Called for each authorized envelope, e.g. to answer it on the down topics. */
  onEnvelope: ((e: Envelope, broker: TestBroker) => void) | null;
  publishDown(device: DeviceId, channel: DownChannel, payload: Uint8Array): Promise<void>;
  /** Drops a device's connection from the broker side (its session stays). */
  disconnect(device: DeviceId): void;
  /** Stops the broker (sessions are lost, as in a crash of an in-memory broker) and starts a new one on the same port. */
  restart(options?: { downMs?: number }): Promise<void>;
  close(): Promise<void>;
}

export async function startTestBroker(devices: readonly DeviceKey[]): Promise<TestBroker> {
  const keys = new Map(devices.map((k) => [k.deviceId as string, k.publicKey]));
  let aedes: Aedes;
  let server: Server;

  const broker: TestBroker = {
    url: "",
    port: 0,
    passwords: [],
    received: [],
    subscriptions: [],
    failPublish: false,
    refuseConnections: false,
    onEnvelope: null,
    publishDown: (device, channel, payload) =>
      new Promise((resolve, reject) =>
        aedes.publish({ cmd: "publish", topic: downTopic(device, channel), payload: Buffer.from(payload), qos: 1, retain: false, dup: false }, (e) =>
          e ? reject(e) : resolve(),
        ),
      ),
    disconnect: (device) => {
      (aedes as unknown as { clients: Record<string, { close(): void }> }).clients[device]?.close();
    },
    restart: async ({ downMs = 0 } = {}) => {
      await stop();
      await new Promise((r) => setTimeout(r, downMs));
      await start(broker.port);
    },
    close: () => stop(),
  };

  async function start(port: number): Promise<void> {
    aedes = await Aedes.createBroker({
      authenticate: (_client, username, password, done) => {
        if (broker.refuseConnections) return done(refusal(3, "unavailable"), false);
        const publicKey = username === undefined ? undefined : keys.get(username);
        if (publicKey === undefined) return done(refusal(5, "not registered"), false);
        const token = parseMqttPassword(username!, password?.toString() ?? "");
        const now = Date.now();
        if (
          token === null ||
          token.expiresAtMs <= now ||
          token.expiresAtMs > now + TOKEN_LIFETIME_MAX_MS ||
          !ed.verify(token.signature, token.message, publicKey)
        ) {
          return done(refusal(4, "bad token"), false);
        }
        broker.passwords.push(password!.toString());
        done(null, true);
      },
      authorizePublish: (client, packet, callback) => {
        const topic = parseUpTopic(packet.topic);
        if (client === null || topic === null || topic.deviceId !== client.id) return callback(new Error("JG_ERR_MQTT_TOPIC"));
        if (broker.failPublish) return callback(new Error("test broker refuses publishes"));
        const decoded = decodeEnvelope(new Uint8Array(packet.payload as Buffer));
        if (!decoded.ok) return callback(new Error(decoded.error.code));
        broker.received.push({ topic: packet.topic, envelope: decoded.envelope });
        broker.onEnvelope?.(decoded.envelope, broker);
        callback(null);
      },
    });
    aedes.on("subscribe", (subscriptions) => broker.subscriptions.push(...subscriptions.map((sub) => sub.topic)));
    server = createServer(aedes.handle);
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, "127.0.0.1", () => resolve());
    });
    const address = server.address();
    if (address === null || typeof address === "string") throw new Error("no port");
    Object.assign(broker, { port: address.port, url: `mqtt://127.0.0.1:${address.port}` });
  }

  async function stop(): Promise<void> {
    await new Promise<void>((resolve) => aedes.close(() => resolve()));
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  await start(0);
  return broker;
}

function refusal(returnCode: 3 | 4 | 5, message: string): AuthenticateError {
  return Object.assign(new Error(message), { returnCode }) as unknown as AuthenticateError;
}
