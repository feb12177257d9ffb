/**
 * `--radius-port` as the stack takes it (gateway/stack.ts): a port given that cannot be bound
 * fails the start naming the flag; the default port, when it cannot be bound, leaves RADIUS off
 * and the rest running; a free port listens, and its counters are on the gateway's /metrics.
 */
import { createSocket, type Socket } from "node:dgram";
import { join } from "node:path";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tempDir } from "../../node/testing/fixtures.ts";
import { builtinServices, TELEMETRY_SERVICE } from "../genesis.ts";
import { telemetryService } from "../services/telemetry.ts";
import { type StackOptions, type StackWiring, startStack } from "../stack.ts";
import { createRadiusRouter } from "./routers.ts";
import { accountingRequest } from "./testing.ts";

const wiring: StackWiring = {
  genesis: (gatewayKey) => builtinServices([gatewayKey.publicKey]),
  services: async () => [telemetryService(TELEMETRY_SERVICE.id)],
  defaultServiceOf: () => TELEMETRY_SERVICE.name,
};

const options = (radius: Partial<StackOptions>): StackOptions => ({
  dataDir: join(tempDir(), "stack"),
  host: "127.0.0.1",
  mqttPort: 0,
  wsPort: 0,
  httpPort: 0,
  rpcPort: null,
  slotMs: 100,
  chain: "tiny",
  batchMs: 20,
  logger: pino({ level: "silent" }),
  ...radius,
});

/** A UDP port held by another socket for the whole file. */
let holder: Socket;
let taken: number;

beforeAll(async () => {
  holder = createSocket("udp4");
  await new Promise<void>((resolve) => holder.bind(0, "127.0.0.1", () => resolve()));
  taken = holder.address().port;
});

afterAll(() => holder?.close());

describe("the stack's RADIUS listener", { timeout: 120_000 }, () => {
  it("fails the start on a given port it cannot bind, naming --radius-port (JG_ERR_PORT_IN_USE)", async () => {
    await expect(startStack(options({ radiusPort: taken }), wiring)).rejects.toThrow(/JG_ERR_PORT_IN_USE: --radius-port/);
  });

  it("starts without RADIUS when its default port cannot be bound", async () => {
    const stack = await startStack(options({ radiusPort: taken, radiusPortIsDefault: true }), wiring);
    try {
      expect(stack.radius).toBeNull();
      expect((await fetch(`${stack.httpUrl}/healthz`)).status).toBe(200);
    } finally {
      await stack.stop();
    }
  });

  it("listens on a free port and counts on the gateway's /metrics; no listener without a port", async () => {
    const o = options({ radiusPort: 0 });
    const router = createRadiusRouter(o.dataDir);
    const stack = await startStack(o, wiring);
    try {
      expect(stack.radius?.port).toBeGreaterThan(0);
      const client = createSocket("udp4");
      // A router not registered on the ledger: the accept path refuses its usage, which is not answered.
      client.send(accountingRequest(router.sharedSecret, { router: router.routerId }), stack.radius!.port!, "127.0.0.1");
      const deadline = Date.now() + 60_000;
      let text = "";
      while (!/jamgate_radius_refused_total\{code="JG_ERR_DEVICE_UNREGISTERED"\} 1\b/.test(text)) {
        if (Date.now() > deadline)
          throw new Error(
            `not counted within 60 s: ${text
              .split("\n")
              .filter((l) => l.includes("radius"))
              .join("\n")}`,
          );
        await new Promise((r) => setTimeout(r, 50));
        text = await (await fetch(`${stack.httpUrl}/metrics`)).text();
      }
      client.close();
    } finally {
      await stack.stop();
    }
    const off = await startStack(options({}), wiring);
    try {
      expect(off.radius).toBeNull();
    } finally {
      await off.stop();
    }
  });
});
