import { spawn } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, readdirSync, rmdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { open } from "lmdb";
import { afterEach, describe, expect, it } from "vitest";
import { JamgateError } from "../../devices/protocol/errors.ts";
import { tempDir } from "../testing/fixtures.ts";
import { DataDirLock, holderOf, LOCK_NAME, makeLmdbFilesPrivate, makePrivateDir, PID_NAME } from "./data-dir.ts";
import { Store } from "./store.ts";

const modeOf = (path: string) => statSync(path).mode & 0o777;
const cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function refusal(f: () => unknown): JamgateError {
  try {
    f();
  } catch (e) {
    if (e instanceof JamgateError) return e;
    throw e;
  }
  throw new Error("not refused");
}

/** A live process that is not this one, to stand as a holder (ended with SIGKILL by the test or after it). */
async function otherProcess(): Promise<{ pid: number; kill(): Promise<void> }> {
  const child = spawn(process.execPath, ["-e", "setInterval(() => {}, 60_000)"], { stdio: "ignore" });
  await new Promise<void>((resolve, reject) => child.once("spawn", resolve).once("error", reject));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const kill = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    await exited; // reaped: its pid is gone, not a zombie
  };
  cleanups.push(kill);
  return { pid: child.pid!, kill };
}

describe("private data dirs", () => {
  it("makes a new dir and its missing parents 0700, and tightens a looser one, saying from what", () => {
    const base = tempDir();
    const nested = join(base, "a", "b");
    expect(makePrivateDir(nested)).toEqual({ created: true, tightenedFrom: null });
    expect(modeOf(join(base, "a"))).toBe(0o700);
    expect(modeOf(nested)).toBe(0o700);
    expect(makePrivateDir(nested)).toEqual({ created: false, tightenedFrom: null });

    const loose = join(base, "loose");
    mkdirSync(loose);
    chmodSync(loose, 0o755);
    expect(makePrivateDir(loose)).toEqual({ created: false, tightenedFrom: 0o755 });
    expect(modeOf(loose)).toBe(0o700);
  });

  it("makes LMDB's files 0600 (lmdb-js makes them 0644 under the usual umask)", async () => {
    const dir = tempDir();
    const env = open({ path: dir, compression: false });
    env.putSync("k", 1);
    cleanups.push(() => env.close());
    chmodSync(join(dir, "data.mdb"), 0o644);
    chmodSync(join(dir, "lock.mdb"), 0o664);
    makeLmdbFilesPrivate(dir);
    expect([modeOf(join(dir, "data.mdb")), modeOf(join(dir, "lock.mdb"))]).toEqual([0o600, 0o600]);
  });

  it("opens the node's store in a 0700 dir with 0600 files, and tightens a store made before", async () => {
    const dir = join(tempDir(), "node");
    const store = new Store(dir);
    expect(store.tightenedFrom).toBe(null);
    expect([modeOf(dir), modeOf(join(dir, "data.mdb")), modeOf(join(dir, "lock.mdb"))]).toEqual([0o700, 0o600, 0o600]);
    await store.close();
    for (const [path, mode] of [
      [dir, 0o755],
      [join(dir, "data.mdb"), 0o644],
      [join(dir, "lock.mdb"), 0o644],
    ] as const)
      chmodSync(path, mode);
    const again = new Store(dir);
    cleanups.push(() => again.close());
    expect(again.tightenedFrom).toBe(0o755);
    expect([modeOf(dir), modeOf(join(dir, "data.mdb")), modeOf(join(dir, "lock.mdb"))]).toEqual([0o700, 0o600, 0o600]);
  });
});

describe("the data dir lock", () => {
  it("refuses a second holder, naming the first's pid, until the first releases; release leaves nothing behind", () => {
    const dir = tempDir();
    const first = DataDirLock.acquire(dir);
    expect(holderOf(dir)).toBe(process.pid);
    const refused = refusal(() => DataDirLock.acquire(dir));
    expect(refused.code).toBe("JG_ERR_DATA_DIR_LOCKED");
    expect(refused.message).toContain(`pid ${process.pid}`);
    expect(refused.message).toContain(dir);
    first.release();
    first.release(); // once only
    expect(readdirSync(dir)).toEqual([]);
    const second = DataDirLock.acquire(dir);
    cleanups.push(() => second.release());
    expect(readdirSync(dir).sort()).toEqual([LOCK_NAME, PID_NAME]);
    expect(modeOf(join(dir, PID_NAME))).toBe(0o600);
  });

  it("refuses while the holder's process lives and takes the lock at once when it died (a fresh lock left by SIGKILL)", async () => {
    const dir = tempDir();
    const holder = await otherProcess();
    // The holder's state as a process killed while holding leaves it: the lock (just refreshed) and its pid.
    mkdirSync(join(dir, LOCK_NAME));
    writeFileSync(join(dir, PID_NAME), `${holder.pid}\n`);
    const refused = refusal(() => DataDirLock.acquire(dir));
    expect(refused.code).toBe("JG_ERR_DATA_DIR_LOCKED");
    expect(refused.message).toContain(`pid ${holder.pid}`);
    await holder.kill();
    const lock = DataDirLock.acquire(dir);
    cleanups.push(() => lock.release());
    expect(holderOf(dir)).toBe(process.pid);
  });

  it("refuses a lock whose holder has not written its pid (it cannot be known dead)", () => {
    const dir = tempDir();
    mkdirSync(join(dir, LOCK_NAME));
    const refused = refusal(() => DataDirLock.acquire(dir));
    expect(refused.code).toBe("JG_ERR_DATA_DIR_LOCKED");
    expect(refused.message).toContain("pid is not written yet");
    expect(existsSync(join(dir, LOCK_NAME))).toBe(true);
  });

  it("says when the lock was lost while held (removed from under it)", async () => {
    const dir = tempDir();
    const lost: Error[] = [];
    // The shortest threshold proper-lockfile takes (2 s): it checks the lock every second.
    const lock = DataDirLock.acquire(dir, { staleMs: 2_000, onLost: (e) => lost.push(e) });
    cleanups.push(() => lock.release());
    rmdirSync(join(dir, LOCK_NAME));
    for (let i = 0; i < 400 && lost.length === 0; i++) await new Promise((r) => setTimeout(r, 50));
    expect(lost.map((e) => (e as NodeJS.ErrnoException).code)).toEqual(["ECOMPROMISED"]);
  });

  it("locks the node's store: a second store on the same dir is refused until the first closes", async () => {
    const dir = tempDir();
    const store = new Store(dir);
    const refused = refusal(() => new Store(dir));
    expect(refused.code).toBe("JG_ERR_DATA_DIR_LOCKED");
    await store.close();
    const again = new Store(dir);
    cleanups.push(() => again.close());
    expect(again.genesisHash()).toBe(null);
  });
});

describe("Store.genesisAt", () => {
  it("reads a stored chain's genesis and says null for a missing dir, an empty one or another LMDB, creating nothing", async () => {
    const base = tempDir();
    expect(await Store.genesisAt(join(base, "missing"))).toBe(null);
    expect(existsSync(join(base, "missing"))).toBe(false);
    mkdirSync(join(base, "empty"));
    expect(await Store.genesisAt(join(base, "empty"))).toBe(null);
    expect(readdirSync(join(base, "empty"))).toEqual([]);
    const other = open({ path: join(base, "other"), compression: false });
    other.openDB({ name: "records" }).putSync("k", 1);
    await other.close();
    expect(await Store.genesisAt(join(base, "other"))).toBe(null);
    expect(readdirSync(join(base, "other")).sort()).toEqual(["data.mdb", "lock.mdb"]);

    const store = new Store(join(base, "node"));
    const hash = new Uint8Array(32).fill(7);
    store.writeGenesis({ slot: 0, hash, encoded: new Uint8Array([1, 2, 3]), stateRoot: new Uint8Array(32) }, []);
    await store.close();
    expect(Buffer.compare(Buffer.from((await Store.genesisAt(join(base, "node")))!), Buffer.from(hash))).toBe(0);
  });
});
