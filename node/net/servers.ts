/**
 * The bounds every jamgate HTTP server puts on its connections — the gateway's HTTP API, MQTT over
 * WebSocket and the node's JIP-2 RPC — in one place, and the TLS they serve with. Node's defaults
 * hold a socket that never sends a request head for 60 s plus the 30 s between its checks, a
 * request for 300 s, a TLS handshake for 120 s, and as many sockets as arrive.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import { isIP, type Server } from "node:net";

export const serverLimits = {
  /** A request's head must arrive within 10 s of its connection (or of the previous response): a slowloris client dribbling headers holds a socket no longer. */
  headersTimeoutMs: 10_000,
  /** A whole request, body included: our bodies are at most tens of KiB, so 30 s is ample on any link. */
  requestTimeoutMs: 30_000,
  /** An idle keep-alive connection between requests: 5 s (Node's default, named here). */
  keepAliveTimeoutMs: 5_000,
  /** A socket with no bytes either way for 30 s is closed (Node's default: never). WebSockets, once upgraded, have their own idle rules. */
  idleSocketTimeoutMs: 30_000,
  /** How often Node looks for requests past headersTimeoutMs / requestTimeoutMs: at its default, 30 s, a slow client kept its socket up to 30 s longer. */
  connectionsCheckingIntervalMs: 1_000,
  /** A TLS handshake must finish within 10 s (Node's default: 120 s). */
  tlsHandshakeTimeoutMs: 10_000,
  /** A WebSocket peer is pinged this often and closed if it has not answered the previous ping: a dead peer is noticed within a minute. */
  webSocketPingIntervalMs: 30_000,
} as const;

export type ServerLimits = { readonly [K in keyof typeof serverLimits]: number };

/** PEM certificate chain and key a server presents, and optionally the CA whose client certificates it accepts. */
export interface TlsMaterial {
  readonly cert: Buffer;
  readonly key: Buffer;
  /** CA of client certificates (devices that have one); null: none are asked for. */
  readonly clientCa?: Buffer | null;
}

export interface BoundedServerOptions {
  readonly tls: TlsMaterial | null;
  /** Sockets held at once; past it new ones are closed on accept (net.Server maxConnections). */
  readonly connectionsMax: number;
  readonly listener?: (request: IncomingMessage, response: ServerResponse) => void;
  /** Overrides (tests use small ones). */
  readonly limits?: Partial<ServerLimits>;
}

/** An HTTP or HTTPS server with serverLimits applied. */
export function createBoundedServer(options: BoundedServerOptions): HttpServer {
  const limits = { ...serverLimits, ...options.limits };
  const common = {
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    connectionsCheckingInterval: limits.connectionsCheckingIntervalMs,
  };
  const server: HttpServer =
    options.tls === null
      ? createHttpServer(common, options.listener)
      : (createHttpsServer({ ...common, ...tlsServerOptions(options.tls, limits.tlsHandshakeTimeoutMs) }, options.listener) as unknown as HttpServer);
  server.maxConnections = options.connectionsMax;
  server.setTimeout(limits.idleSocketTimeoutMs);
  return server;
}

/** True for an address on the loopback interface (127.0.0.0/8, ::1, and IPv4-mapped 127.x). */
export function isLoopback(address: string | undefined): boolean {
  if (address === undefined) return false;
  const v4 = address.startsWith("::ffff:") ? address.slice(7) : address;
  if (isIP(v4) === 4) return v4.startsWith("127.");
  return address === "::1";
}

/**
 * The options of a TLS server (node:tls or node:https) presenting `tls`: its certificate and key,
 * the handshake bound, and, with a client CA, a request for a client certificate that is verified
 * but not required (`socket.authorized` tells; a device without one authenticates by token).
 */
export function tlsServerOptions(tls: TlsMaterial, handshakeTimeoutMs: number) {
  return {
    cert: tls.cert,
    key: tls.key,
    handshakeTimeout: handshakeTimeoutMs,
    ...(tls.clientCa ? { ca: tls.clientCa, requestCert: true, rejectUnauthorized: false } : {}),
  };
}

/** Listens; rejects with the server's error (EADDRINUSE, EACCES) instead of leaving it unhandled. */
export function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
}

/**
 * Whether a presented token is the expected one, compared digest to digest (SHA-256) in constant
 * time: the comparison takes the same time whatever the tokens' lengths and contents.
 */
export function tokensMatch(given: string, expected: string): boolean {
  const digest = (token: string) => createHash("sha256").update(token, "utf8").digest();
  return timingSafeEqual(digest(given), digest(expected));
}
