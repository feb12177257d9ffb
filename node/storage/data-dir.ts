/**
 * A data dir belongs to one process at a time, and to its owner only.
 *
 * Two processes on one data dir both author blocks for the same slots into one LMDB store (LMDB
 * serializes their writes, so nothing tears, but the chain forks inside one file). A process takes
 * an exclusive lock on its data dir before it opens anything in it, and a second one is refused
 * with JG_ERR_DATA_DIR_LOCKED naming the holder's pid.
 *
 * The lock is proper-lockfile's: a directory made with mkdir (atomic on every local file system)
 * whose mtime the holder refreshes, taken for abandoned once it is older than a threshold. An OS
 * lock (fcntl/flock) would be released by the kernel when its holder dies, but Node has none built
 * in and the addons that have one (os-lock) ship no prebuilt binaries: every user would need a C
 * compiler, which lmdb and sodium-native spare them. proper-lockfile's weak spot is a holder
 * killed by SIGKILL: its lock looks fresh until the threshold passes, and a restart after kill -9
 * must not wait that long. So the holder writes its pid beside the lock, and a process that finds
 * the lock held asks the OS whether that pid lives (kill(pid, 0), POSIX.1-2017 kill(2): ESRCH for
 * none). A dead holder's lock is removed and taken at once; a live one's is refused.
 *
 * What remains: two processes that start in the same instant just after a holder died can both
 * see it dead; the one whose lock the other removed finds, at its next refresh (within
 * LOCK_STALE_MS / 2), that the lock's mtime is no longer its own, and stops loudly
 * (`onLost`). A holder whose pid another live process has taken since (a container restarted
 * with the same pid) is known dead only by the threshold: its successor is refused until then.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, rmdirSync, statSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { lockSync } from "proper-lockfile";
import { JamgateError } from "../../devices/protocol/errors.ts";

/** Mode of the dirs jamgate makes for its data: the owner's only (they hold keys, tokens, the chain). */
export const DATA_DIR_MODE = 0o700;
/** Mode of the files in them. */
export const DATA_FILE_MODE = 0o600;

/** The lock proper-lockfile makes in the data dir (a directory). */
export const LOCK_NAME = "jamgate.lock";
/** The holder's pid, beside the lock (proper-lockfile removes its lock with rmdir, so the lock itself stays empty). */
export const PID_NAME = "jamgate.pid";

/**
 * A lock not refreshed for this long is taken for abandoned (proper-lockfile refreshes it every
 * half of this, on the holder's event loop). Only a successor of a holder whose death its pid
 * cannot show waits this long. The other side: a live holder whose event loop is blocked this long
 * can lose its lock to a newcomer, and then stops (onLost). The node's longest measured stretches
 * are far shorter: a block at most 50 ms, the intake of a 13.8 MB package at most 174 ms
 * (BENCHMARKS.md §2).
 */
export const LOCK_STALE_MS = 30_000;

export interface PrivateDir {
  readonly created: boolean;
  /** The mode (permission bits) the dir had when it was open to group or others and has been tightened; null otherwise. */
  readonly tightenedFrom: number | null;
}

/**
 * Makes `path` (with any missing parents) mode 0700, or takes group's and others' bits off an
 * existing one. The caller says so in its log when `tightenedFrom` is not null.
 */
export function makePrivateDir(path: string): PrivateDir {
  const stat = statSync(path, { throwIfNoEntry: false });
  if (stat === undefined) {
    mkdirSync(path, { recursive: true, mode: DATA_DIR_MODE });
    return { created: true, tightenedFrom: null };
  }
  const mode = stat.mode & 0o777;
  if ((mode & 0o077) === 0) return { created: false, tightenedFrom: null };
  chmodSync(path, mode & 0o700);
  return { created: false, tightenedFrom: mode };
}

/** A secret in a data dir (a token, a key): made once by `make`, mode DATA_FILE_MODE, and read after, trimmed. */
export function secretFile(path: string, make: () => string): string {
  if (!existsSync(path)) {
    writeFileSync(path, make(), { mode: DATA_FILE_MODE, flag: "wx" });
    chmodSync(path, DATA_FILE_MODE);
  }
  return readFileSync(path, "utf8").trim();
}

/**
 * Takes group's and others' bits off the files LMDB made in its environment dir. lmdb-js opens
 * them with mode 0664 less the umask (0644 here) and offers no documented option for it, so they
 * are changed after open: a new dir is 0700 before LMDB opens it, so nobody else could reach them
 * in between. Also tightens the files of data dirs made before this.
 */
export function makeLmdbFilesPrivate(envDir: string): void {
  for (const name of ["data.mdb", "lock.mdb"]) {
    const path = join(envDir, name);
    const stat = statSync(path, { throwIfNoEntry: false });
    if (stat !== undefined && (stat.mode & 0o077) !== 0) chmodSync(path, stat.mode & 0o777 & ~0o077);
  }
}

export interface LockOptions {
  /**
   * Called when the lock was lost while held (removed, or taken by another process that judged it
   * abandoned): another process may now write the same store. By default it throws, from a timer,
   * which ends the process (jamgate's CLI logs it as fatal and exits 1; on the node's thread it
   * ends the thread, and `jamgate start` with it).
   */
  readonly onLost?: (error: Error) => void;
  /** LOCK_STALE_MS other than the default is for tests (proper-lockfile takes no less than 2,000). */
  readonly staleMs?: number;
}

/** An exclusive lock on a data dir, held until release(). */
export class DataDirLock {
  private released = false;

  private constructor(
    readonly dir: string,
    private readonly unlock: () => void,
  ) {}

  /** Takes the lock on the existing dir `dir`, or throws JG_ERR_DATA_DIR_LOCKED naming its holder. */
  static acquire(dir: string, options: LockOptions = {}): DataDirLock {
    const lockPath = join(dir, LOCK_NAME);
    const onLost =
      options.onLost ??
      ((error: Error) => {
        throw new Error(`lost the lock on data dir ${dir} (${error.message}): another process may be writing the same store; stopping`);
      });
    const take = () => lockSync(dir, { lockfilePath: lockPath, stale: options.staleMs ?? LOCK_STALE_MS, onCompromised: onLost });
    let unlock: () => void;
    try {
      unlock = take();
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ELOCKED") throw e;
      const holder = holderOf(dir);
      if (holder === null || isAlive(holder)) throw lockedError(dir, holder);
      // The holder died without releasing (SIGKILL, power loss): its lock is abandoned.
      try {
        rmdirSync(lockPath);
      } catch (removing) {
        if ((removing as NodeJS.ErrnoException).code !== "ENOENT") throw removing;
      }
      try {
        unlock = take();
      } catch (again) {
        // Another process took it in between.
        if ((again as NodeJS.ErrnoException).code === "ELOCKED") throw lockedError(dir, holderOf(dir));
        throw again;
      }
    }
    try {
      writeFileSync(join(dir, PID_NAME), `${process.pid}\n`, { mode: DATA_FILE_MODE });
    } catch (e) {
      unlock();
      throw e;
    }
    return new DataDirLock(dir, unlock);
  }

  /** Releases the lock (once; later calls do nothing), then removes the pid file if it is still this process's. */
  release(): void {
    if (this.released) return;
    this.released = true;
    try {
      this.unlock();
    } catch (e) {
      // Lost already (onLost was told) or removed by hand: nothing of this process's is left to release.
      if (!["ERELEASED", "ENOTACQUIRED"].includes(String((e as NodeJS.ErrnoException).code))) throw e;
    }
    // After the lock: a process taking it meanwhile writes its own pid, which is left alone.
    if (holderOf(this.dir) === process.pid) unlinkSync(join(this.dir, PID_NAME));
  }
}

/** The pid in the dir's pid file, or null when there is none or it is not one. */
export function holderOf(dir: string): number | null {
  let text: string;
  try {
    text = readFileSync(join(dir, PID_NAME), "utf8").trim();
  } catch {
    return null;
  }
  const pid = Number(text);
  return /^\d+$/.test(text) && Number.isSafeInteger(pid) && pid > 0 ? pid : null;
}

/** Whether a process with this pid exists: signal 0 checks without sending (EPERM: it exists, owned by another user). */
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

function lockedError(dir: string, holder: number | null): JamgateError {
  const who = holder === null ? "another process (its pid is not written yet)" : `pid ${holder}${holder === process.pid ? " (this process)" : ""}`;
  return new JamgateError(
    "JG_ERR_DATA_DIR_LOCKED",
    `data dir ${dir} is in use by ${who}: one process per data dir; stop it or use another --data-dir (a lock not refreshed for ${LOCK_STALE_MS / 1000} s is taken for abandoned)`,
  );
}
