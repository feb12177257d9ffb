/**
 * `<data dir>/endpoints.json`: where a running `jamgate start` listens, for the client commands
 * on the same machine (`jamgate device …`, `jamgate ledger`, `jamgate sim energy --data-dir`).
 * Written once the stack is up, mode 0600 like the rest of the data dir, and removed when it stops
 * cleanly; a file left by a killed process names a pid that no longer runs, and is taken for none.
 * The format and its reader are devices/endpoints.ts (the device CLI reads it too).
 */
import { chmodSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ENDPOINTS_FILE, type GatewayEndpoints, parseEndpoints, readEndpointsFile } from "../devices/endpoints.ts";
import { JamgateError } from "../devices/protocol/errors.ts";
import { DATA_FILE_MODE } from "../node/storage/data-dir.ts";
import type { Stack } from "./stack.ts";

export { ENDPOINTS_FILE, type GatewayEndpoints };

/** The address a client on this machine dials for a server listening on `host`: loopback for the unspecified addresses, IPv6 in brackets (RFC 3986 §3.2.2). */
export function dialHost(host: string): string {
  if (host === "0.0.0.0" || host === "") return "127.0.0.1";
  if (host === "::") return "[::1]";
  return host.includes(":") && !host.startsWith("[") ? `[${host}]` : host;
}

/** The endpoints of a started stack that listens on `host` (its RPC on `rpcHost`). */
export function endpointsOf(
  stack: Pick<Stack, "gateway" | "httpUrl" | "rpcUrl" | "node" | "radius">,
  options: { readonly host: string; readonly rpcHost: string; readonly tls: boolean; readonly plaintext: boolean },
  pid: number = process.pid,
): GatewayEndpoints {
  const host = dialHost(options.host);
  const { gateway } = stack;
  const plainMqtt = options.plaintext ? `mqtt://${host}:${gateway.mqttPort}` : null;
  const mqtts = gateway.mqttsPort === null ? null : `mqtts://${host}:${gateway.mqttsPort}`;
  const httpPort = Number(/:(\d+)$/.exec(stack.httpUrl)?.[1]);
  const rpcPort = stack.node?.rpcPort ?? null;
  return {
    mqtt: plainMqtt ?? mqtts ?? "",
    mqtts,
    ws: gateway.wsPort === null ? null : `ws://${host}:${gateway.wsPort}`,
    http: `${options.tls ? "https" : "http"}://${host}:${httpPort}`,
    // The embedded node's RPC, or the remote node the gateway drives (its URL as given).
    rpc: rpcPort !== null ? `${options.tls ? "wss" : "ws"}://${dialHost(options.rpcHost)}:${rpcPort}` : stack.rpcUrl,
    radius: stack.radius === null ? null : `udp://${host}:${stack.radius.port}`,
    pid,
  };
}

/** Writes the endpoints file: to a temporary name first and renamed, so a reader never sees half of it. */
export function writeEndpoints(dataDir: string, endpoints: GatewayEndpoints): void {
  const text = `${JSON.stringify(endpoints, null, 2)}\n`;
  if (typeof parseEndpoints(text) === "string") throw new Error(`endpoints do not make a valid ${ENDPOINTS_FILE}: ${text}`);
  const path = join(dataDir, ENDPOINTS_FILE);
  const temporary = `${path}.${process.pid}.tmp`;
  writeFileSync(temporary, text, { mode: DATA_FILE_MODE });
  chmodSync(temporary, DATA_FILE_MODE); // a file left by an earlier process keeps its mode otherwise
  renameSync(temporary, path);
}

/** Removes the endpoints file (the stack is stopping: clients find no gateway rather than a closed one). */
export function removeEndpoints(dataDir: string): void {
  rmSync(join(dataDir, ENDPOINTS_FILE), { force: true });
}

/** The endpoints of the jamgate running on `dataDir`, or JG_ERR_NO_GATEWAY saying how to start one (or to give `urlFlag`). */
export function readEndpoints(dataDir: string, urlFlag?: string): GatewayEndpoints {
  const read = readEndpointsFile(dataDir, urlFlag);
  if (!read.ok) throw new JamgateError(read.code, read.detail);
  return read.endpoints;
}
