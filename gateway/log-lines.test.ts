import { describe, expect, it } from "vitest";
import { LineLimiter, lineLimits, REFUSAL_LINE_INTERVAL_MS } from "./log-lines.ts";

describe("LineLimiter: one refusal line per subject and code an interval", () => {
  it("writes the first refusal, leaves out the rest of the interval, and says how many on the next line", () => {
    const lines = new LineLimiter();
    const t0 = 1_000_000;
    expect(lines.take("dev-a", "JG_ERR_ENVELOPE_MALFORMED", t0)).toBe(0);
    for (let i = 1; i <= 999; i++) expect(lines.take("dev-a", "JG_ERR_ENVELOPE_MALFORMED", t0 + i * 50)).toBeNull();
    expect(lines.take("dev-a", "JG_ERR_ENVELOPE_MALFORMED", t0 + REFUSAL_LINE_INTERVAL_MS - 1)).toBeNull();
    // The interval is counted from the last line written: 1,000 left out.
    expect(lines.take("dev-a", "JG_ERR_ENVELOPE_MALFORMED", t0 + REFUSAL_LINE_INTERVAL_MS)).toBe(1_000);
    expect(lines.take("dev-a", "JG_ERR_ENVELOPE_MALFORMED", t0 + REFUSAL_LINE_INTERVAL_MS + 1)).toBeNull();
    // A quiet pair starts again from nothing.
    expect(lines.take("dev-a", "JG_ERR_ENVELOPE_MALFORMED", t0 + 3 * REFUSAL_LINE_INTERVAL_MS)).toBe(1);
    expect(lines.take("dev-a", "JG_ERR_ENVELOPE_MALFORMED", t0 + 5 * REFUSAL_LINE_INTERVAL_MS)).toBe(0);
  });

  it("keeps devices and codes apart", () => {
    const lines = new LineLimiter();
    expect(lines.take("dev-a", "JG_ERR_MQTT_AUTH", 0)).toBe(0);
    expect(lines.take("dev-a", "JG_ERR_MQTT_RATE", 1)).toBe(0);
    expect(lines.take("dev-b", "JG_ERR_MQTT_AUTH", 2)).toBe(0);
    expect(lines.take("dev-a", "JG_ERR_MQTT_AUTH", 3)).toBeNull();
    // The subject and code are not run together: "a" + "bc" is not "ab" + "c".
    expect(lines.take("a", "bc", 4)).toBe(0);
    expect(lines.take("ab", "c", 5)).toBe(0);
  });

  it("remembers at most keysMax pairs, forgetting the one written longest ago", () => {
    const lines = new LineLimiter({ intervalMs: 60_000, keysMax: 3 });
    for (const [i, device] of ["a", "b", "c"].entries()) expect(lines.take(device, "X", i)).toBe(0);
    expect(lines.take("a", "X", 10)).toBeNull();
    expect(lines.take("d", "X", 11)).toBe(0);
    expect(lines.size).toBe(3);
    // "a" was written longest ago and is forgotten: its next refusal is written at once (its count lost), and "b" is forgotten for it.
    expect(lines.take("a", "X", 12)).toBe(0);
    expect(lines.take("b", "X", 13)).toBe(0);
    expect(lines.take("d", "X", 14)).toBeNull();
    expect(lines.size).toBe(3);
  });

  it("holds no more than REFUSAL_LINE_KEYS_MAX pairs under a flood of distinct devices", () => {
    const lines = new LineLimiter();
    for (let i = 0; i < lineLimits.keysMax + 5_000; i++) lines.take(`device-${i}`, "JG_ERR_MQTT_AUTH", i);
    expect(lines.size).toBe(lineLimits.keysMax);
  });
});
