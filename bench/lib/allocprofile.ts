/**
 * Sums up a V8 sampling heap profile (HeapProfiler.startSampling through node:inspector, with the
 * objects already collected by minor and major GCs kept in it): where the main thread allocates,
 * by bytes sampled, per function (self, and inclusive of what it calls) and per area. With
 * collected objects included, the profile is the allocation rate, not what is alive at the end.
 */
import { frameName, areaOf, type ProfileFrame } from "./cpuprofile.ts";

interface SamplingNode {
  readonly callFrame: ProfileFrame["callFrame"];
  readonly selfSize: number;
  readonly children: readonly SamplingNode[];
}

export interface AllocSummary {
  readonly totalBytes: number;
  readonly self: { name: string; bytes: number; share: number }[];
  readonly total: { name: string; bytes: number; share: number }[];
  readonly areas: { name: string; bytes: number; share: number }[];
}

export function summarizeAllocations(profile: { head: SamplingNode }, top = 20): AllocSummary {
  const self = new Map<string, number>();
  const total = new Map<string, number>();
  const areas = new Map<string, number>();
  let totalBytes = 0;
  const add = (m: Map<string, number>, k: string, v: number) => m.set(k, (m.get(k) ?? 0) + v);
  // Iterative walk with the stack of names above each node, each name counted once per path for the inclusive sums.
  const walk = (node: SamplingNode, stack: string[]) => {
    const name = frameName(node);
    const isRoot = node.callFrame.functionName === "(root)";
    const path = isRoot ? stack : [...stack, name];
    if (node.selfSize > 0) {
      totalBytes += node.selfSize;
      add(self, name, node.selfSize);
      add(areas, areaOf(node), node.selfSize);
      for (const n of new Set(path)) add(total, n, node.selfSize);
    }
    for (const c of node.children) walk(c, path);
  };
  walk(profile.head, []);
  const list = (m: Map<string, number>, k: number) =>
    [...m]
      .sort((x, y) => y[1] - x[1])
      .slice(0, k)
      .map(([name, bytes]) => ({ name, bytes, share: totalBytes === 0 ? 0 : bytes / totalBytes }));
  return { totalBytes, self: list(self, top), total: list(total, top * 2), areas: list(areas, top) };
}
