/** A vector file of a type its family does not know fails its case instead of passing unchecked. */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { tempDir } from "../testing/fixtures.ts";
import { codecFamily } from "./codec.ts";
import { UnknownVectorType } from "./discover.ts";
import { tracesFamily } from "./traces.ts";

describe("vectors of an unknown type", () => {
  it("fail: a codec file whose type has no codec, and a trace file with no state", async () => {
    const root = tempDir();
    mkdirSync(join(root, "codec", "tiny"), { recursive: true });
    writeFileSync(join(root, "codec", "tiny", "mystery_1.bin"), Uint8Array.of(1, 2, 3));
    writeFileSync(join(root, "codec", "tiny", "mystery_1.json"), "{}");
    mkdirSync(join(root, "traces", "fresh"), { recursive: true });
    writeFileSync(join(root, "traces", "fresh", "00000001.json"), JSON.stringify({ header: {} }));

    const [codecCase] = codecFamily.discover(root);
    expect(codecCase?.name).toBe("codec/tiny/mystery_1");
    await expect(async () => codecCase!.run()).rejects.toThrow(UnknownVectorType);
    await expect(async () => codecCase!.run()).rejects.toThrow(/codec\/tiny\/mystery_1: no codec registered for type "mystery"/);

    const [traceCase] = tracesFamily.discover(root);
    expect(traceCase?.name).toBe("traces/fresh/00000001");
    await expect(async () => traceCase!.run()).rejects.toThrow(/traces\/fresh\/00000001: no \{ state_root, keyvals \} state/);
  });
});
