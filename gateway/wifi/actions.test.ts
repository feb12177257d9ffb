import { afterEach, describe, expect, it, vi } from "vitest";
import type { BlockDescriptor } from "../../node/api.ts";
import { actionKey, REJECTION_CODES, WIFI_SERVICE_NAME } from "../../services/wifi-billing/types.ts";
import type { IngestService } from "../ingest-service.ts";
import type { ItemEnd, ItemSubmission } from "../registration.ts";
import { fakeHex } from "../testing/fake-ledger.ts";
import { ACTION_BATCH_MS, WifiActions } from "./actions.ts";

const service = { name: WIFI_SERVICE_NAME, serviceId: 4 } as IngestService;
const account = fakeHex("account", 16);
const router = fakeHex("router", 16);
const block: BlockDescriptor = { headerHash: new Uint8Array(32).fill(7), slot: 42 };

/** An action's stored verdict as the service writes it under actionKey (storage.ts StoredAction): version, id, type, target, value, slot, code. */
function storedAction(id: string, type: number, target: string, value: bigint, slot: number, code: number): Uint8Array {
  const b = Buffer.alloc(1 + 16 + 1 + 16 + 8 + 4 + 1);
  let at = b.writeUInt8(1, 0);
  at += Buffer.from(id, "hex").copy(b, at);
  at = b.writeUInt8(type, at);
  at += Buffer.from(target, "hex").copy(b, at);
  at = b.writeBigUInt64LE(value, at);
  at = b.writeUInt32LE(slot, at);
  b.writeUInt8(code, at);
  return new Uint8Array(b);
}

interface Harness {
  readonly actions: WifiActions;
  readonly submitted: ItemSubmission[];
  readonly ends: ((end: ItemEnd) => Promise<{ applied: number; refused: number }>)[];
  readonly state: Map<string, Uint8Array>;
}

function harness(): Harness {
  const submitted: ItemSubmission[] = [];
  const ends: Harness["ends"] = [];
  const state = new Map<string, Uint8Array>();
  let n = 0;
  const actions = new WifiActions({
    api: {
      bestBlock: async () => block,
      serviceValue: async (_at, id, key) => (id === service.serviceId ? (state.get(Buffer.from(key).toString("hex")) ?? null) : null),
    },
    service,
    newId: () => fakeHex(`action ${n++}`, 16),
    async submitItem(item, onEnd) {
      submitted.push(item);
      ends.push(onEnd);
      return new Uint8Array(32).fill(submitted.length);
    },
  });
  return { actions, submitted, ends, state };
}

const verdict = (h: Harness, id: string, type: number, target: string, value: bigint, code: number) =>
  h.state.set(Buffer.from(actionKey(id)).toString("hex"), storedAction(id, type, target, value, block.slot, code));

afterEach(() => {
  vi.useRealTimers();
});

describe("operator actions", () => {
  it("batch within ACTION_BATCH_MS into one actions item, then take each one's verdict from the state of the block that accumulated it", async () => {
    vi.useFakeTimers();
    const h = harness();
    const topup = h.actions.submit({ type: "topup", account, amountMicros: 5_000_000n });
    const price = h.actions.submit({ type: "setPrice", router, priceMicrosPerGb: 700_000n });
    const gone = h.actions.submit({ type: "deregister", router });
    expect([topup.status, price.kind, gone.kind]).toEqual(["pending", "set-price", "deregister"]);
    expect(h.submitted).toEqual([]);
    await vi.advanceTimersByTimeAsync(ACTION_BATCH_MS);
    expect(h.submitted).toHaveLength(1);
    const item = h.submitted[0]!;
    expect(item.count).toBe(3);
    expect(item.kind).toBe("actions");
    // The item: kind 2, u32 count, then each action's id, type, target and value (payload.ts).
    expect(item.payload[0]).toBe(2);
    expect(Buffer.from(item.payload.subarray(5, 21)).toString("hex")).toBe(topup.action);
    expect(h.actions.pending).toBe(3);
    expect((await h.actions.view(topup.action))?.packageHash).toBe("01".repeat(32));

    verdict(h, topup.action, 0, account, 5_000_000n, 0);
    verdict(h, price.action, 1, router, 700_000n, REJECTION_CODES.JG_ERR_WIFI_ROUTER);
    // No verdict for the third: the service's accumulate applied nothing of it.
    const counts = await h.ends[0]!({ kind: "accumulated", block });
    expect(counts).toEqual({ applied: 1, refused: 2 });
    expect(await h.actions.view(topup.action)).toMatchObject({ status: "applied", slot: 42 });
    expect(await h.actions.view(price.action)).toMatchObject({ status: "refused", code: "JG_ERR_WIFI_ROUTER" });
    expect(await h.actions.view(gone.action)).toMatchObject({ status: "refused", code: "JG_ERR_SETTLEMENT_FAILED" });
    expect(h.actions.pending).toBe(0);
  });

  it("a failed package refuses its actions with the node's code; an action the gateway does not remember is read from state", async () => {
    vi.useFakeTimers();
    const h = harness();
    const a = h.actions.submit({ type: "topup", account, amountMicros: 1n });
    await vi.advanceTimersByTimeAsync(ACTION_BATCH_MS);
    await h.ends[0]!({ kind: "failed", code: "JG_ERR_REPORT_TIMEOUT", detail: "not available in time" });
    expect(await h.actions.view(a.action)).toMatchObject({ status: "refused", code: "JG_ERR_REPORT_TIMEOUT" });

    const other = harness();
    const remembered = fakeHex("an action of before a restart", 16);
    expect(await other.actions.view(remembered)).toBeNull();
    verdict(other, remembered, 2, router, 0n, REJECTION_CODES.JG_ERR_WIFI_REPLAY);
    expect(await other.actions.view(remembered)).toEqual({ action: remembered, kind: "deregister", status: "refused", code: "JG_ERR_WIFI_REPLAY", slot: 42 });
  });
});
