/**
 * The cluster's gateways, as Redis knows them, and the cores each packs for.
 *
 * A core takes one report per block (GP 11.4: one guarantee per core per block), so a package sent
 * to a core that already holds one waits a block behind it. One gateway knows its own packages
 * (settlement/cores.ts packs for the cores holding none of them), but not another gateway's: two
 * gateways on the tiny chain's 2 cores each packed one package per core per block, the cores'
 * queues grew, and receipts came ~2.4 slots later than from one gateway even at 200 envelopes/s
 * (p50 4.15 against 1.95 slots; bench/gateway.ts --gateways 2). So the live gateways split the
 * cores between them: each heartbeats its id into one sorted set (`<prefix>gateways`, scored with
 * Redis's clock, so the hosts' clocks do not matter), reads the live members back, and takes its
 * place among them, sorted by id (the gateway key's public key: stable across restarts, so a
 * restart keeps the split). With n gateways and C cores, n ≤ C: gateway i packs for the cores c
 * with c mod n = i; n > C: for core i mod C, which it shares with the others of that residue, in
 * turns of one slot each: gateway i packs for blocks whose slot mod s = ⌊i / C⌋, s the number
 * sharing the core. More gateways than cores is more packages than a block takes: without turns
 * each packed one a slot, and the packages queued at the node up to every gateway's in-flight
 * bound (measured: 6 gateways on the tiny chain's 2 cores held 22–26 packages in flight of their
 * 24, receipts p50 21 slots; BENCHMARKS.md §13). In turns, a gateway's envelopes wait at most
 * s − 1 slots for its turn, and its package is the only one for the core's block. The gateways'
 * slots come from the node's blocks, so they agree on whose turn it is; the full chain has 341 cores.
 *
 * A gateway that stops leaves the set at once; one killed is dropped MEMBER_EXPIRY_MS after its
 * last heartbeat, and the others take its cores then. While Redis is unreachable the last place
 * known is kept. Until a first answer, a gateway packs for every core.
 */
import type { Redis } from "ioredis";

export const membersLimits = {
  /** How often a gateway says it is alive and reads the others: a change of members is seen within this (a couple of blocks at 1 s slots, under one at 6 s). */
  heartbeatMs: 1_000,
  /** A gateway not heard from for this long is no longer counted: five heartbeats, so a busy event loop or a Redis reconnect does not drop a live one. */
  expiryMs: 5_000,
  /** Most members read back: far more gateways than any deployment of one node runs; a set past it (ids of a misconfiguration) is cut to the lowest ids. */
  membersMax: 256,
} as const;

export type MembersLimits = { readonly [K in keyof typeof membersLimits]: number };

/**
 * KEYS[1]: the set; ARGV[1]: this gateway's id; ARGV[2]: expiry in ms; ARGV[3]: most members read.
 * Scores are Redis's own clock (TIME), so gateways on hosts whose clocks differ agree on who is
 * live. Returns the live ids, lowest first.
 */
const HEARTBEAT_SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local expiry = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - expiry)
redis.call('PEXPIRE', KEYS[1], expiry * 2)
local ids = redis.call('ZRANGE', KEYS[1], 0, -1)
table.sort(ids)
local out = {}
for i = 1, math.min(#ids, tonumber(ARGV[3])) do out[i] = ids[i] end
return out
`;

/** A gateway's place among the cluster's live gateways: its index in id order, and how many there are. */
export interface Place {
  readonly index: number;
  readonly count: number;
}

/**
 * The cores a gateway at `place` packs for, of `coresCount`, for the block at `slot` (null: not
 * known yet, no turns); null: every core (no place known); empty: none (another's turn).
 */
export function coresFor(place: Place | null, coresCount: number, slot: number | null = null): number[] | null {
  if (place === null || place.count <= 1) return null;
  if (place.count > coresCount) {
    const core = place.index % coresCount;
    // The gateways of this core's residue take it in turns of a slot: those sharing, and this one's turn among them.
    const sharing = Math.ceil((place.count - core) / coresCount);
    const turn = Math.floor(place.index / coresCount);
    return slot === null || slot % sharing === turn ? [core] : [];
  }
  const cores: number[] = [];
  for (let c = place.index; c < coresCount; c += place.count) cores.push(c);
  return cores;
}

type HeartbeatRedis = Redis & { jamgateHeartbeat(key: string, id: string, expiryMs: number, membersMax: number): Promise<string[]> };

export class ClusterMembers {
  private current: Place | null = null;
  private timer: NodeJS.Timeout | null = null;
  private beating = false;
  private readonly limits: MembersLimits;

  constructor(
    private readonly db: Redis,
    private readonly prefix: string,
    /** This gateway's id: its gateway key's public key, hex. */
    readonly id: string,
    private readonly onChange: (place: Place, members: readonly string[]) => void,
    limits: Partial<MembersLimits> = {},
  ) {
    this.limits = { ...membersLimits, ...limits };
    db.defineCommand("jamgateHeartbeat", { numberOfKeys: 1, lua: HEARTBEAT_SCRIPT });
  }

  private get key(): string {
    return `${this.prefix}gateways`;
  }

  /** This gateway's place, as of the last heartbeat answered; null before the first. */
  get place(): Place | null {
    return this.current;
  }

  /** Heartbeats now and every heartbeatMs until stop(). */
  start(): void {
    if (this.timer !== null) return;
    void this.beat();
    this.timer = setInterval(() => void this.beat(), this.limits.heartbeatMs);
    this.timer.unref();
  }

  /** Says it is alive and reads the live members. A heartbeat still unanswered (Redis away) is not doubled. */
  async beat(): Promise<void> {
    if (this.beating) return;
    this.beating = true;
    try {
      const ids = await (this.db as HeartbeatRedis).jamgateHeartbeat(this.key, this.id, this.limits.expiryMs, this.limits.membersMax);
      const index = ids.indexOf(this.id);
      // Not among those read back (cut by membersMax): counted last, sharing a core.
      const place: Place = index >= 0 ? { index, count: ids.length } : { index: ids.length, count: ids.length + 1 };
      const was = this.current;
      this.current = place;
      if (was === null || was.index !== place.index || was.count !== place.count) this.onChange(place, ids);
    } catch {
      // Redis away: the last place known holds; the cluster's connection logs the outage.
    } finally {
      this.beating = false;
    }
  }

  /**
   * Stops heartbeating and leaves the set, so the others take its cores at their next heartbeat;
   * waits at most a heartbeat for Redis (away, the others drop this gateway after expiryMs).
   */
  async stop(): Promise<void> {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.db.zrem(this.key, this.id).catch(() => 0),
      new Promise((resolve) => {
        timer = setTimeout(resolve, this.limits.heartbeatMs);
      }),
    ]);
    clearTimeout(timer);
  }
}
