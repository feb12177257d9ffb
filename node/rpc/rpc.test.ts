import fc from "fast-check";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import WebSocket, { WebSocketServer } from "ws";
import type { ServiceValueProof, WorkPackageStatus } from "../api.ts";
import { hash } from "../crypto/hash.ts";
import { errorRegistry, JamgateError } from "../../devices/protocol/errors.ts";
import { storageKey } from "../state/components.ts";
import { State } from "../state/kv.ts";
import { verifyStatePath } from "../state/proof.ts";
import { RpcClient } from "./client.ts";
import { FakeNode } from "./fake-node.ts";
import {
  AddressBudget,
  handshakeVerdict,
  MAX_CONNECTIONS_PER_REMOTE_ADDRESS,
  MAX_IN_FLIGHT_BYTES_PER_CONNECTION,
  MAX_IN_FLIGHT_PER_CONNECTION,
  MAX_READ_ONLY_CONNECTIONS,
  READ_ONLY_MAX_PAYLOAD_BYTES,
  type RpcServer,
  startRpcServer,
} from "./server.ts";
import { fromBase64, toBase64, UNCODED_REMOTE_ERROR } from "./wire.ts";

type Json = Record<string, any>;

/** A raw WebSocket that queues what the server sends, for frame-level tests. */
class RawSocket {
  readonly messages: Json[] = [];
  private waiters: (() => void)[] = [];
  closeCode: number | null = null;

  private constructor(readonly ws: WebSocket) {
    ws.on("message", (data) => {
      this.messages.push(JSON.parse(data.toString()));
      this.wake();
    });
    ws.on("close", (code) => {
      this.closeCode = code;
      this.wake();
    });
    ws.on("error", () => {});
  }

  /** Presents the test token unless `token` is null (a read-only connection). */
  static async open(port: number, token: string | null = TOKEN): Promise<RawSocket> {
    const ws = new WebSocket(`ws://127.0.0.1:${port}`, token === null ? {} : { headers: { authorization: `Bearer ${token}` } });
    await new Promise((resolve, reject) => ws.once("open", resolve).once("error", reject));
    return new RawSocket(ws);
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  /** Resolves once `done` holds for the messages so far. */
  async until(done: (messages: Json[]) => boolean): Promise<void> {
    while (!done(this.messages)) {
      if (this.closeCode !== null) throw new Error(`socket closed with ${this.closeCode}`);
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }

  /** Sends a request and returns its response. */
  async request(method: string, params?: unknown, id: string | number = `r${Math.random()}`): Promise<Json> {
    this.ws.send(JSON.stringify({ jsonrpc: "2.0", id, method, ...(params === undefined ? {} : { params }) }));
    return this.response(id);
  }

  async response(id: unknown): Promise<Json> {
    await this.until((ms) => ms.some((m) => m.id === id && !("method" in m)));
    const index = this.messages.findIndex((m) => m.id === id && !("method" in m));
    return this.messages.splice(index, 1)[0] as Json;
  }

  async closed(): Promise<number> {
    if (this.closeCode === null) await new Promise((resolve) => this.ws.once("close", resolve));
    return this.closeCode ?? -1;
  }

  close(): void {
    this.ws.close();
  }
}

const b64 = toBase64;
const bytes = (...xs: number[]) => new Uint8Array(xs);
const UNKNOWN_HASH = b64(new Uint8Array(32).fill(0xee));

async function eventually(check: () => boolean): Promise<void> {
  for (let i = 0; i < 4_000 && !check(); i++) await new Promise((resolve) => setTimeout(resolve, 5));
  expect(check()).toBe(true);
}

/** An error response as JIP-2 and the JG registry say it should look. */
function expectCodedError(response: Json, jgCode: keyof typeof errorRegistry, mentions?: string): void {
  expect(response.error).toMatchObject({ code: errorRegistry[jgCode].rpcCode, data: { code: jgCode } });
  if (mentions !== undefined) expect(response.error.message).toContain(mentions);
}

/** The RPC token the test servers take. */
const TOKEN = "rpc-test-token";

let node: FakeNode;
let server: RpcServer;
let client: RpcClient;
const log = { warn: vi.fn(), error: vi.fn() };

beforeEach(async () => {
  node = new FakeNode();
  log.warn.mockReset();
  log.error.mockReset();
  server = await startRpcServer(node, { port: 0, log, token: TOKEN });
  client = await RpcClient.connect(`ws://127.0.0.1:${server.port}`, { timeoutMs: 5000, token: TOKEN });
});

afterEach(async () => {
  await client.close();
  await server.close();
});

describe("wire", () => {
  it("base64 round-trips any bytes and rejects non-canonical text", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 100 }), (raw) => {
        expect(fromBase64(toBase64(raw))).toEqual(raw);
      }),
    );
    for (const bad of ["AQ", "AQ=", "AR==", "AQ==\n", "A Q==", "-_8=", "AQ==AQ==", "====", "@@@@"]) expect(fromBase64(bad)).toBeNull();
    expect(fromBase64("")).toEqual(new Uint8Array());
  });
});

describe("RpcClient ⇄ server round trip", () => {
  it("serves every NodeApi method", async () => {
    const best = node.best;
    expect(await client.parameters()).toEqual(node.params);
    expect(await client.bestBlock()).toEqual(best);
    expect(await client.finalizedBlock()).toEqual(best);
    expect(await client.block(best.headerHash)).toEqual(node.encodedBlock(best));
    expect(await client.block(new Uint8Array(32))).toBeNull();
    expect(await client.stateRoot(best.headerHash)).toEqual(node.state.root());
    expect(await client.listServices(best.headerHash)).toEqual([0, 7]);
    expect(await client.serviceData(best.headerHash, 7)).toEqual(node.serviceInfo);
    expect(await client.serviceData(best.headerHash, 8)).toBeNull();
    expect(await client.serviceValue(best.headerHash, 7, node.storageKey)).toEqual(node.storageValue);
    expect(await client.serviceValue(best.headerHash, 7, bytes(0))).toBeNull();
    const proof = await client.serviceValueProof(7, node.storageKey);
    expect(proof).toEqual(await node.serviceValueProof(7, node.storageKey));
    expect(proof?.block).toEqual(best);
    expect(proof !== null && verifyStatePath(proof.stateKey, proof.value, proof.siblings, await client.stateRoot(best.headerHash))).toBe(true);
    expect(await client.serviceValueProof(7, bytes(0))).toBeNull();
    expect(await client.serviceValueProof(8, node.storageKey)).toBeNull();
    expect(await client.workReport(node.reportHash)).toEqual(node.report);
    expect(await client.workReport(new Uint8Array(32))).toBeNull();

    const pkg = bytes(5, 6, 7);
    const packageHash = await client.submitWorkPackage(1, pkg, [bytes(1), bytes()]);
    expect(packageHash).toEqual(hash(pkg));
    expect(node.submitted).toEqual([{ core: 1, workPackage: pkg, extrinsics: [bytes(1), bytes()] }]);
    expect(await client.workPackageStatus(packageHash)).toEqual({ kind: "submitted", core: 1 });
    expect(await client.workPackageStatus(new Uint8Array(32))).toBeNull();
  });

  it("carries every work-package status kind", async () => {
    const at = (slot: number) => ({ headerHash: hash(bytes(slot)), slot });
    const reportHash = hash(bytes(1));
    const statuses: WorkPackageStatus[] = [
      { kind: "submitted", core: 0 },
      { kind: "refined", core: 1, reportHash },
      { kind: "reported", core: 1, reportHash, reportedIn: at(3) },
      { kind: "available", core: 1, reportHash, reportedIn: at(3), availableIn: at(4) },
      { kind: "accumulated", core: 1, reportHash, reportedIn: at(3), availableIn: at(4), accumulatedIn: at(5) },
      { kind: "failed", code: "JG_ERR_REFINE_PANIC", detail: "item 0: panic: at: 1" },
    ];
    const packageHash = hash(bytes(99));
    for (const status of statuses) {
      node.setStatus(packageHash, status);
      expect(await client.workPackageStatus(packageHash)).toEqual(status);
    }
  });

  it("uses the JIP-2 wire forms", async () => {
    const raw = await RawSocket.open(server.port);
    const best = node.best;
    expect((await raw.request("bestBlock", [])).result).toEqual({ header_hash: b64(best.headerHash), slot: best.slot });
    expect((await raw.request("parameters")).result).toEqual({ V1: node.params });
    expect((await raw.request("block", [b64(best.headerHash)])).result).toBe(b64(node.encodedBlock(best)));
    expect((await raw.request("block", [UNKNOWN_HASH])).result).toBeNull();
    const proof = (await node.serviceValueProof(7, node.storageKey))!;
    expect((await raw.request("serviceValueProof", [7, b64(node.storageKey)])).result).toEqual({
      block: { header_hash: b64(best.headerHash), slot: best.slot },
      state_root: b64(proof.stateRoot),
      state_key: b64(proof.stateKey),
      value: b64(node.storageValue),
      siblings: proof.siblings.map(b64),
    });
    expect(proof.siblings.length).toBeGreaterThan(0);
    expect((await raw.request("serviceValueProof", [7, "AA=="])).result).toBeNull();
    expect((await raw.request("submitWorkPackage", [0, "AQID", []])).result).toBeNull();
    const pkgHash = b64(hash(bytes(1, 2, 3)));
    const reportHash = hash(bytes(4));
    node.setStatus(hash(bytes(1, 2, 3)), { kind: "available", core: 0, reportHash, reportedIn: best, availableIn: best });
    const block = { header_hash: b64(best.headerHash), slot: best.slot };
    expect((await raw.request("workPackageStatus", [b64(best.headerHash), pkgHash, UNKNOWN_HASH])).result).toEqual({
      Ready: { reported_in: block, core: 0, report_hash: b64(reportHash), ready_in: block },
    });
    node.setStatus(hash(bytes(1, 2, 3)), { kind: "failed", code: "JG_ERR_REPORT_TIMEOUT", detail: "dropped" });
    expect((await raw.request("workPackageStatus", [b64(best.headerHash), pkgHash, UNKNOWN_HASH])).result).toEqual({
      Failed: "JG_ERR_REPORT_TIMEOUT: dropped",
    });
    raw.close();
  });
});

describe("data-availability methods (jamgate extensions)", () => {
  it("fetchWorkPackage, submitChunk and submitAssurance round-trip", async () => {
    const bundle = bytes(9, 8, 7);
    node.bundles.set(Buffer.from(hash(bundle)).toString("hex"), bundle);
    expect(await client.fetchWorkPackage(hash(bundle))).toEqual(bundle);
    await expect(client.fetchWorkPackage(new Uint8Array(32))).rejects.toMatchObject({ code: "JG_ERR_DA_UNAVAILABLE" });
    const proof = { segmentsRoot: new Uint8Array(32).fill(1), path: [new Uint8Array(64).fill(2), new Uint8Array(32).fill(3)] };
    await client.submitChunk(new Uint8Array(32).fill(4), 5, bytes(1, 2), proof);
    expect(node.received.chunk).toEqual({ erasureRoot: new Uint8Array(32).fill(4), index: 5, chunk: bytes(1, 2), proof });
    await client.submitAssurance(bytes(6, 6));
    expect(node.received.assurance).toEqual(bytes(6, 6));
  });
});

describe("subscriptions", () => {
  it("deliver best blocks until unsubscribed", async () => {
    const seen: number[] = [];
    const unsubscribe = await client.subscribeBestBlock((b) => seen.push(b.slot));
    node.advance();
    node.advance();
    await eventually(() => seen.length === 2);
    expect(seen).toEqual([1, 2]);
    unsubscribe();
    await eventually(() => node.activeSubscriptions === 0);
    node.advance();
    expect(await client.bestBlock()).toMatchObject({ slot: 3 });
    expect(seen).toEqual([1, 2]);
  });

  it("deliver work-package statuses as Chain Subscription Updates, never before the subscription id", async () => {
    const packageHash = hash(bytes(7));
    node.setStatus(packageHash, { kind: "submitted", core: 0 }); // the fake tells this one during subscribe
    const raw = await RawSocket.open(server.port);
    raw.ws.send(JSON.stringify({ jsonrpc: "2.0", id: 1, method: "subscribeWorkPackageStatus", params: [b64(packageHash), UNKNOWN_HASH, false] }));
    await raw.until((ms) => ms.length === 2);
    const [response, update] = raw.messages as [Json, Json];
    expect(response).toEqual({ jsonrpc: "2.0", id: 1, result: expect.any(Number) });
    expect(update).toEqual({
      jsonrpc: "2.0",
      method: "subscribeWorkPackageStatus",
      params: { subscription: response.result, result: { header_hash: b64(node.best.headerHash), slot: 0, value: { Submitted: { core: 0 } } } },
    });
    expect((await raw.request("unsubscribeWorkPackageStatus", [response.result])).result).toBe(true);
    expect((await raw.request("unsubscribeWorkPackageStatus", [response.result])).result).toBe(false);
    expect(node.activeSubscriptions).toBe(0);
    raw.close();

    const statuses: WorkPackageStatus[] = [];
    const unsubscribe = await client.subscribeWorkPackageStatus(packageHash, (s) => statuses.push(s));
    node.setStatus(packageHash, { kind: "refined", core: 0, reportHash: hash(bytes(8)) });
    await eventually(() => statuses.length === 2);
    expect(statuses.map((s) => s.kind)).toEqual(["submitted", "refined"]);
    unsubscribe();
    await eventually(() => node.activeSubscriptions === 0);
  });

  it("subscribeFinalizedBlock and the optional finalized flag work on the raw wire", async () => {
    const raw = await RawSocket.open(server.port);
    const sub = (await raw.request("subscribeFinalizedBlock")).result;
    expect((await raw.request("subscribeBestBlock", [true])).result).toEqual(expect.any(Number));
    expectCodedError(await raw.request("subscribeBestBlock", ["yes"]), "JG_ERR_RPC_PARAMS", "finalized");
    node.advance();
    await raw.until((ms) => ms.filter((m) => m.method !== undefined).length === 2);
    expect(raw.messages).toContainEqual({
      jsonrpc: "2.0",
      method: "subscribeFinalizedBlock",
      params: { subscription: sub, result: { header_hash: b64(node.best.headerHash), slot: 1 } },
    });
    // A subscription id only stops through its own unsubscribe method.
    expect((await raw.request("unsubscribeBestBlock", [sub])).result).toBe(false);
    raw.close();
  });

  it("are stopped when the socket closes", async () => {
    const raw = await RawSocket.open(server.port);
    await raw.request("subscribeBestBlock", []);
    await raw.request("subscribeWorkPackageStatus", [UNKNOWN_HASH, UNKNOWN_HASH, true]);
    expect(node.activeSubscriptions).toBe(2);
    raw.close();
    await eventually(() => node.activeSubscriptions === 0);
  });

  it("are stopped when the server closes, and the client's calls then reject", async () => {
    await client.subscribeBestBlock(() => {});
    await server.close();
    expect(node.activeSubscriptions).toBe(0);
    await expect(client.bestBlock()).rejects.toMatchObject({ code: "JG_ERR_RPC_CLOSED" });
    server = await startRpcServer(node, { port: 0, token: TOKEN }); // for afterEach
  });
});

describe("errors", () => {
  it("bad params answer -32602 with JG_ERR_RPC_PARAMS naming the param", async () => {
    const raw = await RawSocket.open(server.port);
    const h = b64(node.best.headerHash);
    const cases: [string, unknown, string][] = [
      ["stateRoot", ["abc"], "header_hash"],
      ["stateRoot", [b64(new Uint8Array(31))], "header_hash"],
      ["stateRoot", [b64(new Uint8Array(32)).replace(/=$/, "")], "header_hash"],
      ["stateRoot", [], "expected 1 params (header_hash), got 0"],
      ["stateRoot", { header_hash: h }, "params must be an Array"],
      ["bestBlock", [1], "expected 0 params"],
      ["block", [b64(new Uint8Array(31))], "header_hash"],
      ["block", [h, h], "expected 1 params"],
      ["serviceValueProof", [-1, "AA=="], "id"],
      ["serviceValueProof", [7, "AA="], "key"],
      ["serviceValueProof", [7], "expected 2 params"],
      ["serviceData", [h, -1], "id"],
      ["serviceData", [h, 1.5], "id"],
      ["serviceData", [h, 2 ** 32], "id"],
      ["serviceData", [h, "7"], "id"],
      ["serviceValue", [h, 7, 5], "key"],
      ["submitWorkPackage", [0, "AQID", ["AQ"]], "extrinsics[0]"],
      ["submitWorkPackage", [0, "AQID", "AQ=="], "extrinsics"],
      ["submitWorkPackage", [0, null, []], "package"],
      ["workPackageStatus", [h, h, "x"], "anchor"],
      ["subscribeWorkPackageStatus", [h, h], "expected 3 params"],
      ["subscribeWorkPackageStatus", [h, h, 0], "finalized"],
      ["unsubscribeBestBlock", ["1"], "id"],
    ];
    for (const [method, params, mentions] of cases) {
      const response = await raw.request(method, params);
      expectCodedError(response, "JG_ERR_RPC_PARAMS", mentions);
    }
    expect(server.stats.errors.JG_ERR_RPC_PARAMS).toBe(cases.length);
    expect(node.submitted).toEqual([]);
    await expect(client.serviceData(node.best.headerHash, -1)).rejects.toMatchObject({ code: "JG_ERR_RPC_PARAMS" });
    raw.close();
  });

  it("a JamgateError from the node keeps its registry rpcCode and JG code", async () => {
    const raw = await RawSocket.open(server.port);
    const response = await raw.request("stateRoot", [UNKNOWN_HASH]);
    expect(response.error).toMatchObject({ code: 1, data: { code: "JG_ERR_RPC_BLOCK_UNKNOWN", header_hash: UNKNOWN_HASH } });
    expect((await raw.request("workReport", [UNKNOWN_HASH])).error).toMatchObject({
      code: 2,
      data: { code: "JG_ERR_RPC_REPORT_UNKNOWN", report_hash: UNKNOWN_HASH },
    });
    expectCodedError(await raw.request("submitWorkPackage", [9, "AQID", []]), "JG_ERR_PACKAGE_CORE", "core 9");
    node.failNext = new JamgateError("JG_ERR_QUEUE_FULL", "core 0 is busy");
    expectCodedError(await raw.request("submitWorkPackage", [0, "AQID", []]), "JG_ERR_QUEUE_FULL");
    raw.close();

    const error = await client.stateRoot(new Uint8Array(32)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(JamgateError);
    expect(error).toMatchObject({ code: "JG_ERR_RPC_BLOCK_UNKNOWN", message: `JG_ERR_RPC_BLOCK_UNKNOWN: no block ${"00".repeat(32)}` });
    await expect(client.submitWorkPackage(5, bytes(1), [])).rejects.toMatchObject({ code: "JG_ERR_PACKAGE_CORE", message: "JG_ERR_PACKAGE_CORE: core 5 of 2" });
    expect(server.stats.errors).toMatchObject({ JG_ERR_RPC_BLOCK_UNKNOWN: 2, JG_ERR_PACKAGE_CORE: 2, JG_ERR_QUEUE_FULL: 1 });
  });

  it("other errors from the node answer -32603 and are logged", async () => {
    const raw = await RawSocket.open(server.port);
    const failure = new Error("disk on fire");
    node.failNext = failure;
    const response = await raw.request("bestBlock", []);
    expect(response.error).toEqual({ code: -32603, message: "internal error" });
    expect(server.stats.internalErrors).toBe(1);
    expect(log.error).toHaveBeenCalledWith({ method: "bestBlock", err: failure }, "rpc method failed");
    expect((await raw.request("bestBlock", [])).result).toMatchObject({ slot: 0 });
    raw.close();
    node.failNext = new Error("again");
    await expect(client.parameters()).rejects.toBeInstanceOf(JamgateError);
  });

  it("garbage frames get JSON-RPC errors and the connection stays usable", async () => {
    const raw = await RawSocket.open(server.port);
    const send = async (frame: string | Uint8Array) => {
      const before = raw.messages.length;
      raw.ws.send(frame);
      await raw.until((ms) => ms.length > before);
      return raw.messages.pop() as Json;
    };
    expect(await send("{not json")).toEqual({
      jsonrpc: "2.0",
      id: null,
      error: { code: -32700, message: expect.any(String), data: { code: "JG_ERR_RPC_PARSE" } },
    });
    expectCodedError(await send(bytes(1, 2, 3)), "JG_ERR_RPC_INVALID_REQUEST", "binary");
    expectCodedError(await send("[]"), "JG_ERR_RPC_INVALID_REQUEST", "batch");
    expectCodedError(await send('[{"jsonrpc":"2.0","id":1,"method":"bestBlock"}]'), "JG_ERR_RPC_INVALID_REQUEST", "batch");
    expectCodedError(await send("42"), "JG_ERR_RPC_INVALID_REQUEST");
    expect(await send('{"jsonrpc":"1.0","id":5,"method":"bestBlock"}')).toMatchObject({ id: 5, error: { code: -32600 } });
    expect(await send('{"jsonrpc":"2.0","id":{},"method":"bestBlock"}')).toMatchObject({ id: null, error: { code: -32600 } });
    expect(await send('{"jsonrpc":"2.0","id":6,"method":"bestBlock","params":3}')).toMatchObject({ id: 6, error: { code: -32600 } });
    for (const method of ["nope", "__proto__", "constructor", "unsubscribe"]) {
      expectCodedError(await raw.request(method, []), "JG_ERR_RPC_METHOD", "unknown method");
    }
    // Notifications get no answer, not even an error (JSON-RPC 2.0 §4.1).
    raw.ws.send('{"jsonrpc":"2.0","method":"nope"}');
    raw.ws.send('{"jsonrpc":"2.0","method":"stateRoot","params":[1]}');
    expect((await raw.request("bestBlock", [], "after")).result).toMatchObject({ slot: 0 });
    expect(raw.messages).toEqual([]);
    expect(server.stats.errors).toMatchObject({ JG_ERR_RPC_PARSE: 1, JG_ERR_RPC_INVALID_REQUEST: 7, JG_ERR_RPC_METHOD: 5, JG_ERR_RPC_PARAMS: 1 });
    raw.close();
  });

  it("any frame gets a well-formed answer, or none for a Notification, and bestBlock still works after it", async () => {
    const raw = await RawSocket.open(server.port);
    const knownHash = b64(node.best.headerHash);
    const methods = ["bestBlock", "parameters", "stateRoot", "serviceData", "serviceValue", "submitWorkPackage", "workPackageStatus", "workReport"];
    const subscribeMethods = ["subscribeBestBlock", "unsubscribeBestBlock", "subscribeWorkPackageStatus", "unsubscribeWorkPackageStatus"];
    const param = fc.oneof(fc.jsonValue(), fc.constantFrom(knownHash, UNKNOWN_HASH, "AQID", "AQ", 7, 0, -1, 2 ** 32, true, [], ["AQ=="]));
    const request = fc.record(
      {
        jsonrpc: fc.constantFrom<unknown>("2.0", "2.0", "1.0", 2),
        id: fc.oneof(fc.integer(), fc.string(), fc.constant(null), fc.double(), fc.object()),
        method: fc.oneof(fc.constantFrom(...methods, ...subscribeMethods, "nope", "__proto__"), fc.string()),
        params: fc.oneof(fc.array(param, { maxLength: 4 }), fc.jsonValue()),
      },
      { requiredKeys: ["jsonrpc", "method"] },
    );
    const frame = fc.oneof(
      fc.string({ unit: "binary", maxLength: 200 }),
      fc.uint8Array({ maxLength: 200 }),
      fc.jsonValue().map((v) => JSON.stringify(v)),
      request.map((r) => JSON.stringify(r)),
    );
    let sentinel = 0;
    await fc.assert(
      fc.asyncProperty(frame, async (f) => {
        let parsed: unknown;
        let parses = typeof f === "string";
        if (typeof f === "string") {
          try {
            parsed = JSON.parse(f);
          } catch {
            parses = false;
          }
        }
        // JSON-RPC 2.0 §4.1: a Notification is a valid Request object without an "id" member.
        const p = parsed as Json;
        const isNotification =
          typeof p === "object" &&
          p !== null &&
          !Array.isArray(p) &&
          p.jsonrpc === "2.0" &&
          typeof p.method === "string" &&
          !("id" in p) &&
          (p.params === undefined || (typeof p.params === "object" && p.params !== null));
        const expected = isNotification ? 0 : 1;

        raw.messages.length = 0;
        const sentinelId = `sentinel-${++sentinel}`;
        raw.ws.send(f);
        raw.ws.send(JSON.stringify({ jsonrpc: "2.0", id: sentinelId, method: "bestBlock", params: [] }));
        const isAnswer = (m: Json) => m.id !== sentinelId && !("method" in m);
        await raw.until((ms) => ms.some((m) => m.id === sentinelId) && ms.filter(isAnswer).length >= expected);
        expect(raw.messages.find((m) => m.id === sentinelId)?.result).toEqual({ header_hash: knownHash, slot: 0 });
        const answers = raw.messages.filter(isAnswer);
        expect(answers).toHaveLength(expected);
        for (const m of answers) {
          expect(m.jsonrpc).toBe("2.0");
          expect("id" in m).toBe(true);
          expect("result" in m !== "error" in m).toBe(true);
          if ("error" in m) {
            expect(Number.isInteger(m.error.code)).toBe(true);
            expect(typeof m.error.message).toBe("string");
            if (m.error.code !== -32603) expect(errorRegistry[m.error.data.code as keyof typeof errorRegistry].rpcCode).toBe(m.error.code);
          }
        }
        if (!parses) expect(answers[0]?.error.code).toBe(typeof f === "string" ? -32700 : -32600);
        // Updates from subscriptions the junk opened are JIP-2 Notifications.
        for (const m of raw.messages.filter((m) => "method" in m)) expect(m.params).toMatchObject({ subscription: expect.any(Number) });
      }),
      { numRuns: 300 },
    );
    expect(server.stats.internalErrors).toBe(0);
    raw.close();
  });
});

describe("bounds", () => {
  it("an oversize frame closes that connection with 1009; the server keeps serving", async () => {
    await server.close();
    server = await startRpcServer(node, { port: 0, maxPayloadBytes: 1024, log, token: TOKEN });
    const raw = await RawSocket.open(server.port);
    raw.ws.send("x".repeat(2048));
    expect(await raw.closed()).toBe(1009);
    expect(server.stats.errors.JG_ERR_RPC_OVERSIZE).toBe(1);
    expect(log.warn).toHaveBeenCalled();

    const small = await RpcClient.connect(`ws://127.0.0.1:${server.port}`, { token: TOKEN });
    await expect(small.submitWorkPackage(0, new Uint8Array(4096), [])).rejects.toMatchObject({ code: "JG_ERR_RPC_OVERSIZE" });
    await expect(small.bestBlock()).rejects.toMatchObject({ code: "JG_ERR_RPC_OVERSIZE" });
    await small.close();

    const again = await RpcClient.connect(`ws://127.0.0.1:${server.port}`, { token: TOKEN });
    expect(await again.bestBlock()).toEqual(node.best);
    await again.close();
  });

  it("a connection's requests in flight are bounded; the rest wait, then all are answered", async () => {
    const raw = await RawSocket.open(server.port);
    const release = node.hold();
    const count = MAX_IN_FLIGHT_PER_CONNECTION * 2;
    for (let id = 0; id < count; id++) raw.ws.send(JSON.stringify({ jsonrpc: "2.0", id, method: "bestBlock" }));
    await eventually(() => node.maxConcurrentBestBlock === MAX_IN_FLIGHT_PER_CONNECTION);
    release();
    await raw.until((ms) => ms.length === count);
    expect(node.maxConcurrentBestBlock).toBe(MAX_IN_FLIGHT_PER_CONNECTION);
    expect(new Set(raw.messages.map((m) => m.id)).size).toBe(count);
    raw.close();
  });

  it("so are a connection's bytes in flight", async () => {
    const raw = await RawSocket.open(server.port);
    const release = node.hold();
    const pad = "x".repeat(8 * 1024 * 1024); // JSON-RPC lets a request carry members a server ignores
    for (let id = 0; id < 12; id++) raw.ws.send(JSON.stringify({ jsonrpc: "2.0", id, method: "bestBlock", pad }));
    const admitted = Math.ceil(MAX_IN_FLIGHT_BYTES_PER_CONNECTION / (pad.length + 64));
    await eventually(() => node.maxConcurrentBestBlock === admitted);
    release();
    await raw.until((ms) => ms.length === 12);
    expect(node.maxConcurrentBestBlock).toBe(admitted);
    raw.close();
  });

  it("read-only connections are bounded apart: past MAX_READ_ONLY_CONNECTIONS they are refused (503), and a client with the token still connects", async () => {
    const sockets = await Promise.all(Array.from({ length: MAX_READ_ONLY_CONNECTIONS }, () => RawSocket.open(server.port, null)));
    await expect(RawSocket.open(server.port, null)).rejects.toThrow(/503/);
    expect(server.stats.rejectedConnections).toBe(1);
    // 128 idle read-only sockets used to be able to take all 256: the token's room is its own.
    const writer = await RpcClient.connect(`ws://127.0.0.1:${server.port}`, { token: TOKEN });
    expect(await writer.bestBlock()).toEqual(node.best);
    await writer.close();
    sockets[0]?.close();
    await sockets[0]?.closed();
    let extra: RawSocket | undefined;
    for (let i = 0; i < 50 && extra === undefined; i++) extra = await RawSocket.open(server.port, null).catch(() => undefined);
    expect((await extra!.request("bestBlock")).result).toMatchObject({ slot: node.best.slot });
    extra?.close();
    for (const s of sockets) s.close();
  });

  it("a read-only connection's frame is refused from its header (1009), before its payload arrives; one with the token may send W_B-sized frames", async () => {
    const raw = await RawSocket.open(server.port, null);
    // A masked text frame declaring 19 MiB (64-bit length), and no payload: only the header is sent.
    const header = Buffer.alloc(14);
    header[0] = 0x81;
    header[1] = 0x80 | 127;
    header.writeBigUInt64BE(19n * 1024n * 1024n, 2);
    (raw.ws as unknown as { _socket: import("node:net").Socket })._socket.write(header);
    expect(await raw.closed()).toBe(1009);
    expect(server.stats.errors.JG_ERR_RPC_OVERSIZE).toBe(1);
    const writer = await RawSocket.open(server.port);
    const pad = "x".repeat(READ_ONLY_MAX_PAYLOAD_BYTES * 2);
    writer.ws.send(JSON.stringify({ jsonrpc: "2.0", id: 1, method: "bestBlock", pad }));
    expect((await writer.response(1)).result).toMatchObject({ slot: node.best.slot });
    writer.close();
  });
});

describe("access", () => {
  it("without the token a loopback client may read but not change state: JG_ERR_RPC_UNAUTHORIZED, and nothing reaches the node", async () => {
    const reader = await RpcClient.connect(`ws://127.0.0.1:${server.port}`);
    expect(await reader.bestBlock()).toEqual(node.best);
    expect(await reader.block(node.best.headerHash)).toEqual(node.encodedBlock(node.best));
    expect((await reader.serviceValueProof(7, node.storageKey))?.value).toEqual(node.storageValue);
    await expect(reader.submitWorkPackage(0, bytes(1, 2, 3), [])).rejects.toMatchObject({ code: "JG_ERR_RPC_UNAUTHORIZED" });
    await expect(reader.submitChunk(new Uint8Array(32), 0, bytes(1), { segmentsRoot: new Uint8Array(32), path: [] })).rejects.toMatchObject({
      code: "JG_ERR_RPC_UNAUTHORIZED",
    });
    await expect(reader.submitAssurance(bytes(6))).rejects.toMatchObject({ code: "JG_ERR_RPC_UNAUTHORIZED" });
    expect(node.submitted).toHaveLength(0);
    expect(server.stats.errors.JG_ERR_RPC_UNAUTHORIZED).toBe(3);
    await reader.close();
    // The same call with the token goes through.
    await client.submitWorkPackage(0, bytes(1, 2, 3), []);
    expect(node.submitted).toHaveLength(1);
  });

  it("refuses a wrong token at the handshake (401), and never logs a token", async () => {
    await expect(RpcClient.connect(`ws://127.0.0.1:${server.port}`, { token: "rpc-test-tokeN" })).rejects.toMatchObject({ code: "JG_ERR_RPC_UNAUTHORIZED" });
    await expect(RpcClient.connect(`ws://127.0.0.1:${server.port}`, { token: "" })).rejects.toMatchObject({ code: "JG_ERR_RPC_UNAUTHORIZED" });
    expect(server.stats.unauthorizedHandshakes).toBe(2);
    const logged = JSON.stringify([...log.warn.mock.calls, ...log.error.mock.calls]);
    expect(logged).toContain("wrong token");
    expect(logged).not.toContain("rpc-test-tok");
  });

  it("a server without a token takes no state change from anyone", async () => {
    await server.close();
    server = await startRpcServer(node, { port: 0 });
    await expect(RpcClient.connect(`ws://127.0.0.1:${server.port}`, { token: TOKEN })).rejects.toMatchObject({ code: "JG_ERR_RPC_UNAUTHORIZED" });
    const reader = await RpcClient.connect(`ws://127.0.0.1:${server.port}`);
    await expect(reader.submitWorkPackage(0, bytes(1), [])).rejects.toMatchObject({ code: "JG_ERR_RPC_UNAUTHORIZED" });
    await reader.close();
  });

  it("bounds the sockets of each address off loopback (MAX_CONNECTIONS_PER_REMOTE_ADDRESS); loopback's clients are bounded otherwise", () => {
    const budget = new AddressBudget(MAX_CONNECTIONS_PER_REMOTE_ADDRESS);
    for (let i = 0; i < MAX_CONNECTIONS_PER_REMOTE_ADDRESS; i++) expect(budget.take("192.0.2.7")).toBe(true);
    expect(budget.take("192.0.2.7")).toBe(false);
    expect(budget.heldBy("192.0.2.7")).toBe(MAX_CONNECTIONS_PER_REMOTE_ADDRESS);
    expect(budget.take("192.0.2.8")).toBe(true); // another address has its own
    budget.release("192.0.2.7");
    expect(budget.take("192.0.2.7")).toBe(true);
    for (let i = 0; i < 3 * MAX_CONNECTIONS_PER_REMOTE_ADDRESS; i++) expect(budget.take("127.0.0.1")).toBe(true);
    expect(budget.heldBy("127.0.0.1")).toBe(0);
  });

  it("decides a handshake by token and address: loopback reads without one, elsewhere the token is needed", () => {
    const expected = "secret";
    expect(handshakeVerdict(null, expected, "127.0.0.1")).toBe("read");
    expect(handshakeVerdict(null, expected, "::1")).toBe("read");
    expect(handshakeVerdict(null, expected, "::ffff:127.0.0.5")).toBe("read");
    expect(handshakeVerdict(null, expected, "192.168.1.20")).toBe("unauthorized");
    expect(handshakeVerdict(null, expected, "::ffff:10.0.0.1")).toBe("unauthorized");
    expect(handshakeVerdict("secret", expected, "192.168.1.20")).toBe("write");
    expect(handshakeVerdict("secreT", expected, "127.0.0.1")).toBe("unauthorized");
    expect(handshakeVerdict("secret", null, "127.0.0.1")).toBe("unauthorized");
    expect(handshakeVerdict(null, null, "127.0.0.1")).toBe("read");
  });
});

describe("idle connections", () => {
  it("closes a WebSocket with no subscription that sends nothing, keeps one that holds a subscription, and closes a socket that never upgrades", async () => {
    await client.close();
    await server.close();
    server = await startRpcServer(node, {
      port: 0,
      log,
      token: TOKEN,
      limits: { idleConnectionMs: 100, webSocketPingIntervalMs: 50, headersTimeoutMs: 200, connectionsCheckingIntervalMs: 50, idleSocketTimeoutMs: 400 },
    });
    client = await RpcClient.connect(`ws://127.0.0.1:${server.port}`, { token: TOKEN });
    const watcher = await RawSocket.open(server.port, null);
    await watcher.request("subscribeBestBlock", []);
    const idle = await RawSocket.open(server.port, null);
    expect(await idle.closed()).toBe(1000);
    expect(server.stats.idleClosed).toBeGreaterThanOrEqual(1);
    // The subscriber outlived the idle one by several sweeps and still gets answers.
    await new Promise((r) => setTimeout(r, 300));
    expect(watcher.closeCode).toBeNull();
    expect((await watcher.request("parameters")).result).toBeDefined();
    watcher.close();
    // A TCP connection that never sends a request head is closed too.
    const { connect } = await import("node:net");
    const tcp = connect(server.port, "127.0.0.1");
    tcp.on("error", () => {});
    tcp.resume(); // a paused socket would never see the server's FIN
    await new Promise<void>((resolve) => tcp.once("close", () => resolve()));
  });
});

describe("RpcClient", () => {
  it("rejects pending calls on close, and calls after it", async () => {
    node.hold();
    const pending = expect(client.bestBlock()).rejects.toMatchObject({ code: "JG_ERR_RPC_CLOSED" });
    await eventually(() => node.maxConcurrentBestBlock === 1);
    await client.close();
    await pending;
    await expect(client.parameters()).rejects.toMatchObject({ code: "JG_ERR_RPC_CLOSED" });
  });

  it("refuses a value proof that does not verify or is for another key, and one past the siblings bound (JG_ERR_RPC_REMOTE)", async () => {
    const real = (await node.serviceValueProof(7, node.storageKey))!;
    const forgeries: ServiceValueProof[] = [
      { ...real, value: bytes(43) },
      { ...real, siblings: real.siblings.map((s, i) => (i === 0 ? s.map((b, j) => (j === 31 ? b ^ 1 : b)) : s)) },
      { ...real, stateRoot: hash(real.stateRoot) },
      { ...real, siblings: [...real.siblings, new Uint8Array(32)] },
      { ...real, siblings: Array.from({ length: 249 }, () => new Uint8Array(32)) },
    ];
    for (const forged of forgeries) {
      node.serviceValueProof = async () => forged;
      await expect(client.serviceValueProof(7, node.storageKey)).rejects.toMatchObject({
        code: UNCODED_REMOTE_ERROR,
        message: expect.stringContaining("malformed serviceValueProof result"),
      });
    }
    // A true proof of another key, offered for this one.
    const other = State.fromEntries([[storageKey(7, bytes(1)), bytes(2)]]);
    const otherKey = storageKey(7, bytes(1));
    node.serviceValueProof = async () => ({ block: node.best, stateRoot: other.root(), stateKey: Buffer.from(otherKey, "hex"), ...other.proof(otherKey)! });
    await expect(client.serviceValueProof(7, node.storageKey)).rejects.toMatchObject({
      code: UNCODED_REMOTE_ERROR,
      message: expect.stringContaining("state_key"),
    });
    node.serviceValueProof = async () => real;
    expect(await client.serviceValueProof(7, node.storageKey)).toEqual(real);
  });

  it("times a call out", async () => {
    const impatient = await RpcClient.connect(`ws://127.0.0.1:${server.port}`, { timeoutMs: 50, token: TOKEN });
    const release = node.hold();
    await expect(impatient.bestBlock()).rejects.toMatchObject({ code: "JG_ERR_RPC_TIMEOUT", message: expect.stringContaining("50 ms") });
    release();
    expect(await impatient.parameters()).toEqual(node.params);
    await impatient.close();
  });

  it("reads errors and statuses from a JIP-2 server that sends no JG codes", async () => {
    const foreign = new WebSocketServer({ port: 0, host: "127.0.0.1" });
    await new Promise((resolve) => foreign.once("listening", resolve));
    const answers: Record<string, unknown> = {
      bestBlock: { error: { code: -32601, message: "Method not found" } },
      stateRoot: { error: { code: 1, message: "Block unavailable", data: UNKNOWN_HASH } },
      parameters: { error: { code: 0, message: "busy" } },
      workPackageStatus: { result: { Failed: "anchor on another fork" } },
    };
    foreign.on("connection", (ws) =>
      ws.on("message", (data) => {
        const { id, method } = JSON.parse(data.toString());
        ws.send(JSON.stringify({ jsonrpc: "2.0", id, ...(answers[method] ?? { result: { header_hash: UNKNOWN_HASH, slot: 1 } }) }));
      }),
    );
    const port = (foreign.address() as { port: number }).port;
    const remote = await RpcClient.connect(`ws://127.0.0.1:${port}`);
    await expect(remote.bestBlock()).rejects.toMatchObject({ code: "JG_ERR_RPC_METHOD", message: "JG_ERR_RPC_METHOD: Method not found" });
    await expect(remote.stateRoot(new Uint8Array(32))).rejects.toMatchObject({ code: "JG_ERR_RPC_BLOCK_UNKNOWN" });
    await expect(remote.parameters()).rejects.toMatchObject({ code: UNCODED_REMOTE_ERROR, message: `${UNCODED_REMOTE_ERROR}: remote error 0: busy` });
    answers.bestBlock = { result: { header_hash: "AQ==", slot: 1 } };
    await expect(remote.bestBlock()).rejects.toMatchObject({
      code: UNCODED_REMOTE_ERROR,
      message: expect.stringContaining("malformed bestBlock result: result.header_hash"),
    });
    delete answers.bestBlock;
    expect(await remote.workPackageStatus(new Uint8Array(32))).toEqual({ kind: "failed", code: UNCODED_REMOTE_ERROR, detail: "anchor on another fork" });
    await remote.close();
    await new Promise((resolve) => foreign.close(resolve));
  });

  it("reports JIP-2 subscription errors to onSubscriptionError", async () => {
    const errors: string[] = [];
    const watcher = await RpcClient.connect(`ws://127.0.0.1:${server.port}`, {
      token: TOKEN,
      onSubscriptionError: (method, message) => errors.push(`${method}: ${message}`),
    });
    const packageHash = hash(bytes(3));
    await watcher.subscribeWorkPackageStatus(packageHash, () => {});
    node.failNext = new Error("no best block");
    node.setStatus(packageHash, { kind: "submitted", core: 0 });
    await eventually(() => errors.length === 1);
    expect(errors).toEqual(["subscribeWorkPackageStatus: cannot report a status update: no best block"]);
    await watcher.close();
  });

  it("fails to connect to a closed port with a coded error", async () => {
    const port = server.port;
    await server.close();
    await expect(RpcClient.connect(`ws://127.0.0.1:${port}`, { timeoutMs: 1000 })).rejects.toMatchObject({ code: "JG_ERR_RPC_CLOSED" });
    server = await startRpcServer(node, { port: 0, token: TOKEN });
  });
});
