import { blake2b } from "@noble/hashes/blake2.js";
import radius from "radius";
import { Registry } from "prom-client";
import { afterEach, describe, expect, it } from "vitest";
import { decodeCbor } from "../../devices/cbor.ts";
import { decodeEnvelope, type DeviceId, type Envelope, verifyEnvelope } from "../../devices/envelope.ts";
import { tempDir } from "../../node/testing/fixtures.ts";
import { createRadiusRouter, type RadiusRouter, radiusKeysOf, removeRadiusRouter } from "./routers.ts";
import { type AcceptOwn, type OwnAcceptance, RadiusAccounting, type RadiusServerLimits } from "./server.ts";
import { usageSessionId } from "./sessions.ts";
import { accountingRequest, TEST_CLIENT_ID, TEST_SECRET, type TestUsage } from "./testing.ts";

/** What the fake accept path took: each envelope decoded, with its body. */
interface Taken {
  readonly envelope: Envelope;
  readonly body: Record<string, unknown>;
}

/**
 * The voucher hash of services/wifi-billing/README.md, written out here from that text rather than taken
 * from devices/wifi.ts: blake2b-256("jamgate/voucher/v1\0" ⌢ router ⌢ session ⌢ u64 LE input ⌢
 * u64 LE output ⌢ u32 LE seconds ⌢ prev).
 */
function documentedVoucherHash(router: string, session: Uint8Array, input: bigint, output: bigint, seconds: number, prev: Uint8Array): Uint8Array {
  const domain = new TextEncoder().encode("jamgate/voucher/v1\u0000");
  const bytes = new Uint8Array(domain.length + 16 + 16 + 8 + 8 + 4 + 32);
  const view = new DataView(bytes.buffer);
  let at = 0;
  bytes.set(domain, at);
  at += domain.length;
  bytes.set(Buffer.from(router, "hex"), at);
  at += 16;
  bytes.set(session, at);
  at += 16;
  view.setBigUint64(at, input, true);
  at += 8;
  view.setBigUint64(at, output, true);
  at += 8;
  view.setUint32(at, seconds, true);
  at += 4;
  bytes.set(prev, at);
  return blake2b(bytes, { dkLen: 32 });
}

interface Fixture {
  readonly dir: string;
  readonly router: RadiusRouter;
  readonly accounting: RadiusAccounting;
  readonly taken: Taken[];
  readonly registry: Registry;
  /** What the fake accept path answers next (default: taken). */
  answer: (envelope: Envelope) => Promise<OwnAcceptance>;
  send(u?: TestUsage, secret?: string): Promise<Buffer | null>;
}

const open: RadiusAccounting[] = [];
afterEach(async () => {
  for (const a of open.splice(0)) await a.close();
});

function fixture(options: { dir?: string; router?: RadiusRouter; limits?: Partial<RadiusServerLimits> } = {}): Fixture {
  const dir = options.dir ?? tempDir();
  const router = options.router ?? createRadiusRouter(dir, TEST_SECRET);
  const taken: Taken[] = [];
  const registry = new Registry();
  const f: Fixture = {
    dir,
    router,
    taken,
    registry,
    answer: async () => ({ ok: true }),
    accounting: undefined as unknown as RadiusAccounting,
    send: (u = {}, secret = TEST_SECRET) => f.accounting.handle(accountingRequest(secret, { router: router.routerId, ...u })),
  };
  const accept: AcceptOwn = async (deviceId: DeviceId, kind, bytes) => {
    const decoded = decodeEnvelope(bytes);
    if (!decoded.ok) throw new Error(decoded.error.detail);
    expect(decoded.envelope.device).toBe(deviceId);
    expect(decoded.envelope.kind).toBe(kind);
    const verdict = await f.answer(decoded.envelope);
    if (verdict.ok) taken.push({ envelope: decoded.envelope, body: decodeCbor(decoded.envelope.body) as Record<string, unknown> });
    return verdict;
  };
  (f as { accounting: RadiusAccounting }).accounting = new RadiusAccounting({ dataDir: dir, accept, registry, limits: options.limits ?? {} });
  open.push(f.accounting);
  return f;
}

function deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

const answered = (request: Buffer | null) => request !== null;

describe("RadiusAccounting", () => {
  it("turns Start, Interim-Update and Stop into router.usage envelopes signed with the router's key, seqs in order, each chained to the one before, and answers each", async () => {
    const f = fixture();
    const session = "80000001";
    const updates: TestUsage[] = [
      { status: "Start", session },
      { status: "Interim-Update", session, inOctets: 1_000, outOctets: 20_000, seconds: 60 },
      { status: "Stop", session, inOctets: 5_000, outOctets: 90_000, seconds: 150, cause: 1 },
    ];
    for (const [i, u] of updates.entries()) {
      const request = accountingRequest(TEST_SECRET, { router: f.router.routerId, identifier: 10 + i, ...u });
      const response = await f.accounting.handle(request);
      expect(response).not.toBeNull();
      expect(radius.verify_response({ request, response: response!, secret: TEST_SECRET })).toBe(true);
      expect(response![1]).toBe(10 + i);
    }
    expect(f.taken.map((t) => t.envelope.seq)).toEqual([0, 1, 2]);
    const sessionId = usageSessionId(f.router.routerId, session);
    let prev: Uint8Array = new Uint8Array(32);
    for (const [i, { envelope, body }] of f.taken.entries()) {
      expect(envelope.kind).toBe("router.usage");
      expect(envelope.device).toBe(f.router.routerId);
      expect(verifyEnvelope(envelope, f.router.publicKey)).toBe(true);
      const u = updates[i]!;
      expect(Object.keys(body).sort()).toEqual([
        "cause",
        "client",
        "inGigawords",
        "inOctets",
        "outGigawords",
        "outOctets",
        "prev",
        "seconds",
        "session",
        "status",
      ]);
      expect(body).toMatchObject({
        status: [1, 3, 2][i],
        inOctets: u.inOctets ?? 0,
        outOctets: u.outOctets ?? 0,
        inGigawords: 0,
        outGigawords: 0,
        seconds: u.seconds ?? 0,
        cause: u.cause ?? 0,
      });
      expect(Buffer.from(body.session as Uint8Array).equals(Buffer.from(sessionId))).toBe(true);
      expect(Buffer.from(body.client as Uint8Array).toString("hex")).toBe(TEST_CLIENT_ID);
      expect(Buffer.from(body.prev as Uint8Array).equals(Buffer.from(prev))).toBe(true);
      prev = documentedVoucherHash(f.router.routerId, sessionId, BigInt(u.inOctets ?? 0), BigInt(u.outOctets ?? 0), u.seconds ?? 0, prev);
    }
    expect(f.accounting.stats().requests).toEqual({ taken: 3 });
    expect(await f.registry.getSingleMetricAsString("jamgate_radius_requests_total")).toContain('jamgate_radius_requests_total{status="taken"} 3');
  });

  it("drops unanswered, and counts, a request under another secret, of a router not onboarded, or malformed", async () => {
    const f = fixture();
    expect(await f.send({}, "not-the-router-secret-at-all")).toBeNull();
    expect(await f.accounting.handle(accountingRequest(TEST_SECRET, { router: "0".repeat(32) }))).toBeNull();
    expect(await f.accounting.handle(Buffer.from("not radius at all, not at all"))).toBeNull();
    expect(await f.send({ user: "alice" })).toBeNull();
    expect(f.taken).toEqual([]);
    expect(f.accounting.stats()).toEqual({
      requests: { dropped: 4 },
      refused: { JG_ERR_RADIUS_AUTHENTICATOR: 1, JG_ERR_RADIUS_ROUTER: 1, JG_ERR_RADIUS_PACKET: 2 },
    });
    expect(await f.registry.getSingleMetricAsString("jamgate_radius_refused_total")).toContain(
      'jamgate_radius_refused_total{code="JG_ERR_RADIUS_AUTHENTICATOR"} 1',
    );
  });

  it("answers a duplicate and counters going backwards without taking them, and Accounting-On/Off", async () => {
    const f = fixture();
    expect(answered(await f.send({ status: "Start" }))).toBe(true);
    expect(answered(await f.send({ status: "Start" }))).toBe(true);
    expect(answered(await f.send({ status: "Interim-Update", inOctets: 100, seconds: 60 }))).toBe(true);
    expect(answered(await f.send({ status: "Interim-Update", inOctets: 100, seconds: 60 }))).toBe(true);
    expect(answered(await f.send({ status: "Interim-Update", inOctets: 99, seconds: 120 }))).toBe(true);
    expect(answered(await f.send({ status: "Accounting-On" }))).toBe(true);
    expect(f.taken.map((t) => t.body.status)).toEqual([1, 3]);
    expect(f.accounting.stats()).toEqual({ requests: { taken: 2, answered: 4 }, refused: { JG_ERR_RADIUS_DUPLICATE: 2, JG_ERR_RADIUS_COUNTER: 1 } });
  });

  it("carries the counters and gigawords as sent, and chains on their 64-bit sum: a wrap with its gigawords is taken, without them it is backwards", async () => {
    const f = fixture();
    await f.send({ status: "Start" });
    f.taken.length = 0;
    await f.send({ status: "Interim-Update", inOctets: 2 ** 32 - 10, seconds: 60 });
    expect(answered(await f.send({ status: "Interim-Update", inOctets: 5, inGigawords: 0, seconds: 120 }))).toBe(true);
    expect(answered(await f.send({ status: "Interim-Update", inOctets: 5, inGigawords: 1, outOctets: 3, outGigawords: 2, seconds: 120 }))).toBe(true);
    expect(f.taken.length).toBe(2);
    expect(f.taken[1]!.body).toMatchObject({ inOctets: 5, inGigawords: 1, outOctets: 3, outGigawords: 2 });
    const sessionId = usageSessionId(f.router.routerId, "session-1");
    const start = documentedVoucherHash(f.router.routerId, sessionId, 0n, 0n, 0, new Uint8Array(32));
    const first = documentedVoucherHash(f.router.routerId, sessionId, 2n ** 32n - 10n, 0n, 60, start);
    expect(Buffer.from(f.taken[1]!.body.prev as Uint8Array).equals(Buffer.from(first))).toBe(true);
    expect(f.accounting.stats().refused).toEqual({ JG_ERR_RADIUS_COUNTER: 1 });
    // The next one chains on 2^32 × 1 + 5 in, 2^32 × 2 + 3 out.
    await f.send({ status: "Stop", inOctets: 6, inGigawords: 1, outOctets: 3, outGigawords: 2, seconds: 130 });
    const second = documentedVoucherHash(f.router.routerId, sessionId, 2n ** 32n + 5n, 2n * 2n ** 32n + 3n, 120, first);
    expect(Buffer.from(f.taken[2]!.body.prev as Uint8Array).equals(Buffer.from(second))).toBe(true);
  });

  it("opens a session first heard of by an Interim-Update or a Stop with a Start of zero counters before it, so the service has its Start", async () => {
    const f = fixture();
    expect(answered(await f.send({ session: "late", status: "Interim-Update", inOctets: 500, outOctets: 70, seconds: 60 }))).toBe(true);
    expect(answered(await f.send({ session: "stop-only", status: "Stop", inOctets: 9, seconds: 5, cause: 1 }))).toBe(true);
    expect(f.taken.map((t) => [t.envelope.seq, t.body.status, t.body.inOctets, t.body.outOctets, t.body.seconds, t.body.cause])).toEqual([
      [0, 1, 0, 0, 0, 0],
      [1, 3, 500, 70, 60, 0],
      [2, 1, 0, 0, 0, 0],
      [3, 2, 9, 0, 5, 1],
    ]);
    const late = usageSessionId(f.router.routerId, "late");
    const start = documentedVoucherHash(f.router.routerId, late, 0n, 0n, 0, new Uint8Array(32));
    expect(Buffer.from(f.taken[0]!.body.session as Uint8Array).equals(Buffer.from(late))).toBe(true);
    expect(Buffer.from(f.taken[0]!.body.prev as Uint8Array).equals(Buffer.alloc(32))).toBe(true);
    expect(Buffer.from(f.taken[1]!.body.prev as Uint8Array).equals(Buffer.from(start))).toBe(true);
    // Its Start arriving late is a duplicate now.
    expect(answered(await f.send({ session: "late", status: "Start" }))).toBe(true);
    expect(f.taken.length).toBe(4);
    expect(f.accounting.stats()).toEqual({ requests: { taken: 2, answered: 1 }, refused: { JG_ERR_RADIUS_DUPLICATE: 1 } });
  });

  it("answers only once the accept path has taken the usage; a retransmission meanwhile waits and is answered as a duplicate", async () => {
    const f = fixture();
    const logged = deferred<OwnAcceptance>();
    f.answer = () => logged.promise;
    let firstAnswer: Buffer | null | undefined;
    const first = f.send({ status: "Start" }).then((a) => (firstAnswer = a));
    const again = f.send({ status: "Start" });
    await new Promise((r) => setTimeout(r, 50));
    expect(firstAnswer).toBeUndefined();
    logged.resolve({ ok: true });
    await first;
    expect(firstAnswer).not.toBeNull();
    expect(answered(await again)).toBe(true);
    expect(f.taken.length).toBe(1);
    expect(f.accounting.stats().refused).toEqual({ JG_ERR_RADIUS_DUPLICATE: 1 });
  });

  it("does not answer what the accept path refused or could not write, and takes the NAS's retransmission after, chained as the first would have been", async () => {
    const f = fixture();
    f.answer = async () => ({ ok: false, code: "JG_ERR_DEVICE_UNREGISTERED", detail: "not registered" });
    expect(await f.send({ status: "Start" })).toBeNull();
    f.answer = async () => {
      throw new Error("disk full");
    };
    expect(await f.send({ status: "Start" })).toBeNull();
    f.answer = async () => ({ ok: true });
    expect(answered(await f.send({ status: "Start" }))).toBe(true);
    expect(f.taken.length).toBe(1);
    expect(Buffer.from(f.taken[0]!.body.prev as Uint8Array).equals(Buffer.alloc(32))).toBe(true);
    // Seqs taken by refused attempts are not signed again.
    expect(f.taken[0]!.envelope.seq).toBe(2);
    expect(f.accounting.stats()).toEqual({ requests: { dropped: 1, failed: 1, taken: 1 }, refused: { JG_ERR_DEVICE_UNREGISTERED: 1 } });
  });

  it("takes at most requestsInFlightMax requests at once; past it drops them unanswered (busy)", async () => {
    const f = fixture({ limits: { requestsInFlightMax: 2 } });
    const logged = deferred<OwnAcceptance>();
    f.answer = () => logged.promise;
    const a = f.send({ session: "a" });
    const b = f.send({ session: "b" });
    expect(await f.send({ session: "c" })).toBeNull();
    expect(f.accounting.stats().requests).toEqual({ busy: 1 });
    logged.resolve({ ok: true });
    expect([answered(await a), answered(await b)]).toEqual([true, true]);
    expect(answered(await f.send({ session: "c" }))).toBe(true);
  });

  it("keeps seqs and sessions across a restart: the next update chains on the last one before it", async () => {
    const f = fixture();
    await f.send({ status: "Start" });
    await f.send({ status: "Interim-Update", inOctets: 10, seconds: 60 });
    await f.accounting.close();
    open.splice(open.indexOf(f.accounting), 1);
    const g = fixture({ dir: f.dir, router: f.router });
    expect(answered(await g.send({ status: "Interim-Update", inOctets: 10, seconds: 60 }))).toBe(true); // a duplicate still
    expect(answered(await g.send({ status: "Stop", inOctets: 20, seconds: 70 }))).toBe(true);
    expect(g.taken.map((t) => t.envelope.seq)).toEqual([2]);
    const sessionId = usageSessionId(f.router.routerId, "session-1");
    const start = documentedVoucherHash(f.router.routerId, sessionId, 0n, 0n, 0, new Uint8Array(32));
    const interim = documentedVoucherHash(f.router.routerId, sessionId, 10n, 0n, 60, start);
    expect(Buffer.from(g.taken[0]!.body.prev as Uint8Array).equals(Buffer.from(interim))).toBe(true);
  });

  it("finds a router onboarded after it started", async () => {
    const f = fixture();
    const later = createRadiusRouter(f.dir, "another-shared-secret-1234");
    expect(answered(await f.accounting.handle(accountingRequest("another-shared-secret-1234", { router: later.routerId })))).toBe(true);
    expect(f.taken[0]!.envelope.device).toBe(later.routerId);
  });

  it("no longer takes a router's requests once its file is removed and the listener told (radiusKeysOf)", async () => {
    const f = fixture();
    expect(answered(await f.send({ session: "a" }))).toBe(true);
    radiusKeysOf(f.dir, f.accounting).remove(f.router.routerId);
    expect(await f.send({ session: "b" })).toBeNull();
    expect(f.accounting.stats().refused).toEqual({ JG_ERR_RADIUS_ROUTER: 1 });
  });

  it("no longer takes a router's requests once its file is removed, even untold", async () => {
    const f = fixture();
    expect(answered(await f.send({ session: "a" }))).toBe(true);
    removeRadiusRouter(f.dir, f.router.routerId);
    expect(await f.send({ session: "b" })).toBeNull();
    expect(f.accounting.stats().refused).toEqual({ JG_ERR_RADIUS_ROUTER: 1 });
  });
});
