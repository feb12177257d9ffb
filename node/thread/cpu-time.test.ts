import { describe, expect, it } from "vitest";
import { threadCpuNs } from "./cpu-time.ts";
import { currentThreadId } from "./priority.ts";

describe("threadCpuNs", () => {
  it("reads a thread's CPU time, which grows while it works and not while it sleeps", async () => {
    const tid = currentThreadId();
    expect(tid).not.toBeNull();
    const before = threadCpuNs(tid!);
    expect(before).not.toBeNull();
    // Work until the thread's own count says 20 ms were spent: it must move.
    let now = before!;
    while (now - before! < 20_000_000n) now = threadCpuNs(tid!)!;
    const slept = threadCpuNs(tid!)!;
    await new Promise((r) => setTimeout(r, 200));
    // A 200 ms sleep costs far less than 200 ms of CPU (the timer's and the read's own work only).
    expect(threadCpuNs(tid!)! - slept).toBeLessThan(100_000_000n);
  });

  it("says null for a thread that is not this process's", () => {
    expect(threadCpuNs(2 ** 30)).toBeNull();
  });
});
