import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { errorRegistry } from "./errors.ts";

const docs = readFileSync(new URL("../../docs/errors.md", import.meta.url), "utf8");
const documented = new Map(
  [...docs.matchAll(/^\| `(JG_ERR_[A-Z0-9_]+)` \| (\d+) \| (-?\d+) \| ([A-Za-z0-9 ]+) \| (.+) \|$/gm)].map((m) => [
    m[1]!,
    { httpStatus: Number(m[2]), rpcCode: Number(m[3]), mqtt: m[4]!, message: m[5]! },
  ]),
);

describe("error registry and docs/errors.md", () => {
  it("document every code exactly as registered", () => {
    for (const [code, entry] of Object.entries(errorRegistry)) {
      expect(documented.get(code), `${code} in docs/errors.md`).toEqual(entry);
    }
  });

  it("document no code that is not registered", () => {
    expect([...documented.keys()].filter((code) => !(code in errorRegistry))).toEqual([]);
  });
});
