/**
 * Free ports for tests whose process binds one later. Test support anyone may use: it knows no
 * jamgate command (scripts/testing/process.ts runs those).
 */
import { readFileSync } from "node:fs";
import { createServer } from "node:net";

/** The first port the OS hands out for port 0 and outgoing connections (Linux's ip_local_port_range; 32768 elsewhere). */
function ephemeralPortsStart(): number {
  try {
    const first = Number(readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/)[0]);
    return Number.isInteger(first) && first > 12_000 ? first : 32_768;
  } catch {
    return 32_768;
  }
}

const PORTS_FROM = 10_000;
/** Slices of the ports below the ephemeral range, one per vitest worker (VITEST_POOL_ID 1…). */
const PORT_SLICES = 8;
let nextPortOffset = -1;

/**
 * A port free now, for a process that binds it later (`jamgate start --mqtt-port P`). Taken below
 * the OS's ephemeral range, where no port-0 listener and no outgoing connection of another test
 * can be given it in between, and from a slice of that space of this vitest worker's own, so test
 * files running at once never pick the same one. (A port-0 pick, closed and handed to a child,
 * was once taken by another file's broker before the child bound it: EADDRINUSE.)
 */
export async function freePort(): Promise<number> {
  const poolId = Math.max(1, Number(process.env.VITEST_POOL_ID ?? 1));
  const sliceSize = Math.floor((ephemeralPortsStart() - PORTS_FROM) / PORT_SLICES);
  const sliceStart = PORTS_FROM + ((poolId - 1) % PORT_SLICES) * sliceSize;
  if (nextPortOffset < 0) nextPortOffset = (process.pid * 7) % sliceSize;
  for (let tries = 0; tries < sliceSize; tries++) {
    const port = sliceStart + (nextPortOffset++ % sliceSize);
    if (await canListen(port)) return port;
  }
  throw new Error(`no free port in ${sliceStart}…${sliceStart + sliceSize - 1}`);
}

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}
