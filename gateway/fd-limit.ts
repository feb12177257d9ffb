/**
 * The MQTT connection cap (`jamgate start --connections-max`, gatewayLimits.connectionsMax) against
 * the process's open-file limit: every MQTT socket is a file descriptor, and a process out of them
 * fails at accept (the device gets no CONNACK, only a closed socket) and wherever else it opens one
 * (an HTTP request, the node's RPC, a Redis reconnect in a cluster). So the cap must sit below the
 * limit by what the rest of the process holds, or the cap never fires and the limit does instead.
 *
 * A cap the limit cannot hold is warned about at start, not refused: the operator chose the cap,
 * the limit may be raised without a restart of anything else (`prlimit`), and a host whose devices
 * never reach the cap runs as well either way. Node raises its soft limit to the hard one when it
 * starts (its PlatformInit), so the hard limit (`ulimit -Hn`, systemd's LimitNOFILE=) is what counts.
 */
import { readFileSync } from "node:fs";
import { MAX_CONNECTIONS as RPC_CONNECTIONS_MAX } from "../node/rpc/server.ts";
import { HTTP_CONNECTIONS_MAX } from "./http.ts";

/**
 * Descriptors beside the MQTT sockets and the HTTP and RPC servers' caps: `jamgate start` holds 68
 * idle (measured: LMDB files, worker threads' pipes and event fds, listeners); 500 leaves room for
 * sockets refused at the cap, held up to 1 s to send their CONNACK 3, Redis and InfluxDB sockets.
 */
const OTHER_FDS = 500;

/** File descriptors a `jamgate start` process needs beyond its MQTT connection cap. */
export const FD_MARGIN = HTTP_CONNECTIONS_MAX + RPC_CONNECTIONS_MAX + OTHER_FDS;

/** This process's open-file limit (Linux /proc/self/limits "Max open files", soft), or null where it cannot be read ("unlimited" is null too). */
export function openFilesSoftLimit(limitsText?: string): number | null {
  let text = limitsText;
  if (text === undefined) {
    try {
      text = readFileSync("/proc/self/limits", "utf8");
    } catch {
      return null;
    }
  }
  const soft = /^Max open files\s+(\S+)/m.exec(text)?.[1];
  return soft !== undefined && /^\d+$/.test(soft) ? Number(soft) : null;
}

/** The warning `jamgate start` logs when `connectionsMax` and FD_MARGIN exceed the open-file limit, or null when they fit (or the limit is unknown). */
export function fdLimitWarning(connectionsMax: number, softLimit: number | null): { message: string; fields: Record<string, number> } | null {
  const needed = connectionsMax + FD_MARGIN;
  if (softLimit === null || needed <= softLimit) return null;
  return {
    message: `the open-file limit (${softLimit}) is below the MQTT connection cap (${connectionsMax}) and the ${FD_MARGIN} descriptors the rest of the process may hold: past ~${Math.max(0, softLimit - FD_MARGIN)} connections sockets fail at accept instead of getting CONNACK 3. Raise it to ${needed} or more (LimitNOFILE= in the systemd unit, \`ulimit -Hn\` and \`ulimit -n\` in a shell, as root) or lower --connections-max`,
    fields: { openFilesLimit: softLimit, connectionsMax, fdNeeded: needed },
  };
}
