/** Secrets kept in a data dir (tokens, keys): made once, mode 0600, and read after. */
import { chmodSync, existsSync, readFileSync, writeFileSync } from "node:fs";

/** A secret file made once (mode 0600, by `make`) and read after, trimmed. */
export function secretFile(path: string, make: () => string): string {
  if (!existsSync(path)) {
    writeFileSync(path, make(), { mode: 0o600, flag: "wx" });
    chmodSync(path, 0o600);
  }
  return readFileSync(path, "utf8").trim();
}
