import { RefineContext, WorkPackage } from "@typeberry/lib/block";
import { Bytes, BytesBlob } from "@typeberry/lib/bytes";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { counterPayload } from "../testing/counter/types.ts";
import { tinyParams } from "../chain/params.ts";
import { decode, encode } from "../codec/jam.ts";
import { JAMGATE_AUTH, withContext } from "../crypto/contexts.ts";
import { keyPairFromSeed, verifyEd25519 } from "../crypto/ed25519.ts";
import { hash } from "../crypto/hash.ts";
import type { JamNode } from "../node.ts";
import { COUNTER_CODE_HASH, counterItem, openTestNode, packageFor, submitterKey } from "../testing/fixtures.ts";
import { verifyAuthorization } from "./authorizer.ts";
import { buildWorkPackage } from "./builder.ts";

let node: JamNode;
beforeAll(async () => {
  node = await openTestNode();
});
afterAll(async () => {
  await node.stop();
});

async function rejection(core: number, bytes: Uint8Array): Promise<string> {
  const rootBefore = await node.stateRoot((await node.bestBlock()).headerHash);
  const error = await node.submitWorkPackage(core, bytes, []).then(
    () => "accepted",
    (e: Error) => e.message,
  );
  expect(await node.stateRoot((await node.bestBlock()).headerHash)).toEqual(rootBefore);
  return error;
}

/**
 * Byte equality by Buffer.compare: vitest's toEqual walks a Uint8Array element by element
 * (measured on 2 cores: the multi-MB packages below took 26-29 s that way, 26 ms this way).
 * On a mismatch it names the lengths and the first differing offset.
 */
function expectSameBytes(actual: Uint8Array, expected: Uint8Array): void {
  if (actual.length === expected.length && Buffer.compare(actual, expected) === 0) return;
  let at = 0;
  while (at < actual.length && at < expected.length && actual[at] === expected[at]) at++;
  expect.fail(`bytes differ: lengths ${actual.length} and ${expected.length}, first difference at offset ${at}`);
}

describe("intake rejects bad packages with coded errors", () => {
  it("garbage bytes", async () => {
    expect(await rejection(0, Uint8Array.of(1, 2, 3))).toMatch(/^JG_ERR_PACKAGE_MALFORMED/);
  });

  it("trailing bytes after a valid package", async () => {
    const pkg = await packageFor(node, [counterItem(counterPayload.increment(1n))]);
    expect(await rejection(0, Uint8Array.from([...pkg.bytes, 0]))).toMatch(/^JG_ERR_PACKAGE_MALFORMED/);
  });

  it("oversize", async () => {
    expect(await rejection(0, new Uint8Array(tinyParams.maxBundleBytes + 1))).toMatch(/^JG_ERR_PACKAGE_OVERSIZE/);
  });

  it("a core that does not exist", async () => {
    const pkg = await packageFor(node, [counterItem(counterPayload.increment(1n))]);
    expect(await rejection(2, pkg.bytes)).toMatch(/^JG_ERR_PACKAGE_CORE/);
  });

  it("more than I items", async () => {
    const items = Array.from({ length: 17 }, () => counterItem(counterPayload.increment(1n), { refineGasLimit: 1000n, accumulateGasLimit: 1000n }));
    const pkg = await packageFor(node, items);
    expect(await rejection(0, pkg.bytes)).toMatch(/^JG_ERR_PACKAGE_ITEMS/);
  });

  it("refine gas over G_R and accumulate gas over G_A", async () => {
    const tooMuchRefine = await packageFor(node, [counterItem(counterPayload.increment(1n), { refineGasLimit: tinyParams.refineGasPerPackage + 1n })]);
    expect(await rejection(0, tooMuchRefine.bytes)).toMatch(/^JG_ERR_PACKAGE_GAS: refine/);
    const tooMuchAccumulate = await packageFor(node, [
      counterItem(counterPayload.increment(1n), { accumulateGasLimit: tinyParams.accumulateGasPerReport + 1n }),
    ]);
    expect(await rejection(0, tooMuchAccumulate.bytes)).toMatch(/^JG_ERR_PACKAGE_GAS: accumulate/);
  });

  it("a token that is not the configured key's signature", async () => {
    const pkg = await packageFor(node, [counterItem(counterPayload.increment(1n))]);
    const p = decode(WorkPackage.Codec, pkg.bytes, tinyParams.spec) as WorkPackage;
    const token = p.authToken.raw.slice();
    token[0]! ^= 1;
    const tampered = encode(WorkPackage.Codec, WorkPackage.create({ ...p, authToken: BytesBlob.blobFrom(token) }), tinyParams.spec);
    expect(await rejection(0, tampered)).toMatch(/^JG_ERR_AUTH_BAD_TOKEN/);
  });

  it("a key the service has not authorized", async () => {
    const stranger = keyPairFromSeed(new Uint8Array(32).fill(9));
    const pkg = await packageFor(node, [counterItem(counterPayload.increment(1n))], stranger);
    expect(await rejection(0, pkg.bytes)).toMatch(/^JG_ERR_AUTH_NOT_AUTHORIZED/);
  });

  it("an unknown service, and a known service with another code hash", async () => {
    const unknown = await packageFor(node, [{ ...counterItem(counterPayload.increment(1n)), serviceId: 77 }]);
    expect(await rejection(0, unknown.bytes)).toMatch(/^JG_ERR_SERVICE_UNKNOWN/);
    const otherCode = await packageFor(node, [{ ...counterItem(counterPayload.increment(1n)), codeHash: new Uint8Array(32) }]);
    expect(await rejection(0, otherCode.bytes)).toMatch(/^JG_ERR_SERVICE_CODE_HASH/);
    expect(COUNTER_CODE_HASH.length).toBe(32);
  });

  it("an unknown anchor", async () => {
    const best = await node.bestBlock();
    const stateRoot = await node.stateRoot(best.headerHash);
    const unknownAnchor = buildWorkPackage(tinyParams, {
      signer: submitterKey,
      anchor: { headerHash: new Uint8Array(32).fill(1), stateRoot, slot: 0 },
      items: [counterItem(counterPayload.increment(1n))],
    });
    expect(await rejection(0, unknownAnchor.bytes)).toMatch(/^JG_ERR_PACKAGE_ANCHOR: anchor is not a known block/);
    const wrongRoot = buildWorkPackage(tinyParams, {
      signer: submitterKey,
      anchor: { headerHash: best.headerHash, stateRoot: new Uint8Array(32), slot: best.slot },
      items: [counterItem(counterPayload.increment(1n))],
    });
    expect(await rejection(0, wrongRoot.bytes)).toMatch(/^JG_ERR_PACKAGE_ANCHOR: context state root/);
  });

  it("counts every rejection by code", () => {
    const stats = node.errorStats();
    expect(stats.JG_ERR_PACKAGE_MALFORMED).toBe(2);
    expect(stats.JG_ERR_PACKAGE_GAS).toBe(2);
    expect(stats.JG_ERR_PACKAGE_ANCHOR).toBe(2);
  });

  it("another authorizer, extrinsics, or prerequisites", async () => {
    const pkg = await packageFor(node, [counterItem(counterPayload.increment(1n))]);
    const p = decode(WorkPackage.Codec, pkg.bytes, tinyParams.spec) as WorkPackage;
    const otherAuthorizer = encode(WorkPackage.Codec, WorkPackage.create({ ...p, authCodeHash: Bytes.fill(32, 5).asOpaque() }), tinyParams.spec);
    expect(await rejection(0, otherAuthorizer)).toMatch(/^JG_ERR_AUTH_UNKNOWN_AUTHORIZER/);
    const withPrerequisite = encode(
      WorkPackage.Codec,
      WorkPackage.create({ ...p, context: RefineContext.create({ ...p.context, prerequisites: [Bytes.fill(32, 1).asOpaque()] }) }),
      tinyParams.spec,
    );
    expect(await rejection(0, withPrerequisite)).toMatch(/^JG_ERR_PACKAGE_UNSUPPORTED/);
    await expect(node.submitWorkPackage(0, pkg.bytes, [Uint8Array.of(1)])).rejects.toThrow(/^JG_ERR_PACKAGE_UNSUPPORTED/);
  });

  it("the same package twice", async () => {
    const pkg = await packageFor(node, [counterItem(counterPayload.increment(3n))]);
    await node.submitWorkPackage(0, pkg.bytes, []);
    expect(await rejection(0, pkg.bytes)).toMatch(/^JG_ERR_PACKAGE_DUPLICATE/);
  });
});

describe("the authorizer's token, spliced into the package bytes", () => {
  it("the built bytes are E(p) of the signed package, and the token signs H(E(p')) of the package with an empty token", async () => {
    // A payload past 2^14 octets, so the items' length prefixes are several octets long.
    const pkg = await packageFor(node, [counterItem(new Uint8Array(20_000).fill(7)), counterItem(counterPayload.increment(3n))]);
    const p: WorkPackage = decode(WorkPackage.Codec, pkg.bytes, tinyParams.spec);
    expect(p.authToken.length).toBe(64);
    expectSameBytes(encode(WorkPackage.Codec, p, tinyParams.spec), pkg.bytes);
    // The definition, by re-encoding (what the splice replaces).
    const unsigned = encode(WorkPackage.Codec, WorkPackage.create({ ...p, authToken: BytesBlob.empty() }), tinyParams.spec);
    expect(verifyEd25519(submitterKey.publicKey, withContext(JAMGATE_AUTH, hash(unsigned)), p.authToken.raw)).toBe(true);
    expect(verifyAuthorization(tinyParams, p, pkg.bytes)).toBe(true);
    // Bytes changed after signing are not authorized.
    const other = pkg.bytes.slice();
    other[other.length - 1]! ^= 1;
    expect(verifyAuthorization(tinyParams, p, other)).toBe(false);
  });

  it("the package is encoded once, into a buffer of its exact size, whatever its payloads' length prefixes take", () => {
    const anchor = { headerHash: new Uint8Array(32).fill(9), stateRoot: new Uint8Array(32).fill(8), slot: 5 };
    // Payload lengths on both sides of each step of GP's compact length prefix (1, 2, 3, 4 octets).
    const lengths = [[0], [1, 127], [128], [16_383, 16_384], [2_097_151], [2_097_152, 0, 3]];
    for (const ls of lengths) {
      const items = ls.map((n, i) => counterItem(new Uint8Array(n).fill(i + 1)));
      const pkg = buildWorkPackage(tinyParams, { signer: submitterKey, anchor, items });
      const p: WorkPackage = decode(WorkPackage.Codec, pkg.bytes, tinyParams.spec);
      expect(pkg.bytes.buffer.byteLength).toBe(pkg.bytes.length); // its own buffer, nothing spare
      expectSameBytes(encode(WorkPackage.Codec, p, tinyParams.spec), pkg.bytes);
      expect(p.items.length).toBe(items.length);
      p.items.forEach((item, i) => {
        expectSameBytes(item.payload.raw, items[i]!.payload);
      });
      expect(verifyAuthorization(tinyParams, p, pkg.bytes)).toBe(true);
      expect(pkg.hash).toEqual(hash(pkg.bytes));
    }
  });
});
