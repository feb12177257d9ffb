/** The cluster's gateways splitting the node's cores, through a real redis-server. */
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RedisServer, startRedis } from "../testing/redis.ts";
import { ClusterMembers, coresFor, type Place } from "./members.ts";

describe("coresFor", () => {
  it("splits the cores by place: c mod n = i; more gateways than cores share one each; alone or unknown, every core", () => {
    expect(coresFor(null, 2)).toBeNull();
    expect(coresFor({ index: 0, count: 1 }, 2)).toBeNull();
    expect(coresFor({ index: 0, count: 2 }, 2)).toEqual([0]);
    expect(coresFor({ index: 1, count: 2 }, 2)).toEqual([1]);
    expect(coresFor({ index: 1, count: 3 }, 8)).toEqual([1, 4, 7]);
    expect(coresFor({ index: 2, count: 3 }, 8)).toEqual([2, 5]);
    expect(coresFor({ index: 4, count: 5 }, 2)).toEqual([0]);
    expect(coresFor({ index: 4, count: 5 }, 2, null)).toEqual([0]);
    // Every core goes to exactly one gateway when there are no more gateways than cores.
    for (let count = 1; count <= 8; count++) {
      const taken = Array.from({ length: count }, (_, index) => coresFor({ index, count }, 8) ?? [0, 1, 2, 3, 4, 5, 6, 7]).flat();
      expect(taken.sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    }
  });

  it("gives a core shared by more gateways than cores to one of them a slot, in turns, each as often as the others", () => {
    for (const [count, coresCount] of [
      [6, 2],
      [5, 2],
      [7, 3],
      [3, 2],
    ] as const) {
      const turns = Array.from({ length: count }, () => 0);
      for (let slot = 0; slot < 420; slot++) {
        // Each core has exactly one gateway packing for it in every slot.
        const packing = Array.from({ length: count }, (_, index) => coresFor({ index, count }, coresCount, slot)!);
        const byCore = Array.from({ length: coresCount }, (_, core) => packing.filter((cores) => cores.includes(core)).length);
        expect(byCore).toEqual(Array.from({ length: coresCount }, () => 1));
        packing.forEach((cores, index) => {
          turns[index]! += cores.length;
        });
      }
      // A gateway sharing its core with s - 1 others packs in 1 slot of s.
      turns.forEach((taken, index) => {
        const sharing = Math.ceil((count - (index % coresCount)) / coresCount);
        expect(taken).toBe(420 / sharing);
      });
    }
    // Gateways 0, 2 and 4 of six on 2 cores take core 0 in slots ≡ 0, 1, 2 (mod 3).
    expect([0, 2, 4].map((index) => coresFor({ index, count: 6 }, 2, 31))).toEqual([[], [0], []]);
  });
});

/** Long beside the 100 ms heartbeat, so a busy machine does not drop a live member. */
const EXPIRY_MS = 1_500;

describe("ClusterMembers on redis-server", () => {
  let redis: RedisServer;
  const connections: Redis[] = [];
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    for (const c of connections) c.disconnect();
    await redis.stop();
  });

  function member(id: string, places: Place[]): ClusterMembers {
    const db = new Redis(redis.url, { maxRetriesPerRequest: null });
    connections.push(db);
    return new ClusterMembers(db, "test:", id, (place) => places.push(place), { heartbeatMs: 100, expiryMs: EXPIRY_MS });
  }

  async function until(what: string, ok: () => boolean): Promise<void> {
    const deadline = Date.now() + 20_000;
    while (!ok()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  it("places each live gateway by id, takes a stopped one out at once and a silent one after its expiry", async () => {
    const pa: Place[] = [];
    const pb: Place[] = [];
    const pc: Place[] = [];
    const b = member("bb", pb);
    const a = member("aa", pa);
    expect(a.place).toBeNull();
    a.start();
    await until("a alone", () => a.place?.count === 1);
    b.start();
    await until("a and b", () => a.place?.count === 2 && b.place?.count === 2);
    expect([a.place, b.place]).toEqual([
      { index: 0, count: 2 },
      { index: 1, count: 2 },
    ]);
    const c = member("ab", pc);
    c.start();
    await until("three", () => a.place?.count === 3 && b.place?.count === 3 && c.place?.count === 3);
    expect([a.place, c.place, b.place]).toEqual([
      { index: 0, count: 3 },
      { index: 1, count: 3 },
      { index: 2, count: 3 },
    ]);
    // A gateway that stops leaves at once: the others are two again at their next heartbeat.
    await c.stop();
    await until("c left", () => a.place?.count === 2 && b.place?.count === 2);
    expect(b.place).toEqual({ index: 1, count: 2 });
    // One that goes silent (a gateway killed: a heartbeat, then nothing) is dropped once its last
    // heartbeat is older than the expiry.
    const silent = member("cc", []);
    await silent.beat();
    const beatAt = Date.now();
    await until("the silent one seen", () => a.place?.count === 3);
    await until("the silent one dropped", () => a.place?.count === 2);
    expect(Date.now() - beatAt).toBeGreaterThanOrEqual(EXPIRY_MS - 100);
    expect(pa.map((p) => p.count)).toEqual([1, 2, 3, 2, 3, 2]);
    await b.stop();
    await a.stop();
  });
});
