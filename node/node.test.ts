import { afterEach, describe, expect, it } from "vitest";
import { COUNTER_KEY, counterPayload, readU64 } from "../services/counter/types.ts";
import { bytesEqual } from "./codec/jam.ts";
import type { JamNode } from "./node.ts";
import { COUNTER_SERVICE_ID, counterItem, openTestNode, packageFor, waitForStatus } from "./testing/fixtures.ts";

const nodes: JamNode[] = [];
afterEach(async () => {
  await Promise.all(nodes.splice(0).map((n) => n.stop()));
});

async function started(): Promise<JamNode> {
  const node = await openTestNode();
  nodes.push(node);
  node.start();
  return node;
}

describe("embedded node", () => {
  it("accumulates a package and changes the state root", async () => {
    const node = await started();
    const before = await node.bestBlock();
    const rootBefore = await node.stateRoot(before.headerHash);
    const pkg = await packageFor(node, [counterItem(counterPayload.increment(5n)), counterItem(counterPayload.increment(7n))]);
    await node.submitWorkPackage(0, pkg.bytes, []);
    const status = await waitForStatus(node, pkg.hash, ["accumulated"]);
    expect(status.kind).toBe("accumulated");
    const best = await node.bestBlock();
    expect(readU64(await node.serviceValue(best.headerHash, COUNTER_SERVICE_ID, COUNTER_KEY))).toBe(12n);
    expect(bytesEqual(await node.stateRoot(best.headerHash), rootBefore)).toBe(false);
  });
});
