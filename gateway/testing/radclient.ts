/**
 * FreeRADIUS's `radclient` (Debian freeradius-utils; scripts/test.sh installs it when missing) as
 * a stock router's accounting: one Accounting-Request, sent once (`-r 1`), its answer waited for
 * and its Response Authenticator checked by radclient (RFC 2866 §3).
 */
import { spawn } from "node:child_process";

/** What radclient did: its exit code (0 when answered) and everything it wrote (`-x`: the packets). */
export interface RadclientResult {
  readonly exitCode: number | null;
  readonly output: string;
}

/**
 * Sends one Accounting-Request to `server` (host:port) signed with `secret`: `attributes` as
 * radclient reads them (`Name = value, …`), or as a record whose strings are quoted and numbers not.
 * Waits `timeoutSeconds` for the answer.
 */
export function radclient(
  server: string,
  secret: string,
  attributes: string | Readonly<Record<string, string | number>>,
  timeoutSeconds = 10,
): Promise<RadclientResult> {
  const line =
    typeof attributes === "string"
      ? attributes
      : Object.entries(attributes)
          .map(([name, value]) => `${name} = ${typeof value === "number" ? value : JSON.stringify(value)}`)
          .join(", ");
  return new Promise((resolve, reject) => {
    const child = spawn("radclient", ["-x", "-r", "1", "-t", String(timeoutSeconds), "--", server, "acct", secret], { stdio: ["pipe", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (d: Buffer) => (output += d.toString()));
    child.stderr.on("data", (d: Buffer) => (output += d.toString()));
    child.on("error", reject);
    child.on("close", (exitCode) => resolve({ exitCode, output }));
    child.stdin.end(`${line}\n`);
  });
}

/** Answered with an Accounting-Response whose authenticator checked. */
export const answered = (sent: RadclientResult): boolean => sent.exitCode === 0 && /Received Accounting-Response/.test(sent.output);
