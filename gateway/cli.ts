/**
 * `jamgate start`: the embedded node and the gateway in one process, with embedded defaults —
 * the README's main command. With `--node ws://…` the gateway drives a remote node instead.
 */
import { type Command, Option } from "commander";
import { pino } from "pino";
import { integerIn, runUntilSignal } from "../node/cli.ts";
import type { ChainName } from "../node/chain/params.ts";
export { gatewayKeyOf, operatorTokenOf, secretFile } from "./secrets.ts";
import { type StackWiring, startStack } from "./stack.ts";

export type { StackWiring } from "./stack.ts";

export const DEFAULT_GATEWAY_DATA_DIR = ".jamgate";

interface StartOptions {
  dataDir: string;
  mqttPort: number;
  wsPort: number;
  httpPort: number;
  rpcPort: number;
  host: string;
  slotMs: number;
  chain: ChainName;
  influxUrl?: string;
  node?: string;
  batchMs: number;
  nodeFirst: boolean;
}

export function registerStartCommand(program: Command, wiring: StackWiring): void {
  program
    .command("start")
    .description("run the embedded node and the gateway: MQTT in, JAM settlement, receipts out")
    .option("--data-dir <dir>", "node, gateway log, operator token and gateway key live here", DEFAULT_GATEWAY_DATA_DIR)
    .option("--host <host>", "address the MQTT, HTTP and RPC servers listen on", "127.0.0.1")
    .option("--mqtt-port <port>", "MQTT over TCP", integerIn(0, 65_535), 1883)
    .option("--ws-port <port>", "MQTT over WebSocket", integerIn(0, 65_535), 8883)
    .option("--http-port <port>", "HTTP API: registration, /metrics", integerIn(0, 65_535), 8080)
    .option("--rpc-port <port>", "the embedded node's JIP-2 WebSocket", integerIn(0, 65_535), 19800)
    .option("--slot-ms <ms>", "slot period of the embedded node", integerIn(10, 3_600_000), 6000)
    .addOption(new Option("--chain <name>", "chain spec of the embedded node").choices(["tiny", "full"]).default("tiny"))
    .option("--batch-ms <ms>", "how long envelopes wait to fill a work package until packing aligns to the node's blocks (gateway/README.md, Packing)", integerIn(1, 60_000), 200)
    .option("--influx-url <url>", "also write accepted readings to InfluxDB 1.x, e.g. http://127.0.0.1:8086")
    .option("--node <url>", "use a remote node over JIP-2 WebSocket instead of the embedded one")
    .option("--no-node-first", "keep every thread at one priority (by default, on Linux, the gateway's threads run at nice +5 beside the embedded node's block and refine threads: gateway/README.md, Thread priorities)")
    .action(async (options: StartOptions) => {
      const root = pino({ base: undefined });
      const stack = await startStack({ ...options, logger: root }, wiring);
      runUntilSignal(root.child({ component: "jamgate" }), () => stack.stop());
    });
}
