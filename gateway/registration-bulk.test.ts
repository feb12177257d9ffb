/**
 * `POST /v1/devices/bulk` and `GET /v1/devices/bulk/{batch}` on a real gateway and node
 * (gateway/testing/harness.ts: the node on its own thread, 100 ms slots), through the HTTP API as
 * `jamgate start` serves it (buildHttp, requests injected: no port). What a fleet operator relies
 * on: rows packed into full packages (telemetry's 1,489 a package), every row ending registered or
 * failed, a bad row refusing the whole request and naming itself, and the request bounds.
 */
import { createHash } from "node:crypto";
import type { FastifyInstance } from "fastify";
import sodium from "sodium-native";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { deviceIdOf, toHex } from "../devices/envelope.ts";
import type { ErrorCode } from "../devices/protocol/errors.ts";
import { BULK_BODY_BYTES_MAX, BULK_REGISTRATIONS_MAX } from "../devices/protocol/registration-rows.ts";
import { REGISTRATIONS_PER_ITEM_MAX } from "../services/telemetry/payload.ts";
import { buildHttp } from "./http.ts";
import { type BulkStatus, REGISTRATIONS_IN_FLIGHT_MAX } from "./registration.ts";
import { type Harness, OPERATOR_TOKEN, startHarness } from "./testing/harness.ts";

/** The public key of test device `n` (hex), derived by libsodium: node:crypto's KeyObjects take ~10× longer each, and the tests make 20,000. */
function key(n: number): string {
  const publicKey = Buffer.alloc(32);
  // node/crypto/sodium-native.d.ts declares only what the node uses.
  (sodium as unknown as { crypto_sign_seed_keypair(pk: Uint8Array, sk: Uint8Array, seed: Uint8Array): void }).crypto_sign_seed_keypair(
    publicKey,
    Buffer.alloc(64),
    createHash("sha256").update(`bulk-registration-test/${n}`).digest(),
  );
  return toHex(publicKey);
}
const idOf = (publicKeyHex: string) => deviceIdOf(Uint8Array.from(Buffer.from(publicKeyHex, "hex")));
const rows = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => ({ publicKey: key(from + i), kind: "meter" }));

let harness: Harness;
let app: FastifyInstance;
const counted: ErrorCode[] = [];
const auth = { authorization: `Bearer ${OPERATOR_TOKEN}` };

beforeAll(async () => {
  harness = await startHarness({ slotMs: 100 });
  app = buildHttp({
    operatorToken: OPERATOR_TOKEN,
    registrations: harness.registrations,
    metrics: harness.gateway.metrics,
    count: (code) => counted.push(code),
    ledger: harness.gateway.ledger,
  });
  await app.ready();
}, 60_000);

afterAll(async () => {
  await app?.close();
  await harness?.stop();
}, 60_000);

const post = (devices: unknown, headers: Record<string, string> = auth) =>
  app.inject({ method: "POST", url: "/v1/devices/bulk", headers, payload: { devices } });

/** Polls the batch until no row is pending (generous deadline: the machine may be busy). */
async function finished(batch: string, timeoutMs = 120_000): Promise<BulkStatus> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const answer = await app.inject({ url: `/v1/devices/bulk/${batch}`, headers: auth });
    expect(answer.statusCode).toBe(200);
    const status = answer.json() as BulkStatus;
    if (status.pending === 0) return status;
    if (Date.now() > deadline) throw new Error(`batch ${batch} still has ${status.pending} pending after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe("POST /v1/devices/bulk", () => {
  it("registers 3,000 devices in 3 packages (1,489 a package), each then known to the gateway and on the ledger", async () => {
    const answer = await post(rows(0, 3_000));
    expect(answer.statusCode).toBe(202);
    const body = answer.json() as { batch: string; queued: number };
    expect(body).toMatchObject({ rows: 3_000, queued: 3_000, alreadyRegistered: 0, alreadyPending: 0 });
    const status = await finished(body.batch);
    expect(status).toMatchObject({ rows: 3_000, registered: 3_000, failed: 0, pending: 0, failures: [] });
    // 1,489 + 1,489 + 22: the rows fill packages to telemetry's bound, not its old 512.
    expect(REGISTRATIONS_PER_ITEM_MAX).toBe(1_489);
    expect(status.packages.length).toBe(3);
    for (const n of [0, 1_488, 1_489, 2_999]) {
      const device = await app.inject({ url: `/v1/devices/${idOf(key(n))}` });
      expect(device.json()).toMatchObject({ deviceId: idOf(key(n)), kind: "meter", status: "registered" });
      expect(harness.gateway.registry.cached(idOf(key(n)))?.kind).toBe("meter");
    }
    // Given again (an interrupted run repeated), the same rows are counted as registered and nothing is queued.
    const again = (await post(rows(0, 3_000))).json() as { batch: string };
    expect(again).toMatchObject({ queued: 0, alreadyRegistered: 3_000 });
    expect(await finished(again.batch)).toMatchObject({ registered: 3_000, alreadyRegistered: 3_000, packages: [] });
  }, 180_000);

  it("follows a row already pending from an earlier request in the later one's batch too", async () => {
    const first = (await post(rows(10_000, 10_010))).json() as { batch: string };
    const second = (await post(rows(10_005, 10_015))).json() as { batch: string; queued: number; alreadyPending: number };
    expect(second).toMatchObject({ queued: 5, alreadyPending: 5 });
    expect(await finished(first.batch)).toMatchObject({ registered: 10, failed: 0 });
    expect(await finished(second.batch)).toMatchObject({ registered: 10, failed: 0 });
  }, 120_000);

  it("refuses the whole request for one bad row, listing every bad row with its own code; nothing of it is registered", async () => {
    const good = rows(20_000, 20_003);
    const devices: unknown[] = [
      good[0],
      { publicKey: "zz".repeat(32), kind: "meter" },
      good[1],
      { publicKey: key(20_010), kind: "toaster" },
      { publicKey: key(20_011), kind: "meter", houshold: "00".repeat(16) },
      good[0], // the same device twice
      { publicKey: key(20_012), kind: "meter", deviceId: idOf(key(20_013)) },
      { publicKey: key(20_014), kind: "meter", service: "Not A Name" },
      "not an object",
      good[2],
    ];
    const inFlight = harness.registrations.inFlightCount;
    const answer = await post(devices);
    expect(answer.statusCode).toBe(400);
    const { error } = answer.json() as { error: { code: string; rows: { index: number; code: string; message: string }[]; rowsRefused: number } };
    expect(error.code).toBe("JG_ERR_DEVICE_ROWS");
    expect(error.rowsRefused).toBe(7);
    expect(error.rows.map((r) => [r.index, r.code])).toEqual([
      [1, "JG_ERR_DEVICE_ROW"],
      [3, "JG_ERR_DEVICE_KIND"],
      [4, "JG_ERR_DEVICE_ROW"],
      [5, "JG_ERR_DEVICE_ROW"],
      [6, "JG_ERR_DEVICE_ROW"],
      [7, "JG_ERR_DEVICE_ROW"],
      [8, "JG_ERR_DEVICE_ROW"],
    ]);
    expect(error.rows[2]!.message).toMatch(/unknown field "houshold"/);
    expect(error.rows[3]!.message).toMatch(/is also row 0/);
    expect(error.rows[4]!.message).toMatch(/is not its key's/);
    expect(counted).toContain("JG_ERR_DEVICE_ROWS");
    expect(harness.registrations.inFlightCount).toBe(inFlight);
    await new Promise((r) => setTimeout(r, 500)); // five slots: long enough for a package, had one gone
    for (const row of good) expect((await app.inject({ url: `/v1/devices/${idOf(row.publicKey)}` })).statusCode).toBe(403);
  }, 60_000);

  it("bounds a request: its rows and body bytes; needs the operator token; an unknown batch is not found", async () => {
    const tooMany = await post(rows(30_000, 30_000 + BULK_REGISTRATIONS_MAX + 1));
    expect(tooMany.statusCode).toBe(400);
    expect(tooMany.json().error).toMatchObject({ code: "JG_ERR_HTTP_BODY", message: expect.stringMatching(/must NOT have more than 5000 items/) });
    const padded = app.inject({
      method: "POST",
      url: "/v1/devices/bulk",
      headers: { ...auth, "content-type": "application/json" },
      payload: `{"devices": [{"publicKey": "${key(1)}", "kind": "meter"}]${" ".repeat(BULK_BODY_BYTES_MAX)}}`,
    });
    expect((await padded).json().error).toEqual({ code: "JG_ERR_HTTP_BODY", message: `body over ${BULK_BODY_BYTES_MAX} bytes` });
    expect((await post(rows(30_000, 30_001), { authorization: "Bearer wrong" })).statusCode).toBe(401);
    expect((await app.inject({ url: `/v1/devices/bulk/${"ab".repeat(16)}`, headers: auth })).json().error.code).toBe("JG_ERR_NOT_FOUND");
  });

  it("refuses a request that would take registrations in flight past REGISTRATIONS_IN_FLIGHT_MAX, whole, queueing nothing of it", async () => {
    // A node whose slot is 10 minutes accumulates nothing during the test: what is in flight stays.
    const slow = await startHarness({ slotMs: 600_000 });
    const slowApp = buildHttp({ operatorToken: OPERATOR_TOKEN, registrations: slow.registrations, metrics: slow.gateway.metrics, count: () => undefined });
    try {
      const postSlow = (devices: unknown) => slowApp.inject({ method: "POST", url: "/v1/devices/bulk", headers: auth, payload: { devices } });
      expect(REGISTRATIONS_IN_FLIGHT_MAX).toBe(2 * BULK_REGISTRATIONS_MAX);
      expect((await postSlow(rows(40_000, 45_000))).statusCode).toBe(202);
      expect((await postSlow(rows(45_000, 49_999))).statusCode).toBe(202);
      const over = await postSlow(rows(49_999, 50_001));
      expect(over.statusCode).toBe(503);
      expect(over.json().error).toMatchObject({ code: "JG_ERR_QUEUE_FULL", message: expect.stringMatching(/9999 registrations in flight and 2 more/) });
      expect(slow.registrations.inFlightCount).toBe(9_999);
      // Rows already in flight add nothing: a request of them and one new row fits.
      const fits = await postSlow(rows(45_000, 50_000));
      expect(fits.json()).toMatchObject({ queued: 1, alreadyPending: 4_999 });
      expect(slow.registrations.inFlightCount).toBe(REGISTRATIONS_IN_FLIGHT_MAX);
    } finally {
      await slowApp.close();
      await slow.stop();
    }
  }, 300_000);
});
