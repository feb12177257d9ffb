/**
 * The NodeApi's refusals, one contract for every implementation (api.ts): the embedded node, an
 * RpcClient to it over JIP-2, and a NodeThread (the node on its own thread) reject the same bad
 * call with the same class, JamgateError, and the same registry code, which `codeOf` reads.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ErrorCode, JamgateError } from "../../devices/protocol/errors.ts";
import { COUNTER_KEY, counterPayload } from "../testing/counter/types.ts";
import { codeOf, isCoded, type NodeApi } from "../api.ts";
import { keyPairFromSeed } from "../crypto/ed25519.ts";
import { hash } from "../crypto/hash.ts";
import type { JamNode } from "../node.ts";
import { counterGenesis, counterItem, openTestNode, packageFor, tempDir } from "../testing/fixtures.ts";
import { NodeThread } from "../thread/host.ts";
import { RpcClient } from "./client.ts";
import { type RpcServer, startRpcServer } from "./server.ts";

const TOKEN = "contract-test-token";
const UNKNOWN = new Uint8Array(32).fill(0xee);
const SHORT = new Uint8Array(31);
const NO_PROOF = { segmentsRoot: new Uint8Array(32), path: [] };
/** Signs packages properly, but is not among the keys authorized for the counter services. */
const outsider = keyPairFromSeed(hash(new TextEncoder().encode("jamgate-contract-test-outsider")));

let node: JamNode;
let server: RpcServer;
let client: RpcClient;
let thread: NodeThread;

beforeAll(async () => {
  // Not started: nothing refines or authors, so both nodes stay at the same genesis.
  node = await openTestNode();
  server = await startRpcServer(node, { port: 0, token: TOKEN });
  client = await RpcClient.connect(`ws://127.0.0.1:${server.port}`, { token: TOKEN, timeoutMs: 30_000 });
  thread = await NodeThread.open({ dataDir: tempDir(), slotMs: 50, services: counterGenesis(), refineTimeoutMs: 2_000, authorBlocks: false });
}, 120_000);

afterAll(async () => {
  await client?.close();
  await server?.close();
  await node?.stop();
  await thread?.stop();
});

const implementations = (): [string, NodeApi][] => [
  ["embedded", node],
  ["rpc", client],
  ["thread", thread],
];

const best = async (api: NodeApi) => (await api.bestBlock()).headerHash;
/** A package each implementation submits for itself (`i`): the RPC client's and the embedded node's reach the same node. */
const counterPackage = (api: NodeApi, i: number, signer?: typeof outsider) =>
  packageFor(api, [counterItem(counterPayload.increment(BigInt(1_000 + i)))], signer);

/** A bad call, the code every implementation refuses it with, and for JG_ERR_RPC_PARAMS the param its detail names. */
const cases: [string, ErrorCode, (api: NodeApi, i: number) => Promise<unknown>, string?][] = [
  ["stateRoot of an unknown block", "JG_ERR_RPC_BLOCK_UNKNOWN", (api) => api.stateRoot(UNKNOWN)],
  ["listServices at an unknown block", "JG_ERR_RPC_BLOCK_UNKNOWN", (api) => api.listServices(UNKNOWN)],
  ["serviceData at an unknown block", "JG_ERR_RPC_BLOCK_UNKNOWN", (api) => api.serviceData(UNKNOWN, 1)],
  ["serviceValue at an unknown block", "JG_ERR_RPC_BLOCK_UNKNOWN", (api) => api.serviceValue(UNKNOWN, 1, COUNTER_KEY)],
  ["stateRoot of a 31-byte hash", "JG_ERR_RPC_PARAMS", (api) => api.stateRoot(SHORT), "header_hash"],
  ["block of a 31-byte hash", "JG_ERR_RPC_PARAMS", (api) => api.block(SHORT), "header_hash"],
  ["serviceData of service -1", "JG_ERR_RPC_PARAMS", async (api) => api.serviceData(await best(api), -1), "id"],
  ["serviceValue of service 2^32", "JG_ERR_RPC_PARAMS", async (api) => api.serviceValue(await best(api), 2 ** 32, COUNTER_KEY), "id"],
  ["serviceValueProof of service 1.5", "JG_ERR_RPC_PARAMS", (api) => api.serviceValueProof(1.5, COUNTER_KEY), "id"],
  ["workPackageStatus of a 31-byte hash", "JG_ERR_RPC_PARAMS", (api) => api.workPackageStatus(SHORT), "hash"],
  ["subscribeWorkPackageStatus of a 31-byte hash", "JG_ERR_RPC_PARAMS", (api) => api.subscribeWorkPackageStatus(SHORT, () => {}), "hash"],
  ["submitWorkPackage to core -1", "JG_ERR_RPC_PARAMS", async (api, i) => api.submitWorkPackage(-1, (await counterPackage(api, i)).bytes, []), "core"],
  ["submitWorkPackage to core 9 of 2", "JG_ERR_PACKAGE_CORE", async (api, i) => api.submitWorkPackage(9, (await counterPackage(api, i)).bytes, [])],
  ["submitWorkPackage of bytes that do not decode", "JG_ERR_PACKAGE_MALFORMED", (api) => api.submitWorkPackage(0, Uint8Array.of(1, 2, 3), [])],
  [
    "submitWorkPackage with an extrinsic",
    "JG_ERR_PACKAGE_UNSUPPORTED",
    async (api, i) => api.submitWorkPackage(0, (await counterPackage(api, i)).bytes, [Uint8Array.of(1)]),
  ],
  [
    "submitWorkPackage signed by a key not authorized for the service",
    "JG_ERR_AUTH_NOT_AUTHORIZED",
    async (api, i) => api.submitWorkPackage(0, (await counterPackage(api, i, outsider)).bytes, []),
  ],
  [
    "submitWorkPackage of a package already submitted",
    "JG_ERR_PACKAGE_DUPLICATE",
    async (api, i) => {
      const pkg = await counterPackage(api, i);
      await api.submitWorkPackage(0, pkg.bytes, []);
      return api.submitWorkPackage(0, pkg.bytes, []);
    },
  ],
  ["fetchWorkPackage of a package without chunks", "JG_ERR_DA_UNAVAILABLE", (api) => api.fetchWorkPackage(UNKNOWN)],
  ["submitChunk for an unknown erasure root", "JG_ERR_DA_UNKNOWN_REPORT", (api) => api.submitChunk(UNKNOWN, 0, Uint8Array.of(1), NO_PROOF)],
  ["submitChunk with index -1", "JG_ERR_RPC_PARAMS", (api) => api.submitChunk(UNKNOWN, -1, Uint8Array.of(1), NO_PROOF), "index"],
  ["submitAssurance that does not decode", "JG_ERR_DA_ASSURANCE_MALFORMED", (api) => api.submitAssurance(Uint8Array.of(1))],
];

describe("NodeApi refusals", () => {
  it.each(cases)("%s: %s from the embedded node, over the RPC and across the thread", async (_what, code, call, param) => {
    const refusals = await Promise.all(
      implementations().map(([name, api], i) =>
        call(api, i).then(
          (value) => ({ name, refusal: new Error(`${name} resolved with ${String(value)}`) as unknown }),
          (refusal: unknown) => ({ name, refusal }),
        ),
      ),
    );
    for (const { name, refusal } of refusals) {
      expect(refusal, name).toBeInstanceOf(JamgateError);
      expect(codeOf(refusal), name).toBe(code);
    }
    // Each implementation submits packages of its own, so hashes in the detail may differ.
    const details = refusals.map(({ refusal }) => (isCoded(refusal) ? refusal.detail : String(refusal)).replace(/[0-9a-f]{64}/g, "<hash>"));
    // The same detail too, except a param's: the wire names it as a base64 Hash, the node as bytes.
    if (param === undefined) expect(new Set(details).size, details.join(" | ")).toBe(1);
    else for (const detail of details) expect(detail).toMatch(new RegExp(`^${param} must be`));
  });
});

describe("codeOf and isCoded", () => {
  it("read the code of a JamgateError, and of nothing else", () => {
    const coded = new JamgateError("JG_ERR_QUEUE_FULL", "core 0 is busy");
    expect(isCoded(coded)).toBe(true);
    expect(codeOf(coded)).toBe("JG_ERR_QUEUE_FULL");
    const system = Object.assign(new Error("listen EADDRINUSE"), { code: "EADDRINUSE" });
    for (const other of [system, { code: "JG_ERR_QUEUE_FULL" }, "JG_ERR_QUEUE_FULL: core 0 is busy", null, undefined]) {
      expect(isCoded(other)).toBe(false);
      expect(codeOf(other)).toBeNull();
    }
  });
});
