/**
 * The test harness wires registration to the ledger index as `jamgate start` does (gateway/stack.ts):
 * a device registered through it is in the index with the slot that accumulated its registration,
 * and the registration package is among the index's packages.
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import { type Harness, startHarness } from "./harness.ts";

let harness: Harness;

beforeAll(async () => {
  harness = await startHarness();
}, 60_000);

afterAll(async () => {
  await harness?.stop();
});

it("records a registered device and its registration package in the ledger index", async () => {
  const key = await harness.register();
  const deadline = Date.now() + 30_000;
  let device = await harness.gateway.ledger.device(key.deviceId);
  // The index is told in the background, after the registration is read back from the service's state.
  while (device === null && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 20));
    device = await harness.gateway.ledger.device(key.deviceId);
  }
  expect(device).toMatchObject({ id: key.deviceId, kind: "meter", service: "telemetry" });
  expect(device!.registeredSlot).not.toBeNull();
  const packages = await harness.gateway.ledger.packages({ limit: 10 });
  expect(packages.items.map((p) => p.kind)).toContain("registrations");
}, 60_000);
