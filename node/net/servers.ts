/**
 * The bounds every jamgate HTTP server puts on its connections — the gateway's HTTP API, MQTT over
 * WebSocket and the node's JIP-2 RPC — in one place, and the TLS they serve with. Node's defaults
 * hold a socket that never sends a request head for 60 s plus the 30 s between its checks, a
 * request for 300 s, a TLS handshake for 120 s, and as many sockets as arrive.
 */
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import { readFileSync } from "node:fs";
import { isIP } from "node:net";
import { createSecureContext } from "node:tls";
import { JamgateError } from "../errors.ts";

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
  const tls = options.tls;
  const server: HttpServer =
    tls === null
      ? createHttpServer(common, options.listener)
      : (createHttpsServer(
          {
            ...common,
            cert: tls.cert,
            key: tls.key,
            handshakeTimeout: limits.tlsHandshakeTimeoutMs,
            ...(tls.clientCa ? { ca: tls.clientCa, requestCert: true, rejectUnauthorized: false } : {}),
          },
          options.listener,
        ) as unknown as HttpServer);
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
 * Reads the PEM files of `--tls-cert`, `--tls-key` and `--tls-client-ca` and checks that they make
 * a TLS context (the key matches the certificate), so a bad file is a clear JG_ERR_CLI_ARGUMENT at
 * start, not a failure at the first handshake. Null when neither certificate nor key is given.
 */
export function loadTlsMaterial(files: { readonly cert?: string | undefined; readonly key?: string | undefined; readonly clientCa?: string | undefined }): TlsMaterial | null {
  if (files.cert === undefined && files.key === undefined) {
    if (files.clientCa !== undefined) throw new JamgateError("JG_ERR_CLI_ARGUMENT", "--tls-client-ca needs --tls-cert and --tls-key");
    return null;
  }
  if (files.cert === undefined || files.key === undefined) throw new JamgateError("JG_ERR_CLI_ARGUMENT", "--tls-cert and --tls-key go together");
  const read = (flag: string, path: string): Buffer => {
    try {
      return readFileSync(path);
    } catch (e) {
      throw new JamgateError("JG_ERR_CLI_ARGUMENT", `${flag} ${path}: ${(e as Error).message}`);
    }
  };
  const material: TlsMaterial = { cert: read("--tls-cert", files.cert), key: read("--tls-key", files.key), clientCa: files.clientCa === undefined ? null : read("--tls-client-ca", files.clientCa) };
  try {
    createSecureContext({ cert: material.cert, key: material.key, ...(material.clientCa ? { ca: material.clientCa } : {}) });
  } catch (e) {
    throw new JamgateError("JG_ERR_CLI_ARGUMENT", `--tls-cert ${files.cert} and --tls-key ${files.key} are not a PEM certificate and its key: ${(e as Error).message}`);
  }
  return material;
}
