/** Every code the device side uses is in the registry (devices/protocol/errors.ts, docs/errors.md): the listed codes and every code written in devices/ sources. */
import { readdirSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { errorRegistry } from "./protocol/errors.ts";
import { DEVICE_CODES, NON_FINAL_CODES } from "./errors.ts";

describe("device error codes", () => {
  it("are all in the registry", () => {
    for (const code of [...DEVICE_CODES, ...NON_FINAL_CODES]) expect(Object.keys(errorRegistry), code).toContain(code);
  });

  it("cover every JG_ERR_ code written in devices/ sources", () => {
    const dir = new URL(".", import.meta.url).pathname;
    const used = new Set<string>();
    for (const file of readdirSync(dir).filter((f) => f.endsWith(".ts") && !f.endsWith(".test.ts"))) {
      for (const m of readFileSync(dir + file, "utf8").matchAll(/JG_ERR_[A-Z0-9_]*[A-Z0-9]/g)) used.add(m[0]);
    }
    expect(used.size).toBeGreaterThan(5);
    for (const code of used) expect(Object.keys(errorRegistry), code).toContain(code);
  });
});
