/**
 * Reads V8 .cpuprofile files (node --cpu-prof) and sums them up: self time per function, total
 * (inclusive) time per function, and self time per area (our directories, node_modules packages,
 * node internals), as shares of the busy (non-idle) samples.
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

/** The repository's root directory, with a trailing slash: frames in it are named relative to it. */
const REPO_ROOT = fileURLToPath(new URL("../../", import.meta.url));

/** What a CPU profile node and a sampling heap profile node have in common. */
export interface ProfileFrame {
  readonly callFrame: { functionName: string; url: string; lineNumber: number };
}

interface ProfileNode extends ProfileFrame {
  id: number;
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export interface ProfileSummary {
  readonly wallMs: number;
  readonly busyMs: number;
  readonly idleMs: number;
  readonly self: { name: string; ms: number; share: number }[];
  readonly total: { name: string; ms: number; share: number }[];
  readonly areas: { name: string; ms: number; share: number }[];
}

export function frameName(node: ProfileFrame): string {
  const { functionName, url, lineNumber } = node.callFrame;
  const where = url === "" ? "" : ` ${shortUrl(url)}:${lineNumber + 1}`;
  return `${functionName || "(anonymous)"}${where}`;
}

function shortUrl(url: string): string {
  const nm = url.lastIndexOf("node_modules/");
  if (nm >= 0) return url.slice(nm + "node_modules/".length);
  const main = url.indexOf(REPO_ROOT);
  if (main >= 0) return url.slice(main + REPO_ROOT.length);
  return url.replace(/^file:\/\//, "");
}

export function areaOf(node: ProfileFrame): string {
  const { functionName, url } = node.callFrame;
  if (url === "") return functionName.startsWith("(") ? functionName : `native ${functionName}`;
  const nm = url.lastIndexOf("node_modules/");
  if (nm >= 0) {
    const rest = url.slice(nm + "node_modules/".length).split("/");
    return rest[0]!.startsWith("@") ? `${rest[0]}/${rest[1]}` : rest[0]!;
  }
  if (url.startsWith("node:")) return url;
  const main = url.indexOf(REPO_ROOT);
  if (main >= 0) {
    const parts = url.slice(main + REPO_ROOT.length).split("/");
    return parts.length > 2 ? `${parts[0]}/${parts[1]}` : parts[0]!;
  }
  return "other";
}

const NON_BUSY = new Set(["(idle)", "(program)"]);

export function summarizeProfile(path: string, top = 15): ProfileSummary {
  const profile = JSON.parse(readFileSync(path, "utf8")) as Profile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const selfMs = new Map<number, number>();
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i]!;
    selfMs.set(id, (selfMs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0) / 1000);
  }
  let idleMs = 0;
  let busyMs = 0;
  const self = new Map<string, number>();
  const areas = new Map<string, number>();
  const total = new Map<string, number>();
  for (const [id, ms] of selfMs) {
    const node = byId.get(id)!;
    const fn = node.callFrame.functionName;
    if (NON_BUSY.has(fn)) {
      idleMs += ms;
      continue;
    }
    busyMs += ms;
    const name = frameName(node);
    self.set(name, (self.get(name) ?? 0) + ms);
    const area = areaOf(node);
    areas.set(area, (areas.get(area) ?? 0) + ms);
    // Inclusive: each function on the stack once.
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const n = byId.get(at)!;
      if (n.callFrame.functionName === "(root)") break;
      const key = frameName(n);
      if (seen.has(key)) continue;
      seen.add(key);
      total.set(key, (total.get(key) ?? 0) + ms);
    }
  }
  const list = (m: Map<string, number>, k: number) =>
    [...m]
      .sort((x, y) => y[1] - x[1])
      .slice(0, k)
      .map(([name, ms]) => ({ name, ms, share: busyMs === 0 ? 0 : ms / busyMs }));
  return { wallMs: (profile.endTime - profile.startTime) / 1000, busyMs, idleMs, self: list(self, top), total: list(total, top * 2), areas: list(areas, top) };
}
