/**
 * A simulation's working directory and log. The directory is the one the caller names (kept
 * after the run) or a temporary one of the run's own (removed after it); the embedded stack's
 * and the devices' files go in it, and every log line goes to its `sim.log`, not to the terminal,
 * which shows the progress bars and the results.
 */
import { once } from "node:events";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Logger, pino } from "pino";

export interface RunDir {
  readonly path: string;
  /** `sim.log` in `path`: errors that ask to look at the log name it. */
  readonly logPath: string;
  readonly logger: Logger;
  /** Flushes the log, and removes the directory when it is the run's own. */
  close(): void;
}

/** Opens `dataDir` (made if missing), or a new temporary directory named `prefix…` when it is undefined. */
export async function openRunDir(dataDir: string | undefined, prefix: string): Promise<RunDir> {
  const own = dataDir === undefined;
  const path = dataDir ?? mkdtempSync(join(tmpdir(), prefix));
  const remove = () => {
    if (own) rmSync(path, { recursive: true, force: true });
  };
  mkdirSync(path, { recursive: true });
  const logPath = join(path, "sim.log");
  const destination = pino.destination({ dest: logPath, sync: false });
  try {
    // Open before anything can fail: pino flushes at exit, and a destination still opening throws there.
    await once(destination, "ready");
  } catch (e) {
    remove();
    throw e;
  }
  const logger = pino({ base: undefined, level: "info" }, destination);
  return {
    path,
    logPath,
    logger,
    close() {
      logger.flush();
      remove();
    },
  };
}
