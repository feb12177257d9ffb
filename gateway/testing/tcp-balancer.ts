/**
 * A TCP load balancer for tests, as docs/cluster.md puts one in front of a cluster's gateways
 * (HAProxy's `mode tcp`, `balance roundrobin`): each connection goes to the next backend that
 * accepts it, and is piped both ways until either side closes. A backend that refuses (its
 * process gone) is skipped for that connection; nothing is health-checked ahead of time.
 */
import { connect, createServer, type Socket } from "node:net";

export interface TcpBalancer {
  readonly port: number;
  /** Connections each backend port was given, for the test's own checks. */
  readonly given: ReadonlyMap<number, number>;
  close(): Promise<void>;
}

export async function startTcpBalancer(backends: readonly number[], host = "127.0.0.1"): Promise<TcpBalancer> {
  let next = 0;
  const given = new Map<number, number>();
  const sockets = new Set<Socket>();
  const track = (socket: Socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
    socket.on("error", () => {});
  };
  const server = createServer((client) => {
    track(client);
    client.pause();
    const tryBackend = (left: number) => {
      if (left === 0 || client.destroyed) return client.destroy();
      const port = backends[next++ % backends.length]!;
      const upstream = connect(port, host);
      track(upstream);
      upstream.once("error", () => tryBackend(left - 1));
      upstream.once("connect", () => {
        given.set(port, (given.get(port) ?? 0) + 1);
        upstream.removeAllListeners("error");
        upstream.on("error", () => client.destroy());
        client.on("error", () => upstream.destroy());
        client.once("close", () => upstream.destroy());
        upstream.once("close", () => client.destroy());
        client.pipe(upstream);
        upstream.pipe(client);
        client.resume();
      });
    };
    tryBackend(backends.length);
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  return {
    port: (server.address() as { port: number }).port,
    given,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
