/**
 * The RADIUS listener's durable state (LMDB at `<data-dir>/radius/state`): each router's next
 * envelope seq, and the sessions it follows (sessions.ts). Both survive a restart: a seq is
 * never signed twice (the gateway's window would refuse the second as a replay), and a session's
 * next update still chains from its last one (else the service refuses it, JG_ERR_WIFI_VOUCHER_CHAIN).
 *
 * | database | key | value |
 * |---|---|---|
 * | `seqs` | router id | the next seq to sign with: written (and synced) before that seq is used |
 * | `sessions` | router id ⌢ ":" ⌢ session id (hex) | `StoredSession`: written (and synced) after its update is in the gateway's log, before the Accounting-Response |
 */
import { join } from "node:path";
import { type Database, open, type RootDatabase } from "lmdb";
import { fromHex, toHex } from "../../devices/envelope.ts";
import { makeLmdbFilesPrivate, makePrivateDir } from "../../node/storage/data-dir.ts";
import type { SessionState } from "./sessions.ts";

/** Reserved address space; LMDB takes disk only as it is used. */
const MAP_SIZE_BYTES = 1024 ** 3;

export interface RadiusStateLimits {
  /**
   * Sessions followed at once, in memory and on disk. Ten open sessions
   * for each of 10,000 routers, the gateway's device target; hotspots that close their sessions
   * with a Stop leave room, since a stopped session is idle and so evicted first. Past it the
   * session idle longest is forgotten: a NAS that never sent its Stop (rebooted, or out of reach),
   * most likely. Should it come back, its next update chains from nothing and the service refuses it
   * (JG_ERR_WIFI_VOUCHER_CHAIN); a retransmission of a forgotten Stop is taken again, and refused
   * there too. Logged when it happens.
   */
  readonly sessionsMax: number;
}

export const radiusStateLimits: RadiusStateLimits = { sessionsMax: 100_000 };

interface StoredSession {
  readonly clientId: string;
  readonly started: boolean;
  readonly stopped: boolean;
  /** Decimal: 64-bit. */
  readonly inputOctets: string;
  readonly outputOctets: string;
  readonly seconds: number;
  readonly lastHash: string;
  readonly updatedAtMs: number;
}

export function sessionKey(routerId: string, sessionId: Uint8Array): string {
  return `${routerId}:${toHex(sessionId)}`;
}

export class RadiusState {
  private readonly root: RootDatabase;
  private readonly seqsDb: Database<number, string>;
  private readonly sessionsDb: Database<StoredSession, string>;
  /** Every session followed, the idle longest first (a Map keeps insertion order; an update moves its session to the end). */
  private readonly sessions = new Map<string, SessionState>();
  /** Next seq per router, as written: a router is read from disk once. */
  private readonly nextSeqs = new Map<string, number>();
  private readonly limits: RadiusStateLimits;

  constructor(
    dataDir: string,
    limits: Partial<RadiusStateLimits> = {},
    private readonly logger?: { warn(o: object, m: string): void },
  ) {
    this.limits = { ...radiusStateLimits, ...limits };
    const path = join(dataDir, "radius", "state");
    // Private: it says who used which router when (0700 dir, 0600 files).
    makePrivateDir(join(dataDir, "radius"));
    makePrivateDir(path);
    this.root = open({ path, mapSize: MAP_SIZE_BYTES, compression: false });
    makeLmdbFilesPrivate(path);
    this.seqsDb = this.root.openDB({ name: "seqs" });
    this.sessionsDb = this.root.openDB({ name: "sessions" });
    const loaded: [string, SessionState][] = [];
    for (const { key, value } of this.sessionsDb.getRange()) loaded.push([key, fromStored(value)]);
    loaded.sort((a, b) => a[1].updatedAtMs - b[1].updatedAtMs);
    for (const [key, state] of loaded) this.sessions.set(key, state);
    this.evict();
  }

  get sessionCount(): number {
    return this.sessions.size;
  }

  session(key: string): SessionState | null {
    return this.sessions.get(key) ?? null;
  }

  /** Records a session's state once its update is in the gateway's log; resolves when it is on disk. */
  async putSession(key: string, state: SessionState): Promise<void> {
    this.sessions.delete(key);
    this.sessions.set(key, state);
    this.evict();
    await this.sessionsDb.put(key, toStored(state));
    await this.root.flushed;
  }

  /**
   * The router's next seq, taken: the one after it is on disk before this resolves, so after a
   * crash the router never signs a seq twice. A seq taken and never logged (a crash, a refusal)
   * leaves a gap, which the seq window allows.
   */
  async takeSeq(routerId: string): Promise<number> {
    const seq = this.nextSeqs.get(routerId) ?? this.seqsDb.get(routerId) ?? 0;
    this.nextSeqs.set(routerId, seq + 1);
    await this.seqsDb.put(routerId, seq + 1);
    await this.root.flushed;
    return seq;
  }

  async close(): Promise<void> {
    await this.root.close();
  }

  /** Forgets the sessions idle longest while there are more than the bound. */
  private evict(): void {
    let forgotten = 0;
    for (const key of this.sessions.keys()) {
      if (this.sessions.size <= this.limits.sessionsMax) break;
      this.sessions.delete(key);
      void this.sessionsDb.remove(key);
      forgotten++;
    }
    if (forgotten > 0)
      this.logger?.warn({ forgotten, sessionsMax: this.limits.sessionsMax }, "RADIUS sessions forgotten: more are followed than radiusStateLimits.sessionsMax");
  }
}

function toStored(s: SessionState): StoredSession {
  return {
    clientId: s.clientId,
    started: s.started,
    stopped: s.stopped,
    inputOctets: s.inputOctets.toString(),
    outputOctets: s.outputOctets.toString(),
    seconds: s.seconds,
    lastHash: toHex(s.lastHash),
    updatedAtMs: s.updatedAtMs,
  };
}

function fromStored(s: StoredSession): SessionState {
  return {
    clientId: s.clientId,
    started: s.started,
    stopped: s.stopped,
    inputOctets: BigInt(s.inputOctets),
    outputOctets: BigInt(s.outputOctets),
    seconds: s.seconds,
    lastHash: fromHex(s.lastHash),
    updatedAtMs: s.updatedAtMs,
  };
}
