import { readdirSync, readFileSync } from "node:fs";
import { StateTransition } from "@typeberry/lib/state-vectors";
import { Block } from "@typeberry/lib/block";
import { describe, expect, it } from "vitest";
import { resolveVectorsDir } from "../vectors/discover.ts";
import { decode, toHex } from "../codec/jam.ts";
import { tinyParams } from "./params.ts";
import { extrinsicHash, headerHash, sealBlock, checkSeal, makeExtrinsic } from "./block.ts";
import { devValidatorKeys } from "./validators.ts";

describe("blocks", () => {
  it("computes the GP extrinsic hash and header hash of real blocks (the storage_light trace)", () => {
    // The codec vectors' headers carry placeholder hashes; trace blocks were made by real nodes.
    const dir = `${resolveVectorsDir()}/traces/storage_light`;
    const files = readdirSync(dir).filter((f) => /^\d+\.bin$/.test(f));
    expect(files.length).toBeGreaterThan(0);
    let previousHash: string | null = null;
    for (const file of files.sort()) {
      const trace = decode(StateTransition.Codec, new Uint8Array(readFileSync(`${dir}/${file}`)), tinyParams.spec) as unknown as {
        block: { materialize(): Block };
      };
      const block = trace.block.materialize();
      expect(toHex(extrinsicHash(tinyParams, block.extrinsic)), file).toBe(toHex(block.header.extrinsicHash.raw));
      if (previousHash !== null) expect(toHex(block.header.parentHeaderHash.raw), file).toBe(previousHash);
      previousHash = toHex(headerHash(tinyParams, block.header));
    }
  });

  it("seals with the author's Ed25519 key and rejects any other key or a changed header", () => {
    const [author, other] = devValidatorKeys(2);
    const block = sealBlock(
      tinyParams,
      { parentHash: new Uint8Array(32), priorStateRoot: new Uint8Array(32).fill(1), slot: 7, authorIndex: 1 },
      makeExtrinsic([], []),
      author!,
    );
    expect(checkSeal(tinyParams, block.header, author!.publicKey)).toBe(true);
    expect(checkSeal(tinyParams, block.header, other!.publicKey)).toBe(false);
    const moved = Block.create({ ...block, header: { ...block.header, timeSlotIndex: 8 } as never });
    expect(checkSeal(tinyParams, moved.header, author!.publicKey)).toBe(false);
    expect(headerHash(tinyParams, block.header)).toHaveLength(32);
  });
});
