/**
 * What bench/fleet.ts drives, whichever deployment it runs against: one gateway with its embedded
 * node (bench/lib/fleet-one.ts, the gateway in a child process as `jamgate start` runs it) or a
 * cluster (bench/lib/fleet-cluster.ts: `jamgate node start`, K × `jamgate start --node … --cluster
 * redis://…` and a redis-server, each its own process). Times (`at`) are this process's
 * `performance.now()`, whatever process the figure came from.
 */
import type { BlockLine } from "./fleet-server.ts";

export type { BlockLine };

/** A gateway's counters (gateway/metrics.ts), summed over the gateways where several run. */
export interface FleetCounters {
  accepted: number;
  settled: number;
  packages: number;
  packagesFailed: number;
  connections: number;
  pending: number;
  inFlight: number;
}

/** A process's memory (Linux /proc/<pid>/status), bytes. */
export interface ProcessMemory {
  readonly rss: number;
  /** VmHWM: the resident peak since the process started. */
  readonly peak: number;
  readonly anon: number;
}

export interface GatewaySample extends FleetCounters {
  readonly label: string;
  readonly pid: number;
  readonly memory: ProcessMemory;
  readonly openFiles: number;
}

export interface FleetSample {
  readonly at: number;
  /** Every gateway's counters added up. */
  readonly total: FleetCounters;
  /** Resident memory of the gateway processes added up, bytes (one gateway: its process, with its embedded node). */
  readonly gatewaysRss: number;
  readonly gateways: readonly GatewaySample[];
  /** The node's process (cluster) and redis-server's, or null where they are not processes of their own. */
  readonly node: ProcessMemory | null;
  readonly redis: ProcessMemory | null;
}

export interface RestartFacts {
  /** Stopping every gateway (and, in a cluster, the node). */
  readonly stopMs: number;
  /** From the first start to every gateway listening again. */
  readonly startMs: number;
  /** The node's open on its data dir (embedded: NodeThread.open; cluster: `jamgate node start` to its "node started" line). */
  readonly nodeOpenMs: number;
}

export interface FleetTarget {
  /** Each gateway's MQTT port: device g connects to mqttPorts[g mod K]. */
  readonly mqttPorts: readonly number[];
  /** The HTTP API the fleet is registered through (the first gateway's) and its operator token. */
  readonly httpUrl: string;
  readonly operatorToken: string;
  /** The lowest open-file limit of the gateway processes. */
  readonly fdLimit: number;
  sample(): Promise<FleetSample>;
  /** The node's blocks announced between two times (this process's clock). */
  blocks(fromAt: number, toAt?: number): Promise<BlockLine[]>;
  /** Stops every gateway (a cluster: and the node) and starts them again on their data dirs. */
  restart(): Promise<RestartFacts>;
  /** Lines the gateways (and node) logged at warn or above: how many, and the first ones. */
  warnings(): { count: number; first: readonly string[] };
  stop(): Promise<void>;
}

/** Adds counters up. */
export function sumCounters(parts: readonly FleetCounters[]): FleetCounters {
  const total: FleetCounters = { accepted: 0, settled: 0, packages: 0, packagesFailed: 0, connections: 0, pending: 0, inFlight: 0 };
  for (const p of parts) for (const k of Object.keys(total) as (keyof FleetCounters)[]) total[k] += p[k];
  return total;
}
