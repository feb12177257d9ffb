import { describe, expect, it } from "vitest";
import { ascii, concatBytes, toHex } from "./bytes.ts";
import { d, encode } from "./codec.ts";
import { Store, type StoreHost } from "./store.ts";

/** A host over a map, counting its calls per key. */
function countingHost(initial: Record<string, Uint8Array> = {}) {
  const values = new Map<string, Uint8Array>(Object.entries(initial).map(([k, v]) => [toHex(ascii(k)), v]));
  const reads = new Map<string, number>();
  const writes: { key: string; value: Uint8Array | null }[] = [];
  const host: StoreHost = {
    read(key) {
      const k = Buffer.from(key).toString("latin1");
      reads.set(k, (reads.get(k) ?? 0) + 1);
      return values.get(toHex(key))?.slice() ?? null;
    },
    write(key, value) {
      writes.push({ key: Buffer.from(key).toString("latin1"), value });
      if (value === null) values.delete(toHex(key));
      else values.set(toHex(key), value.slice());
    },
  };
  return { host, values, reads, writes };
}

const counter = d.versioned(1, d.u64, "counter");
const itemKey = (n: number) => concatBytes([ascii("item/"), Uint8Array.of(n)]);
const item = d.versioned(1, d.object({ n: d.u8, label: d.text("u8", 16) }), "item");

describe("Store", () => {
  it("a cell reads its key once, gives the initial value when absent, and writes once at flush however often it is set", () => {
    const { host, reads, writes } = countingHost();
    const store = new Store(host, "test");
    const cell = store.cell(ascii("count"), counter, 0n);
    expect(cell.get()).toBe(0n);
    for (let i = 1n; i <= 5n; i++) cell.set(cell.get() + i);
    expect(cell.get()).toBe(15n);
    expect(reads.get("count")).toBe(1);
    expect(writes).toEqual([]);
    store.flush();
    expect(writes).toEqual([{ key: "count", value: encode(counter, 15n) }]);
    store.flush(); // nothing changed since
    expect(writes).toHaveLength(1);
  });

  it("a cell without an initial value is null when absent; a stored value is decoded", () => {
    const { host } = countingHost({ count: encode(counter, 7n) });
    const store = new Store(host, "test");
    expect(store.cell(ascii("count"), counter).get()).toBe(7n);
    expect(store.cell(ascii("other"), counter).get()).toBeNull();
  });

  it("a map reads each key at most once, writes each changed key once, in ascending key order, and leaves unchanged keys alone", () => {
    const { host, reads, writes } = countingHost({
      "item/\u0002": encode(item, { n: 2, label: "two" }),
      "item/\u0003": encode(item, { n: 3, label: "three" }),
    });
    const store = new Store(host, "test");
    const items = store.map(itemKey, item);
    expect(items.get(3)).toEqual({ n: 3, label: "three" });
    expect(items.get(3)).toEqual({ n: 3, label: "three" });
    expect(items.has(3)).toBe(true);
    expect(items.has(9)).toBe(false);
    items.set(9, { n: 9, label: "nine" });
    items.set(2, { n: 2, label: "deux" });
    items.set(9, { n: 9, label: "neuf" });
    expect(items.get(9)).toEqual({ n: 9, label: "neuf" });
    expect([...reads.values()].every((n) => n === 1)).toBe(true);
    expect(reads.size).toBe(2); // 3 and 9 read; 2 was set before it was read, so it never was
    store.flush();
    expect(writes.map((w) => w.key)).toEqual(["item/\u0002", "item/\u0009"]);
    expect(Buffer.compare(writes[1]!.value!, encode(item, { n: 9, label: "neuf" }))).toBe(0);
  });

  it("deletes a value set to null, and writes nothing for a key that was absent and stays absent", () => {
    const { host, values, writes } = countingHost({ "item/\u0001": encode(item, { n: 1, label: "one" }) });
    const store = new Store(host, "test");
    const items = store.map(itemKey, item);
    expect(items.get(1)).not.toBeNull();
    items.set(1, null);
    expect(items.get(1)).toBeNull();
    expect(items.get(4)).toBeNull();
    items.set(4, { n: 4, label: "four" });
    items.set(4, null); // added and removed within the call: never stored
    items.set(5, null); // deleted without being read: the store cannot know it is absent, so it deletes
    store.flush();
    expect(writes).toEqual([
      { key: "item/\u0001", value: null },
      { key: "item/\u0005", value: null },
    ]);
    expect(values.size).toBe(0);
  });

  it("stored bytes that do not decode are a bug: get throws, naming the service, the value and the key", () => {
    const { host } = countingHost({ count: Uint8Array.of(2, 0, 0, 0, 0, 0, 0, 0, 0) });
    const store = new Store(host, "energy-trading");
    expect(() => store.cell(ascii("count"), counter, 0n).get()).toThrow(
      /energy-trading: stored counter at 636f756e74 does not decode: counter format 2, not 1/,
    );
  });

  it("one key in two regions of a store is a bug (it would be written twice)", () => {
    const { host } = countingHost();
    const store = new Store(host, "test");
    store.cell(ascii("item/\u0001"), counter).get();
    const items = store.map(itemKey, item);
    expect(() => items.get(1)).toThrow(/two regions/);
  });
});
