/**
 * A V8 CPU profile of another process's main thread, over the Chrome DevTools Protocol: the process
 * runs with `--inspect=127.0.0.1:0`, prints the WebSocket URL it listens on ("Debugger listening on
 * ws://…"), and this connects to it, starts the profiler and stops it, as node:inspector's Session
 * does inside a process (bench/lib/fleet-server.ts). For a `jamgate start` the benchmark did not
 * write (bench/fleet.ts --profile with a cluster). Loopback only.
 */
import { writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import WebSocket from "ws";
import { type ProfileSummary, summarizeProfile } from "./cpuprofile.ts";

/** The inspector's URL in a line of a process's output, or null. */
export function inspectorUrl(line: string): string | null {
  return /Debugger listening on (ws:\/\/127\.0\.0\.1:\d+\/[\w-]+)/.exec(line)?.[1] ?? null;
}

/** How long one protocol call may take: Profiler.stop serialises the whole profile. */
const CALL_TIMEOUT_MS = 60_000;

export class CdpProfiler {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();

  private constructor(private readonly ws: WebSocket) {
    ws.on("message", (data) => {
      const message = JSON.parse(String(data)) as { id?: number; result?: unknown; error?: { message: string } };
      if (message.id === undefined) return;
      const call = this.pending.get(message.id);
      this.pending.delete(message.id);
      if (message.error !== undefined) call?.reject(new Error(message.error.message));
      else call?.resolve(message.result);
    });
    ws.on("close", () => {
      for (const call of this.pending.values()) call.reject(new Error("the inspector's connection closed"));
      this.pending.clear();
    });
  }

  static connect(url: string): Promise<CdpProfiler> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, { perMessageDeflate: false, maxPayload: 1024 ** 3 });
      ws.once("open", () => resolve(new CdpProfiler(ws)));
      ws.once("error", reject);
    });
  }

  private call(method: string, params: object = {}): Promise<unknown> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${method}: no answer within ${CALL_TIMEOUT_MS} ms`));
      }, CALL_TIMEOUT_MS);
      this.pending.set(id, {
        resolve: (v) => (clearTimeout(timer), resolve(v)),
        reject: (e) => (clearTimeout(timer), reject(e)),
      });
      this.ws.send(JSON.stringify({ id, method, params }));
    });
  }

  async start(): Promise<void> {
    await this.call("Profiler.enable");
    await this.call("Profiler.start");
  }

  /** Stops the profiler, writes the profile to a temp file and returns its summary (its path in `path`). */
  async stop(top: number): Promise<ProfileSummary & { readonly path: string }> {
    const { profile } = (await this.call("Profiler.stop")) as { profile: object };
    const path = join(tmpdir(), `jamgate-fleet-cdp-${process.pid}-${Date.now()}.cpuprofile`);
    writeFileSync(path, JSON.stringify(profile));
    return { ...summarizeProfile(path, top), path };
  }

  close(): void {
    this.ws.close();
  }
}
