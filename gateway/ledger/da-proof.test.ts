/**
 * Reading proofs through a real embedded node: a telemetry package of signed envelopes is
 * refined, erasure-coded, reported in a block and accumulated; `readingProof` assembles the DA
 * part from the node (fetchWorkPackage, workReport, block) and `verifyProof` checks it offline.
 * Flipping an envelope or bundle byte, pointing at a record that is not the device's, or swapping
 * the report or its block fails with the code the check names.
 */
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type DeviceId, signEnvelope, signingBytes } from "../../devices/envelope.ts";
import { deviceKeyFromSecret } from "../../devices/keys.ts";
import { headerHash } from "../../node/chain/block.ts";
import { nativeCodeHash } from "../../node/chain/genesis.ts";
import { tinyParams } from "../../node/chain/params.ts";
import { Block, decode, encode, fromHex, h32, Header, toHex } from "../../node/codec/jam.ts";
import { hash } from "../../node/crypto/hash.ts";
import type { JamNode } from "../../node/node.ts";
import { openTestNode, packageFor, submitterKey, waitForStatus } from "../../node/testing/fixtures.ts";
import { builtinServices, TELEMETRY_SERVICE } from "../genesis.ts";
import { accumulateGasLimit, encodeEnvelopesItem, type EnvelopeRecord } from "../../services/telemetry/types.ts";
import { readingProof } from "./da-proof.ts";
import { type Proof, PROOF_FORMAT, verifyProof } from "./proof.ts";

const params = tinyParams;
const deviceA = deviceKeyFromSecret(hash(Uint8Array.of(0xa)));
const deviceB = deviceKeyFromSecret(hash(Uint8Array.of(0xb)));
const deviceC = deviceKeyFromSecret(hash(Uint8Array.of(0xc)));

function record(
  key: { secretKey: Uint8Array; publicKey: Uint8Array },
  device: DeviceId,
  seq: number,
  options: { badSignature?: boolean } = {},
): EnvelopeRecord {
  const envelope = signEnvelope(
    { version: 1, device, seq, kind: "meter.reading", timeMs: 1_700_000_000_000 + seq, body: Uint8Array.of(0x81, 0xa1, 0x61, 0x74, seq) },
    key.secretKey,
  );
  const signature = envelope.signature.slice();
  if (options.badSignature) signature[10]! ^= 0x40;
  return { publicKey: key.publicKey, signingBytes: signingBytes(envelope), signature };
}

let node: JamNode;
let packageHash: Uint8Array;
let reportHash: Uint8Array;
let reportBlockHash: Uint8Array;
let headers: string[];

beforeAll(async () => {
  node = await openTestNode({ services: builtinServices([submitterKey.publicKey]) });
  node.start();
  const records = [
    record(deviceA, deviceA.deviceId, 5),
    record(deviceA, deviceA.deviceId, 6),
    record(deviceB, deviceB.deviceId, 1, { badSignature: true }),
    // Names device C, signed (validly) by B's key: refine refuses it, and so must a verifier.
    record(deviceB, deviceC.deviceId, 1),
  ];
  const item = {
    serviceId: TELEMETRY_SERVICE.id,
    codeHash: nativeCodeHash("telemetry"),
    payload: encodeEnvelopesItem(records),
    refineGasLimit: 100_000_000n,
    accumulateGasLimit: accumulateGasLimit({ devices: 3, envelopes: 4 }),
  };
  const pkg = await packageFor(node, [item]);
  packageHash = pkg.hash;
  await node.submitWorkPackage(0, pkg.bytes, []);
  const status = await waitForStatus(node, pkg.hash, ["accumulated"]);
  if (status.kind !== "accumulated") throw new Error(`package ${status.kind}: ${JSON.stringify(status)}`);
  reportHash = status.reportHash;
  reportBlockHash = status.reportedIn.headerHash;
  headers = [];
  for (let slot = status.reportedIn.slot + 1; slot <= status.accumulatedIn.slot; slot++) {
    const block = node.blockAt(slot);
    if (block !== null) headers.push(toHex(encode<Header>(Header.Codec, block.header, params.spec)));
  }
}, 60_000);

afterAll(async () => {
  await node?.stop();
});

async function proofOf(device: string, seq: number, owner = device): Promise<Proof> {
  const da = await readingProof({
    api: node,
    params,
    service: "telemetry",
    packageHash,
    device: fromHex(owner),
    seq: BigInt(seq),
    reportHash,
    reportBlockHash,
  });
  if (!da.ok) throw new Error(`${da.error.code}: ${da.error.detail}`);
  return { format: PROOF_FORMAT, chain: "tiny", claim: { kind: "reading", service: "telemetry", device, seq }, da: da.value, headers };
}

const copy = (p: Proof): any => JSON.parse(JSON.stringify(p));
const codeOf = (p: unknown, root?: Uint8Array) => {
  const r = verifyProof(p, root === undefined ? {} : { root });
  return r.ok ? "ok" : r.error.code;
};
const detailOf = (p: unknown) => {
  const r = verifyProof(p);
  return r.ok ? "ok" : r.error.detail;
};
/** The base64 bundle with octet `at` flipped. */
function flipBundle(bundle: string, at: number): string {
  const bytes = Buffer.from(bundle, "base64");
  bytes[at]! ^= 0x01;
  return bytes.toString("base64");
}

describe("reading proofs through the embedded node", () => {
  it("proves a device's envelope: its record in the bundle, the report and the block that guaranteed it, and the headers after", async () => {
    const proof = await proofOf(deviceA.deviceId, 5);
    expect(headers.length).toBeGreaterThan(0);
    const bundle = Buffer.from(proof.da!.bundle, "base64");
    expect(Buffer.compare(hash(bundle), packageHash)).toBe(0);
    const result = verifyProof(copy(proof));
    const anchor = decode<Header>(Header.Codec, fromHex(headers[headers.length - 1]!), params.spec);
    expect(result).toEqual({
      ok: true,
      anchor: { hash: toHex(headerHash(params, anchor)), slot: anchor.timeSlotIndex },
      claim: proof.claim,
      reading: { kind: "meter.reading", timeMs: "1700000000005", body: "81a1617405" },
    });
    // Anchored by the report block's hash, or any header's.
    expect(codeOf(proof, reportBlockHash)).toBe("ok");
    expect(codeOf(proof, headerHash(params, anchor))).toBe("ok");
    expect(codeOf(proof, hash(Uint8Array.of(1)))).toBe("JG_ERR_PROOF_ANCHOR");
    expect(codeOf(await proofOf(deviceA.deviceId, 6))).toBe("ok");
  });

  it("fails JG_ERR_PROOF_DA when an envelope byte or another bundle byte is flipped", async () => {
    const proof = await proofOf(deviceA.deviceId, 5);
    const { offset, length } = proof.da!.envelope;
    for (const at of [offset + 40, offset + length - 1, 0, Buffer.from(proof.da!.bundle, "base64").length - 1]) {
      const p = copy(proof);
      p.da.bundle = flipBundle(p.da.bundle, at);
      expect(codeOf(p), `octet ${at}`).toBe("JG_ERR_PROOF_DA");
      expect(detailOf(p)).toMatch(/hashes to/);
    }
  });

  it("fails JG_ERR_PROOF_DA for a record whose signature does not verify or whose key is not its device's, and where no record starts", async () => {
    const badSignature = await proofOf(deviceB.deviceId, 1);
    expect(codeOf(badSignature)).toBe("JG_ERR_PROOF_DA");
    expect(detailOf(badSignature)).toMatch(/signature does not verify/);
    const wrongKey = await proofOf(deviceC.deviceId, 1);
    expect(codeOf(wrongKey)).toBe("JG_ERR_PROOF_DA");
    expect(detailOf(wrongKey)).toMatch(/key is not device/);
    const good = await proofOf(deviceA.deviceId, 5);
    const inside = copy(good);
    inside.da.envelope.offset += 1;
    expect(codeOf(inside)).toBe("JG_ERR_PROOF_DA");
    expect(detailOf(inside)).toMatch(/no telemetry envelope record starts/);
    const longer = copy(good);
    longer.da.envelope.length += 1;
    expect(codeOf(longer)).toBe("JG_ERR_PROOF_DA");
    const past = copy(good);
    past.da.envelope.offset = Buffer.from(good.da!.bundle, "base64").length;
    expect(codeOf(past)).toBe("JG_ERR_PROOF_DA");
    // Read as another service's items: the package has none.
    const energy = copy(good);
    energy.claim.service = "energy-trading";
    expect(codeOf(energy)).toBe("JG_ERR_PROOF_DA");
  });

  it("fails JG_ERR_PROOF_DA when the report or its block is not the package's, and JG_ERR_PROOF_CHAIN when the headers do not follow the block", async () => {
    const good = await proofOf(deviceA.deviceId, 5);
    // The report's erasure root (octets 36..67: after the package hash and the bundle length) flipped.
    const report = copy(good);
    report.da.report = report.da.report.slice(0, 80) + (report.da.report[80] === "0" ? "1" : "0") + report.da.report.slice(81);
    expect(codeOf(report)).toBe("JG_ERR_PROOF_DA");
    expect(detailOf(report)).toMatch(/erasure root/);
    // The report names another package.
    const otherPackage = copy(good);
    otherPackage.da.report = (otherPackage.da.report[0] === "0" ? "1" : "0") + otherPackage.da.report.slice(1);
    expect(codeOf(otherPackage)).toBe("JG_ERR_PROOF_DA");
    expect(detailOf(otherPackage)).toMatch(/the report is of package/);
    // Another block: the one after the report block carries no guarantee of it.
    const next = copy(good);
    const after = await node.block(headerHash(params, decode<Header>(Header.Codec, fromHex(headers[0]!), params.spec)));
    next.da.reportBlock = toHex(after!);
    expect(codeOf(next)).toBe("JG_ERR_PROOF_DA");
    expect(detailOf(next)).toMatch(/do not carry the report/);
    // The report block's header no longer commits to its extrinsic.
    const block = decode<Block>(Block.Codec, fromHex(good.da!.reportBlock), params.spec);
    const rehashed = Block.create({ header: Header.create({ ...block.header, extrinsicHash: h32(hash(Uint8Array.of(7))) }), extrinsic: block.extrinsic });
    const uncommitted = copy(good);
    uncommitted.da.reportBlock = toHex(encode<Block>(Block.Codec, rehashed, params.spec));
    expect(codeOf(uncommitted)).toBe("JG_ERR_PROOF_DA");
    expect(detailOf(uncommitted)).toMatch(/extrinsic hash/);
    // headers[0] must be the report block's child.
    const child = decode<Header>(Header.Codec, fromHex(headers[0]!), params.spec);
    const unlinked = copy(good);
    unlinked.headers = [toHex(encode<Header>(Header.Codec, Header.create({ ...child, parentHeaderHash: h32(hash(Uint8Array.of(8))) }), params.spec))];
    expect(codeOf(unlinked)).toBe("JG_ERR_PROOF_CHAIN");
    const first = copy(good);
    first.headers = [headers[0]];
    expect(codeOf(first)).toBe("ok");
    const garbled = copy(good);
    garbled.da.bundle = "not base64!";
    expect(codeOf(garbled)).toBe("JG_ERR_PROOF_FORMAT");
  });

  it("fails JG_ERR_PROOF_CLAIM when the claim names another seq or device than the envelope", async () => {
    const good = await proofOf(deviceA.deviceId, 5);
    const seq = copy(good);
    seq.claim.seq = 6;
    expect(codeOf(seq)).toBe("JG_ERR_PROOF_CLAIM");
    const device = copy(good);
    device.claim.device = deviceB.deviceId;
    expect(codeOf(device)).toBe("JG_ERR_PROOF_CLAIM");
  });

  it("never throws on a reading proof with its DA part garbled: any place in the bundle, any bytes as report or block; only true records verify", async () => {
    const good = await proofOf(deviceA.deviceId, 5);
    const bundleBytes = Buffer.from(good.da!.bundle, "base64").length;
    const recordOffsets = new Set([good.da!.envelope.offset, (await proofOf(deviceA.deviceId, 6)).da!.envelope.offset]);
    const codes = ["JG_ERR_PROOF_FORMAT", "JG_ERR_PROOF_DA", "JG_ERR_PROOF_CHAIN", "JG_ERR_PROOF_CLAIM"];
    fc.assert(
      fc.property(
        fc.nat({ max: bundleBytes + 8 }),
        fc.integer({ min: 1, max: 300 }),
        fc.option(fc.uint8Array({ maxLength: 600 })),
        fc.option(fc.uint8Array({ maxLength: 600 })),
        (offset, length, report, block) => {
          const p = copy(good);
          p.da.envelope = { offset, length };
          if (report !== null) p.da.report = toHex(report);
          if (block !== null) p.da.reportBlock = toHex(block);
          const r = verifyProof(p);
          if (r.ok) return recordOffsets.has(offset) && report === null && block === null;
          return codes.includes(r.error.code);
        },
      ),
      { numRuns: 300 },
    );
  });

  it("answers coded errors for what the node cannot prove", async () => {
    const ask = (over: Partial<Parameters<typeof readingProof>[0]>) =>
      readingProof({ api: node, params, service: "telemetry", packageHash, device: fromHex(deviceA.deviceId), seq: 5n, reportHash, reportBlockHash, ...over });
    expect(await ask({ seq: 7n })).toMatchObject({ ok: false, error: { code: "JG_ERR_NOT_FOUND" } });
    expect(await ask({ service: "energy-trading" })).toMatchObject({ ok: false, error: { code: "JG_ERR_NOT_FOUND" } });
    expect(await ask({ packageHash: hash(Uint8Array.of(1)) })).toMatchObject({ ok: false, error: { code: "JG_ERR_PROOF_UNAVAILABLE" } });
    expect(await ask({ reportHash: hash(Uint8Array.of(2)) })).toMatchObject({ ok: false, error: { code: "JG_ERR_PROOF_UNAVAILABLE" } });
    expect(await ask({ reportBlockHash: hash(Uint8Array.of(3)) })).toMatchObject({ ok: false, error: { code: "JG_ERR_PROOF_UNAVAILABLE" } });
    const afterReport = headerHash(params, decode<Header>(Header.Codec, fromHex(headers[0]!), params.spec));
    expect(await ask({ reportBlockHash: afterReport })).toMatchObject({ ok: false, error: { code: "JG_ERR_PROOF_DA" } });
  });
});
