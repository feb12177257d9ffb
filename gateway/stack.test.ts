/**
 * The stack as `jamgate start` wires it (gateway/stack.ts), on free ports with 100 ms slots: the
 * ledger index keeps the slots `ledgerRetentionSlots` says (`--ledger-retention-slots`), and the
 * HTTP API's refusals and open event streams show on /metrics.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { get } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { builtinServices, TELEMETRY_SERVICE } from "./genesis.ts";
import { telemetryService } from "./services/telemetry.ts";
import { type Stack, type StackWiring, startStack } from "./stack.ts";

/** Generous: a loaded machine may be slow to make blocks. */
const DEADLINE_MS = 60_000;
const RETENTION_SLOTS = 5;

const wiring: StackWiring = {
  genesis: (gatewayKey) => builtinServices([gatewayKey.publicKey]),
  services: async () => [telemetryService(TELEMETRY_SERVICE.id)],
  defaultServiceOf: () => TELEMETRY_SERVICE.name,
};

let dir: string;
let stack: Stack;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "jamgate-stack-"));
  stack = await startStack(
    {
      dataDir: join(dir, "stack"),
      host: "127.0.0.1",
      mqttPort: 0,
      wsPort: 0,
      httpPort: 0,
      rpcPort: null,
      slotMs: 100,
      chain: "tiny",
      batchMs: 20,
      ledgerRetentionSlots: RETENTION_SLOTS,
      logger: pino({ level: "silent" }),
    },
    wiring,
  );
}, 60_000);

afterAll(async () => {
  await stack?.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function until(what: string, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + DEADLINE_MS;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${DEADLINE_MS} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The value of a metric line (`name{labels} value`) in /metrics, or null when absent. */
async function metric(line: string): Promise<number | null> {
  const text = await (await fetch(`${stack.httpUrl}/metrics`)).text();
  const found = text.split("\n").find((l) => l.startsWith(`${line} `));
  return found === undefined ? null : Number(found.slice(line.length + 1));
}

describe("the stack", () => {
  it("keeps the ledger index's blocks of the last ledgerRetentionSlots slots", async () => {
    // The first blocks pruned, and what is held a window of the retained slots (one more while a pass has written a block and not yet pruned).
    await until("blocks older than the retained slots pruned", async () => {
      const held = (await stack.ledger.blocks({ limit: 100 })).items.map((b) => b.slot);
      return held.length > 0 && held.at(-1)! > 2 * RETENTION_SLOTS && held[0]! - held.at(-1)! <= RETENTION_SLOTS;
    });
    const held = (await stack.ledger.blocks({ limit: 100 })).items;
    expect(held.length).toBeLessThanOrEqual(RETENTION_SLOTS + 1);
    expect(await stack.ledger.block(1)).toBeNull();
  }, 90_000);

  it("counts the HTTP API's refusals by code and its open event streams on /metrics", async () => {
    const before = (await metric('jamgate_http_refused_total{code="JG_ERR_HTTP_QUERY"}')) ?? 0;
    const bad = await fetch(`${stack.httpUrl}/v1/entries?limit=lots`);
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { code: string } }).error.code).toBe("JG_ERR_HTTP_QUERY");
    expect(await metric('jamgate_http_refused_total{code="JG_ERR_HTTP_QUERY"}')).toBe(before + 1);
    expect((await fetch(`${stack.httpUrl}/v1/entries/999999999`)).status).toBe(404);
    expect(await metric('jamgate_http_refused_total{code="JG_ERR_NOT_FOUND"}')).toBeGreaterThanOrEqual(1);

    expect(await metric("jamgate_http_event_streams")).toBe(0);
    const url = new URL(`${stack.httpUrl}/v1/events`);
    const request = get({ host: url.hostname, port: url.port, path: url.pathname });
    const response = await new Promise<import("node:http").IncomingMessage>((resolve) => request.on("response", resolve));
    expect(response.statusCode).toBe(200);
    await until("the stream counted", async () => (await metric("jamgate_http_event_streams")) === 1);
    request.destroy();
    await until("the stream's end counted", async () => (await metric("jamgate_http_event_streams")) === 0);
  }, 90_000);
});
