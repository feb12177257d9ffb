/**
 * The embedded MQTT broker: aedes 1.x (MQTT 3.1.1 only; aedes has no MQTT 5) on TCP and on
 * WebSocket, with its limits set deliberately. The gateway's policy lives in the hooks it passes:
 * who may connect, and what a publish or subscribe may do.
 *
 * aedes writes a QoS 1 PUBACK only after the asynchronous `authorizePublish` hook calls back
 * (lib/handlers/publish.js), so the gateway's durable write goes in that hook; an error from it
 * closes the connection (3.1.1 cannot refuse one PUBLISH [MQTT-3.3.5-2]), which is why a bad
 * envelope is accepted at the MQTT level and answered on the device's error topic instead.
 */
import { createServer, type Server } from "node:net";
import { type AddressInfo } from "node:net";
import { createServer as createHttpServer, type Server as HttpServer } from "node:http";
import { Aedes, type AuthenticateError, type Client, type PublishPacket, type Subscription } from "aedes";
import aedesPersistence from "aedes-persistence";
import { createWebSocketStream, WebSocketServer } from "ws";

export const brokerLimits = {
  /** Topic depth: ours are devices/{id}/up/{kind}, 4 levels; 8 refuses nonsense early (aedes default 100). */
  maxTopicLevels: 8,
  /** A subscriber whose socket does not drain in 10 s is cut off, so one slow consumer cannot stall delivery to others (aedes default 60 s). */
  drainTimeoutMs: 10_000,
  /** Messages queued for a client before its session is up (aedes default 42). */
  queueLimit: 64,
  /**
   * Messages aedes routes at once before it queues the rest: 0, no queue. mqemitter releases a
   * queue by recursion, one level per queued message without subscribers (a device's own publish),
   * and at 1,000 it overflowed the stack at 5,000 envelopes/s (mcollina/mqemitter#204; BENCHMARKS.md
   * §5.1). What is routed stays bounded without it: a client's publishes are handled one at a time
   * (so at most connectionsMax), and the gateway keeps at most 5,000 receipts and errors in flight
   * (gateway.ts DOWNLINK_IN_FLIGHT_MAX).
   */
  concurrency: 0,
  /** A CONNECT must arrive within 10 s of the TCP connection (aedes default 30 s): idle half-open sockets are cheap to keep out. */
  connectTimeoutMs: 10_000,
  /** Longest keep-alive a client may ask for: 20 min, so a dead device's session is noticed (0 = none in aedes). */
  keepaliveLimitS: 1_200,
  /**
   * QoS 1 messages held for one persistent session (`clean: false`, as the device SDK connects)
   * and not yet PUBACKed, whether the device is online or away: about a day of receipts for a
   * device that sends an envelope every 90 s. aedes' in-memory persistence keeps them in an array
   * per client with no bound, so one device away for good could grow the gateway without end.
   * Past it, a message for that session is not held (its receipt stays on the ledger), counted
   * as JG_ERR_MQTT_SESSION_QUEUE. A session that is online with this many messages not PUBACKed
   * is cut off by aedes when the next one cannot be held (its outgoingUpdate finds no such
   * packet and the client errors, aedes/lib/client.js writeQoS): a device that far behind is a
   * slow consumer.
   */
  sessionQueueMax: 1_000,
  /** Largest WebSocket frame: an envelope is at most 64 KiB, the rest is MQTT headers. (On TCP, aedes has no packet bound: an oversize envelope is refused after parsing, by size, in authorizePublish.) */
  maxPacketBytes: 66 * 1024,
} as const;

export interface BrokerHooks {
  preConnect(client: Client, remoteAddress: string, callback: (error: Error | null, ok: boolean) => void): void;
  authenticate(client: Client, username: string | undefined, password: Buffer | undefined, callback: (error: AuthenticateError | null, ok: boolean | null) => void): void;
  authorizePublish(client: Client | null, packet: PublishPacket, callback: (error?: Error | null) => void): void;
  authorizeSubscribe(client: Client, subscription: Subscription, callback: (error: Error | null, subscription?: Subscription | null) => void): void;
}

export interface BrokerOptions {
  readonly host: string;
  readonly mqttPort: number;
  /** WebSocket port, or null for none. */
  readonly wsPort: number | null;
  /** Override of brokerLimits.drainTimeoutMs (tests). */
  readonly drainTimeoutMs?: number | undefined;
  /** Override of brokerLimits.sessionQueueMax (tests). */
  readonly sessionQueueMax?: number | undefined;
  /** Called for each message not held because its session's queue is full, with the client id. */
  readonly onSessionQueueFull?: (clientId: string) => void;
}

/** The slice of aedes-persistence's interface that holds a session's outgoing messages. */
interface OutgoingPersistence {
  outgoingEnqueue(sub: { clientId: string }, packet: unknown): Promise<void>;
  outgoingEnqueueCombi(subs: { clientId: string }[], packet: unknown): Promise<void>;
  outgoingClearMessageId(client: { id: string }, packet: unknown): Promise<unknown>;
}

/**
 * aedes' in-memory persistence with each session's outgoing queue bounded (brokerLimits.
 * sessionQueueMax). Written here because aedes-persistence has no such bound and keeps its queues
 * private: this counts what goes in (outgoingEnqueue, outgoingEnqueueCombi) and what comes out
 * (outgoingClearMessageId, at a PUBACK or when a session is cleaned), the only ways its memory
 * queue grows or shrinks, and holds nothing for a client at the bound.
 */
export function boundedMemoryPersistence(max: number, onFull: (clientId: string) => void): object {
  // The package is CommonJS: its default export is the factory (its types say so in a way TypeScript's NodeNext does not call).
  const persistence = (aedesPersistence as unknown as () => object)();
  const p = persistence as unknown as OutgoingPersistence;
  const held = new Map<string, number>();
  const admit = (clientId: string): boolean => {
    const n = held.get(clientId) ?? 0;
    if (n >= max) {
      onFull(clientId);
      return false;
    }
    held.set(clientId, n + 1);
    return true;
  };
  const enqueue = p.outgoingEnqueue.bind(p);
  const enqueueCombi = p.outgoingEnqueueCombi.bind(p);
  const clear = p.outgoingClearMessageId.bind(p);
  p.outgoingEnqueue = async (sub, packet) => {
    if (admit(sub.clientId)) await enqueue(sub, packet);
  };
  p.outgoingEnqueueCombi = async (subs, packet) => {
    const admitted = subs.filter((sub) => admit(sub.clientId));
    if (admitted.length > 0) await enqueueCombi(admitted, packet);
  };
  p.outgoingClearMessageId = async (client, packet) => {
    const removed = await clear(client, packet);
    if (removed !== undefined && removed !== null) {
      const n = (held.get(client.id) ?? 1) - 1;
      if (n <= 0) held.delete(client.id);
      else held.set(client.id, n);
    }
    return removed;
  };
  return persistence;
}

export interface Broker {
  readonly aedes: Aedes;
  readonly mqttPort: number;
  readonly wsPort: number | null;
  close(): Promise<void>;
}

export async function startBroker(hooks: BrokerHooks, options: BrokerOptions): Promise<Broker> {
  const aedes = await Aedes.createBroker({
    maxTopicLevels: brokerLimits.maxTopicLevels,
    drainTimeout: options.drainTimeoutMs ?? brokerLimits.drainTimeoutMs,
    queueLimit: brokerLimits.queueLimit,
    concurrency: brokerLimits.concurrency,
    connectTimeout: brokerLimits.connectTimeoutMs,
    keepaliveLimit: brokerLimits.keepaliveLimitS,
    persistence: boundedMemoryPersistence(options.sessionQueueMax ?? brokerLimits.sessionQueueMax, options.onSessionQueueFull ?? (() => {})),
    preConnect: (client, _packet, callback) => hooks.preConnect(client, remoteAddressOf(client), callback),
    authenticate: (client, username, password, callback) => hooks.authenticate(client, username, password, callback),
    authorizePublish: (client, packet, callback) => hooks.authorizePublish(client, packet, callback),
    authorizeSubscribe: (client, subscription, callback) => hooks.authorizeSubscribe(client, subscription, callback),
  });
  const tcp: Server = createServer((socket) => aedes.handle(socket));
  let http: HttpServer | null = null;
  let wss: WebSocketServer | null = null;
  try {
    await listen(tcp, options.mqttPort, options.host);
    if (options.wsPort !== null) {
      http = createHttpServer();
      await listen(http, options.wsPort, options.host);
      // Made once the port is held: a WebSocketServer re-emits its server's errors, unhandled.
      wss = new WebSocketServer({ server: http, maxPayload: brokerLimits.maxPacketBytes });
      wss.on("connection", (ws, req) => aedes.handle(createWebSocketStream(ws) as never, req));
    }
  } catch (e) {
    tcp.close();
    http?.close();
    await new Promise<void>((resolve) => aedes.close(() => resolve()));
    throw e;
  }
  return {
    aedes,
    mqttPort: (tcp.address() as AddressInfo).port,
    wsPort: http === null ? null : (http.address() as AddressInfo).port,
    async close() {
      await new Promise<void>((resolve) => aedes.close(() => resolve()));
      await new Promise<void>((resolve) => tcp.close(() => resolve()));
      if (wss !== null) wss.close();
      if (http !== null) await new Promise<void>((resolve) => http!.close(() => resolve()));
    },
  };
}

export function remoteAddressOf(client: Client): string {
  const conn = client.conn as unknown as { remoteAddress?: string; socket?: { remoteAddress?: string } };
  return client.req?.socket.remoteAddress ?? conn.remoteAddress ?? conn.socket?.remoteAddress ?? "unknown";
}

/** Listens; rejects with the server's error (EADDRINUSE, EACCES) instead of leaving it unhandled. */
function listen(server: Server | HttpServer, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
}
