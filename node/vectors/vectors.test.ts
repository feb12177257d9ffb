/**
 * JAM test-vector runner (jam-test-vectors v0.7.2, GP v0.7.2).
 *
 * Vectors are discovered by file pattern under `$JAM_VECTORS_DIR` (default
 * `../shared/jam-vectors` relative to the repo root), so new files are picked up
 * without code changes. One vitest `it` per vector file; a summary table is
 * printed after the run. Every family must find at least one file: a missing or
 * empty vectors directory fails loudly instead of passing with zero tests.
 *
 * Families:
 *  - `codec`  (codec.ts):  GP Appendix C (serialization), via typeberry's codec.
 *  - `traces` (traces.ts): GP Appendix D (state merklization) on trace states.
 *  - `erasure` (erasure.ts): GP Appendix H (erasure coding) through node/availability/erasure.ts.
 * A file of a type its family does not know fails (`UnknownVectorType`). `shuffle/` is not run.
 */
import { afterAll, describe, expect, it } from "vitest";
import { codecFamily } from "./codec.ts";
import { noVectorsMessage, resolveVectorsDir, type VectorFamily, VectorSummary } from "./discover.ts";
import { erasureFamily } from "./erasure.ts";
import { tracesFamily } from "./traces.ts";

/** Registered families: adding one (e.g. erasure, shuffle) is one module plus one entry here. */
const FAMILIES: readonly VectorFamily[] = [codecFamily, tracesFamily, erasureFamily];

const root = resolveVectorsDir();
const summary = new VectorSummary();

describe("JAM test vectors", () => {
  for (const family of FAMILIES) {
    const cases = family.discover(root);
    for (const c of cases) summary.discovered(family.name, c.subfamily);

    describe(family.name, () => {
      it(`discovers ${family.name} vectors`, () => {
        expect(cases.length, noVectorsMessage(family.name, root)).toBeGreaterThan(0);
      });

      for (const c of cases) {
        it(c.name, async () => {
          summary.started(family.name, c.subfamily);
          summary.finished(family.name, c.subfamily, await c.run());
        });
      }
    });
  }

  afterAll(() => {
    console.log(summary.format(root));
  });
});
