/**
 * The jamgate a simulation runs on: a stack of its own (node, gateway and HTTP API on free
 * loopback ports, gateway/stack.ts), or a running `jamgate start` reached through its MQTT
 * broker, its node's JIP-2 WebSocket and its HTTP API. Either way the simulation sees the same
 * four things, and closes what it opened.
 */
import type { Logger } from "pino";
import { type Stack, type StackWiring, startStack } from "../../gateway/stack.ts";
import type { NodeApi } from "../../node/api.ts";
import { RpcClient } from "../../node/rpc/client.ts";

/** What a simulation needs of a running jamgate. */
export interface SimTarget {
  /** The node's API: best blocks and service state. */
  readonly api: NodeApi;
  readonly mqttUrl: string;
  /** The gateway's HTTP API, without a trailing slash. */
  readonly httpUrl: string;
  /** Its operator token: registrations and top-ups need it. */
  readonly token: string;
  /** Stops the own stack, or disconnects from the running one (which keeps running). */
  close(): Promise<void>;
}

/** A running `jamgate start`, as the `jamgate sim` commands name it (flags, or its data dir's endpoints.json and operator token). */
export interface RemoteJamgate {
  readonly mqttUrl: string;
  /** The node's JIP-2 WebSocket, e.g. ws://127.0.0.1:19800. */
  readonly nodeUrl: string;
  readonly gatewayUrl: string;
  readonly token: string;
}

/** A simulation's own stack, and the stack itself for what only an own stack has (its registrations, its RADIUS listener). */
export interface OwnStack extends SimTarget {
  readonly stack: Stack;
}

/**
 * Starts a stack in `dataDir` on the tiny chain at `slotMs`, every listener on a free loopback
 * port and no RPC server (the simulation uses the node in-process), with RADIUS accounting when
 * `radius` (a free port too).
 */
export async function startOwnStack(dataDir: string, slotMs: number, logger: Logger, wiring: StackWiring, radius = false): Promise<OwnStack> {
  const stack = await startStack(
    {
      dataDir,
      host: "127.0.0.1",
      mqttPort: 0,
      wsPort: 0,
      httpPort: 0,
      rpcPort: null,
      ...(radius ? { radiusPort: 0 } : {}),
      slotMs,
      chain: "tiny",
      batchMs: 100,
      logger,
    },
    wiring,
  );
  return { stack, api: stack.api, mqttUrl: stack.mqttUrl, httpUrl: stack.httpUrl, token: stack.operatorToken, close: () => stack.stop() };
}

/** Connects to a running jamgate's node; closing disconnects. */
export async function connectRemote(remote: RemoteJamgate): Promise<SimTarget> {
  // The operator token is the RPC token of a `jamgate start` node: reads need it from off loopback.
  const api = await RpcClient.connect(remote.nodeUrl, { token: remote.token });
  return { api, mqttUrl: remote.mqttUrl, httpUrl: remote.gatewayUrl.replace(/\/+$/, ""), token: remote.token, close: () => api.close() };
}
