/**
 * Every HTTP server closes what it should not keep: a socket that never sends a request, a client
 * that sends its headers a byte at a time (slowloris), and sockets past its connection cap. The
 * limits are small here (serverLimits overrides) so the test waits little; it asserts that the
 * sockets are closed, never how fast.
 */
import { connect, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { buildHttp } from "./http.ts";
import { startHarness } from "./testing/harness.ts";

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const small = { headersTimeoutMs: 300, requestTimeoutMs: 600, idleSocketTimeoutMs: 800, connectionsCheckingIntervalMs: 50 };

/** A raw TCP socket and a promise of its close (the socket reads, so it sees the server's FIN). */
async function open(port: number): Promise<{ socket: Socket; closed: Promise<void>; received: () => string }> {
  const socket = connect(port, "127.0.0.1");
  let text = "";
  socket.on("data", (c: Buffer) => (text += c.toString()));
  socket.on("error", () => {});
  const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
  await new Promise<void>((resolve) => {
    socket.once("connect", () => resolve());
    socket.once("close", () => resolve());
  });
  cleanups.push(async () => socket.destroy());
  return { socket, closed, received: () => text };
}

describe("server bounds", () => {
  it("the HTTP API closes an idle socket, a slowloris client (408) and sockets past its cap", async () => {
    const h = await startHarness();
    cleanups.push(() => h.stop());
    const http = buildHttp({
      operatorToken: "t",
      registrations: h.registrations,
      metrics: h.gateway.metrics,
      count: () => {},
      limits: { ...small, connectionsMax: 3 },
    });
    cleanups.push(() => http.close());
    await http.listen({ port: 0, host: "127.0.0.1" });
    const port = (http.server.address() as { port: number }).port;

    const idle = await open(port);
    const slow = await open(port);
    slow.socket.write("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    const dribble = setInterval(() => slow.socket.writable && slow.socket.write("X"), 50);
    cleanups.push(async () => clearInterval(dribble));
    // The cap: a third socket is let in, a fourth is closed on accept.
    const third = await open(port);
    const fourth = await open(port);
    await fourth.closed;
    expect(third.socket.destroyed).toBe(false);
    await Promise.all([idle.closed, slow.closed]);
    expect(slow.received()).toMatch(/^HTTP\/1\.1 408/);
    // And it still serves.
    expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
  });

  it("the MQTT-over-WebSocket port closes a socket that never upgrades", async () => {
    const h = await startHarness({ gateway: { limits: { servers: small } } });
    cleanups.push(() => h.stop());
    const idle = await open(h.gateway.wsPort!);
    const slow = await open(h.gateway.wsPort!);
    slow.socket.write("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n");
    await Promise.all([idle.closed, slow.closed]);
  });
});
