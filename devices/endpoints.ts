/**
 * How a client on the gateway's machine finds it: `jamgate start` writes its endpoints to
 * `<data dir>/endpoints.json` once everything listens and removes the file when it stops
 * (gateway/endpoints.ts writes it), and the client commands (`jamgate device …`, `jamgate ledger`,
 * `jamgate sim energy --data-dir`) read it when no URL is given. Here rather than in gateway/ so
 * the device CLI can read it: devices/ imports nothing from the rest of jamgate. Node only.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";

export const ENDPOINTS_FILE = "endpoints.json";
/** Largest endpoints file read: the file is ~200 bytes; anything far bigger is not one. */
const ENDPOINTS_FILE_BYTES_MAX = 16 * 1024;

/** The URLs a running `jamgate start` serves on, as clients connect to them. */
export interface GatewayEndpoints {
  /** MQTT over TCP, or over TLS when plain MQTT is off (`--no-plaintext`): the first that listens. */
  readonly mqtt: string;
  /** MQTT over TLS, when it listens. */
  readonly mqtts: string | null;
  /** MQTT over WebSocket, when it listens. */
  readonly ws: string | null;
  /** The HTTP API (https:// with TLS). */
  readonly http: string;
  /** The node's JIP-2 WebSocket (the embedded node's, or the remote one it drives); null when none listens. */
  readonly rpc: string | null;
  /** RADIUS accounting (udp://host:port) when it listens; absent in files of a gateway without it. */
  readonly radius?: string | null;
  /** The `jamgate start` process. */
  readonly pid: number;
}

export type EndpointsRead =
  | { readonly ok: true; readonly endpoints: GatewayEndpoints }
  | { readonly ok: false; readonly code: "JG_ERR_NO_GATEWAY"; readonly detail: string };

/** The schemes each endpoint may have. */
const SCHEMES = { mqtt: "mqtts?|wss?", mqtts: "mqtts", ws: "wss?", http: "https?", rpc: "wss?", radius: "udp" } as const;

/** The file's JSON as GatewayEndpoints, or what is wrong with it. */
export function parseEndpoints(text: string): GatewayEndpoints | string {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    return `not JSON (${(e as Error).message})`;
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) return "not a JSON object";
  const o = json as Record<string, unknown>;
  const url = (name: keyof typeof SCHEMES, nullable: boolean): string | null | undefined => {
    const v = o[name];
    if (v === null && nullable) return null;
    return typeof v === "string" && new RegExp(`^(${SCHEMES[name]})://\\S+$`).test(v) ? v : undefined;
  };
  const [mqtt, mqtts, ws, http, rpc] = [url("mqtt", false), url("mqtts", true), url("ws", true), url("http", false), url("rpc", true)];
  if (typeof mqtt !== "string") return "no mqtt URL";
  if (typeof http !== "string") return "no http URL";
  if (mqtts === undefined || ws === undefined || rpc === undefined) return "mqtts, ws and rpc must each be a URL or null";
  const radius = o.radius === undefined ? null : url("radius", true);
  if (radius === undefined) return "radius must be a udp:// URL or null";
  if (typeof o.pid !== "number" || !Number.isSafeInteger(o.pid) || o.pid <= 0) return "no pid";
  return { mqtt, mqtts, ws, http, rpc, radius, pid: o.pid };
}

/** What to tell a user whose data dir has no running jamgate; `urlFlag` is the flag that names a gateway instead. */
export function noGatewayDetail(dataDir: string, why: string, urlFlag: string): string {
  return `no running jamgate in ${dataDir} (${why}): start one with \`jamgate start --data-dir ${dataDir}\`, or give ${urlFlag}`;
}

/**
 * The endpoints of the jamgate running on `dataDir`: read from its endpoints.json, whose process
 * must still live (a jamgate killed with SIGKILL leaves its file behind). A pid of another PID
 * namespace (a container) cannot be checked from here: give the URLs there instead.
 */
export function readEndpointsFile(dataDir: string, urlFlag = "the gateway's URL"): EndpointsRead {
  const path = join(dataDir, ENDPOINTS_FILE);
  let text: string;
  try {
    const bytes = readFileSync(path);
    if (bytes.length > ENDPOINTS_FILE_BYTES_MAX)
      return { ok: false, code: "JG_ERR_NO_GATEWAY", detail: noGatewayDetail(dataDir, `${path} is ${bytes.length} bytes, not an endpoints file`, urlFlag) };
    text = bytes.toString("utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return {
      ok: false,
      code: "JG_ERR_NO_GATEWAY",
      detail: noGatewayDetail(dataDir, code === "ENOENT" ? `no ${ENDPOINTS_FILE}` : `cannot read ${path}: ${code ?? (e as Error).message}`, urlFlag),
    };
  }
  const parsed = parseEndpoints(text);
  if (typeof parsed === "string") return { ok: false, code: "JG_ERR_NO_GATEWAY", detail: noGatewayDetail(dataDir, `${path}: ${parsed}`, urlFlag) };
  if (!isAlive(parsed.pid))
    return { ok: false, code: "JG_ERR_NO_GATEWAY", detail: noGatewayDetail(dataDir, `${path} names pid ${parsed.pid}, which is not running`, urlFlag) };
  return { ok: true, endpoints: parsed };
}

/** Whether a process with this pid exists: signal 0 checks without sending (EPERM: it exists, owned by another user). */
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}
