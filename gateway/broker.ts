/**
 * The embedded MQTT broker: aedes 1.x (MQTT 3.1.1 only; aedes has no MQTT 5) on TCP, WebSocket,
 * TLS and WebSocket over TLS, with its limits set deliberately. Every socket, whatever its
 * listener, is judged as it is accepted (`admitSocket`: connection cap, per-address rate) and
 * reaches aedes through BoundedMqttStream (packet-bounds.ts), which closes it at a fixed header
 * past its packet type's bound before the body is buffered. The gateway's policy lives in the
 * hooks it passes: who may connect, and what a publish or subscribe may do.
 *
 * aedes writes a QoS 1 PUBACK only after the asynchronous `authorizePublish` hook calls back
 * (lib/handlers/publish.js), so the gateway's durable write goes in that hook; an error from it
 * closes the connection (3.1.1 cannot refuse one PUBLISH [MQTT-3.3.5-2]), which is why a bad
 * envelope is accepted at the MQTT level and answered on the device's error topic instead.
 */
import type { IncomingMessage, Server as HttpServer } from "node:http";
import { type AddressInfo, createServer, type Server, type Socket } from "node:net";
import type { Duplex } from "node:stream";
import { createServer as createTlsServer, type TLSSocket } from "node:tls";
import { Aedes, type AedesPublishPacket, type AuthenticateError, type Client, type ConnectPacket, type PublishPacket, type Subscription } from "aedes";
import aedesPersistence from "aedes-persistence";
import { createWebSocketStream, WebSocketServer } from "ws";
import { createBoundedServer, listen, type ServerLimits, serverLimits, type TlsMaterial, tlsServerOptions } from "../node/net/servers.ts";
import { BoundedMqttStream, type ConnectionFacts, type MqttTransport, type PacketBoundsViolation, type PacketLimits, packetLimits } from "./packet-bounds.ts";

/** How long a socket refused on accept (its CONNACK written) may stay before it is destroyed. */
const REFUSED_SOCKET_LINGER_MS = 1_000;

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
   * §5.2). What is routed stays bounded without it: a client's publishes are handled one at a time
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
  /** Largest WebSocket frame, refused from its header: a PUBLISH of the largest envelope and its MQTT headers (packetLimits bounds each MQTT packet on every transport). */
  maxPacketBytes: packetLimits.publishBytesMax + 16,
} as const;

export interface BrokerHooks {
  /**
   * Called for each socket as it is accepted, before a byte is read (the connection cap and the
   * per-address rate apply here, not after a whole CONNECT was buffered): null lets it in; a
   * refusal is answered with a CONNACK of its return code and the socket is closed.
   */
  admitSocket(facts: ConnectionFacts): { readonly returnCode: number } | null;
  /**
   * A connection closed by the packet bounds (packet-bounds.ts), called before aedes sees it close:
   * `client` is the aedes client the connection carried (its CONNECT may or may not have been
   * authenticated yet), or null if it had none.
   */
  packetRefused(violation: PacketBoundsViolation, facts: ConnectionFacts, client: Client | null): void;
  preConnect(client: Client, packet: ConnectPacket, callback: (error: Error | null, ok: boolean) => void): void;
  authenticate(
    client: Client,
    username: string | undefined,
    password: Buffer | undefined,
    callback: (error: AuthenticateError | null, ok: boolean | null) => void,
  ): void;
  authorizePublish(client: Client | null, packet: PublishPacket, callback: (error?: Error | null) => void): void;
  authorizeSubscribe(client: Client, subscription: Subscription, callback: (error: Error | null, subscription?: Subscription | null) => void): void;
  /** Whether a routed packet goes to one subscriber (aedes authorizeForward): the gateway withholds envelopes it refused. */
  authorizeForward(client: Client, packet: AedesPublishPacket): AedesPublishPacket | null | undefined;
}

export interface BrokerOptions {
  readonly host: string;
  /** Plain MQTT over TCP, or null for none. */
  readonly mqttPort: number | null;
  /** Plain MQTT over WebSocket, or null for none. */
  readonly wsPort: number | null;
  /** Certificate and key for the TLS listeners (and the CA of devices' client certificates); null: no TLS. */
  readonly tls?: TlsMaterial | null;
  /** MQTT over TLS (8883 by convention), with `tls`; null for none. */
  readonly mqttsPort?: number | null;
  /** MQTT over WebSocket over TLS, with `tls`; null for none. */
  readonly wssPort?: number | null;
  /** Sockets the WebSocket servers hold at once (their HTTP servers' maxConnections). */
  readonly connectionsMax: number;
  /** Override of brokerLimits.drainTimeoutMs (tests). */
  readonly drainTimeoutMs?: number | undefined;
  /** Override of brokerLimits.sessionQueueMax (tests). */
  readonly sessionQueueMax?: number | undefined;
  /** Called for each message not held because its session's queue is full, with the client id. */
  readonly onSessionQueueFull?: (clientId: string) => void;
  /** Overrides of packetLimits and serverLimits (tests). */
  readonly packetLimits?: PacketLimits;
  readonly serverLimits?: Partial<ServerLimits>;
  /**
   * A cluster of gateways (`--cluster`, cluster/index.ts): aedes routes through it (`mq`) and keeps
   * its sessions in it (`persistence`, bounded per session as the memory one); null or absent: one
   * gateway, aedes' in-process emitter and boundedMemoryPersistence.
   */
  readonly cluster?: BrokerCluster | null;
}

/** What the broker takes from a cluster (cluster/index.ts Cluster). */
export interface BrokerCluster {
  readonly mq: object;
  /** Sessions holding at most `max` undelivered messages each; `onFull` for each one not held. */
  persistence(max: number, onFull: (clientId: string) => void): object;
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
  readonly mqttPort: number | null;
  readonly wsPort: number | null;
  readonly mqttsPort: number | null;
  readonly wssPort: number | null;
  /** Sockets accepted and not yet closed, on every listener (admitted or being refused). */
  readonly openSockets: () => number;
  close(): Promise<void>;
}

/** CONNACK [MQTT-3.2] with `returnCode` and no session present: written to a socket refused on accept. */
function connackBytes(returnCode: number): Buffer {
  return Buffer.from([0x20, 0x02, 0x00, returnCode]);
}

export async function startBroker(hooks: BrokerHooks, options: BrokerOptions): Promise<Broker> {
  const sessionQueueMax = options.sessionQueueMax ?? brokerLimits.sessionQueueMax;
  const onSessionQueueFull = options.onSessionQueueFull ?? (() => {});
  const cluster = options.cluster ?? null;
  const aedes = await Aedes.createBroker({
    maxTopicLevels: brokerLimits.maxTopicLevels,
    drainTimeout: options.drainTimeoutMs ?? brokerLimits.drainTimeoutMs,
    queueLimit: brokerLimits.queueLimit,
    concurrency: brokerLimits.concurrency,
    connectTimeout: brokerLimits.connectTimeoutMs,
    keepaliveLimit: brokerLimits.keepaliveLimitS,
    persistence: cluster === null ? boundedMemoryPersistence(sessionQueueMax, onSessionQueueFull) : cluster.persistence(sessionQueueMax, onSessionQueueFull),
    // aedes builds its own in-process mqemitter (with `concurrency`) when given none.
    ...(cluster === null ? {} : { mq: cluster.mq as never }),
    preConnect: (client, packet, callback) => hooks.preConnect(client, packet, callback),
    authenticate: (client, username, password, callback) => hooks.authenticate(client, username, password, callback),
    authorizePublish: (client, packet, callback) => hooks.authorizePublish(client, packet, callback),
    authorizeSubscribe: (client, subscription, callback) => hooks.authorizeSubscribe(client, subscription, callback),
    authorizeForward: (client, packet) => hooks.authorizeForward(client, packet),
  });
  const limits = options.packetLimits ?? packetLimits;
  /** The client aedes made for each bounded stream, so a violation names the client it closes. */
  const clientOf = new WeakMap<BoundedMqttStream, Client>();
  const onViolation = (violation: PacketBoundsViolation, facts: ConnectionFacts, stream: BoundedMqttStream) =>
    hooks.packetRefused(violation, facts, clientOf.get(stream) ?? null);
  let open = 0;
  /** Every listener's sockets come here: admitted and bounded, or answered CONNACK and closed. */
  const accept = (socket: Duplex, facts: ConnectionFacts, req?: IncomingMessage) => {
    open++;
    socket.once("close", () => open--);
    socket.on("error", () => {});
    const refusal = hooks.admitSocket(facts);
    if (refusal !== null) {
      socket.end(connackBytes(refusal.returnCode));
      // A peer that does not close its side is not waited for.
      setTimeout(() => socket.destroy(), REFUSED_SOCKET_LINGER_MS).unref();
      return;
    }
    const stream = new BoundedMqttStream(socket, facts, limits, onViolation);
    // aedes makes the client at once; the stream's first bytes are read on a later turn, so the map is set before any violation.
    clientOf.set(stream, aedes.handle(stream as never, req as never));
  };
  const tls = options.tls ?? null;
  const servers: (Server | HttpServer)[] = [];
  const wsServers: WebSocketServer[] = [];
  const listenWebSocket = async (port: number, withTls: TlsMaterial | null): Promise<HttpServer> => {
    const http = createBoundedServer({ tls: withTls, connectionsMax: options.connectionsMax, limits: options.serverLimits });
    servers.push(http);
    await listen(http, port, options.host);
    // Made once the port is held: a WebSocketServer re-emits its server's errors, unhandled.
    const wss = new WebSocketServer({ server: http, maxPayload: brokerLimits.maxPacketBytes, perMessageDeflate: false });
    wsServers.push(wss);
    wss.on("connection", (ws, req) => accept(createWebSocketStream(ws), factsOf(req.socket, withTls === null ? "ws" : "wss"), req));
    return http;
  };
  let tcp: Server | null = null;
  let mqtts: Server | null = null;
  let http: HttpServer | null = null;
  let https: HttpServer | null = null;
  try {
    if (options.mqttPort !== null) {
      const server = createServer((socket) => accept(socket, factsOf(socket, "mqtt")));
      tcp = server;
      servers.push(server);
      await listen(server, options.mqttPort, options.host);
    }
    if (options.wsPort !== null) http = await listenWebSocket(options.wsPort, null);
    if (tls !== null && options.mqttsPort != null) {
      const server = createTlsServer(tlsServerOptions(tls, options.serverLimits?.tlsHandshakeTimeoutMs ?? serverLimits.tlsHandshakeTimeoutMs), (socket) =>
        accept(socket, factsOf(socket, "mqtts")),
      );
      server.on("tlsClientError", () => {});
      mqtts = server;
      servers.push(server);
      await listen(server, options.mqttsPort, options.host);
    }
    if (tls !== null && options.wssPort != null) https = await listenWebSocket(options.wssPort, tls);
  } catch (e) {
    for (const server of servers) server.close();
    await new Promise<void>((resolve) => aedes.close(() => resolve()));
    throw e;
  }
  const portOf = (server: Server | HttpServer | null) => (server === null ? null : (server.address() as AddressInfo).port);
  return {
    aedes,
    mqttPort: portOf(tcp),
    wsPort: portOf(http),
    mqttsPort: portOf(mqtts),
    wssPort: portOf(https),
    openSockets: () => open,
    async close() {
      await new Promise<void>((resolve) => aedes.close(() => resolve()));
      for (const wss of wsServers) wss.close();
      for (const server of servers) {
        if ("closeAllConnections" in server) server.closeAllConnections();
        await new Promise<void>((resolve) => server.close(() => resolve()));
      }
    },
  };
}

/**
 * The address, and the verified client certificate's CN, of a TCP or TLS socket: a certificate
 * counts only if the TLS listener verified it against its client CA (`authorized`). `transport` is
 * the listener's, given by the caller: a WebSocket's socket is the same TCP or TLS socket.
 */
function factsOf(socket: Socket, transport: MqttTransport): ConnectionFacts {
  const tlsSocket = socket as TLSSocket;
  let cn: string | null = null;
  if (tlsSocket.encrypted === true && tlsSocket.authorized) {
    const subject = tlsSocket.getPeerCertificate().subject as Record<string, unknown> | undefined;
    cn = typeof subject?.CN === "string" ? subject.CN : null;
  }
  return { remoteAddress: socket.remoteAddress ?? "unknown", transport, clientCertificateCn: cn };
}

/** The facts of a client's connection (every connection aedes handles is a BoundedMqttStream). */
export function connectionFactsOf(client: Client): ConnectionFacts {
  const conn = client.conn as unknown as BoundedMqttStream;
  return { remoteAddress: conn.remoteAddress, transport: conn.transport, clientCertificateCn: conn.clientCertificateCn };
}
