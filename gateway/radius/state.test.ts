import { statSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { tempDir } from "../../node/testing/fixtures.ts";
import type { SessionState } from "./sessions.ts";
import { RadiusState, sessionKey } from "./state.ts";
import { TEST_CLIENT_ID, TEST_ROUTER_ID } from "./testing.ts";

function session(updatedAtMs: number, inputOctets = 0n): SessionState {
  return {
    clientId: TEST_CLIENT_ID,
    started: true,
    stopped: false,
    inputOctets,
    outputOctets: 2n ** 40n,
    seconds: 60,
    lastHash: new Uint8Array(32).fill(updatedAtMs & 0xff),
    updatedAtMs,
  };
}

const key = (n: number) => sessionKey(TEST_ROUTER_ID, new Uint8Array(16).fill(n));

describe("RadiusState", () => {
  it("keeps each router's next seq and the sessions across a restart, in a private dir", async () => {
    const dir = tempDir();
    const state = new RadiusState(dir);
    expect(await state.takeSeq(TEST_ROUTER_ID)).toBe(0);
    expect(await state.takeSeq(TEST_ROUTER_ID)).toBe(1);
    expect(await state.takeSeq("1".repeat(32))).toBe(0);
    await state.putSession(key(1), session(5, 2n ** 33n));
    await state.close();
    expect(statSync(join(dir, "radius", "state")).mode & 0o777).toBe(0o700);
    expect(statSync(join(dir, "radius", "state", "data.mdb")).mode & 0o777).toBe(0o600);
    const again = new RadiusState(dir);
    expect(await again.takeSeq(TEST_ROUTER_ID)).toBe(2);
    expect(again.session(key(1))).toEqual(session(5, 2n ** 33n));
    expect(again.session(key(2))).toBeNull();
    await again.close();
  });

  it("follows at most sessionsMax sessions, forgetting the one idle longest, on disk too", async () => {
    const dir = tempDir();
    const state = new RadiusState(dir, { sessionsMax: 3 });
    for (const n of [1, 2, 3]) await state.putSession(key(n), session(n));
    await state.putSession(key(1), session(4)); // 1 is now the most recent; 2 the idle longest
    await state.putSession(key(5), session(5));
    expect(state.sessionCount).toBe(3);
    expect(state.session(key(2))).toBeNull();
    expect(state.session(key(1))).not.toBeNull();
    await state.close();
    const again = new RadiusState(dir, { sessionsMax: 3 });
    expect([1, 2, 3, 5].map((n) => again.session(key(n)) !== null)).toEqual([true, false, true, true]);
    await again.close();
    // Reopened with a smaller bound: the idle longest go first.
    const smaller = new RadiusState(dir, { sessionsMax: 1 });
    expect([1, 3, 5].map((n) => smaller.session(key(n)) !== null)).toEqual([false, false, true]);
    await smaller.close();
  });
});
