/** Test fixtures: a node with the counter service, a submitter key, package building and waiting. */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { NodeApi, WorkPackageStatus } from "../api.ts";
import { nativeCodeHash, type GenesisService } from "../chain/genesis.ts";
import { tinyParams } from "../chain/params.ts";
import { keyPairFromSeed } from "../crypto/ed25519.ts";
import { hash } from "../crypto/hash.ts";
import { buildWorkPackage, type WorkItemSpec } from "../intake/builder.ts";
import { JamNode, type NodeOptions } from "../node.ts";

export const COUNTER_SERVICE_ID = 1;
export const COUNTER_MODULE_URL = new URL("./counter/service.ts", import.meta.url).href;
export const COUNTER_CODE_HASH = nativeCodeHash("counter");
export const submitterKey = keyPairFromSeed(hash(new TextEncoder().encode("jamgate-test-submitter")));

export function counterGenesis(extra: Partial<GenesisService> = {}): GenesisService[] {
  return [
    { id: COUNTER_SERVICE_ID, name: "counter", moduleUrl: COUNTER_MODULE_URL, balance: 1_000_000n, authorizedKeys: [submitterKey.publicKey], ...extra },
    { id: 2, name: "counter", moduleUrl: COUNTER_MODULE_URL, balance: 0n, authorizedKeys: [submitterKey.publicKey] },
  ];
}

export function tempDir(prefix = "jamgate-test-"): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export async function openTestNode(options: Partial<NodeOptions> = {}): Promise<JamNode> {
  return JamNode.open({ dataDir: tempDir(), slotMs: 50, services: counterGenesis(), refineTimeoutMs: 2_000, ...options });
}

export function counterItem(payload: Uint8Array, gas: Partial<Pick<WorkItemSpec, "refineGasLimit" | "accumulateGasLimit">> = {}): WorkItemSpec {
  return { serviceId: COUNTER_SERVICE_ID, codeHash: COUNTER_CODE_HASH, payload, refineGasLimit: 10_000_000n, accumulateGasLimit: 1_000_000n, ...gas };
}

/** A signed package for the node's current best block. */
export async function packageFor(api: NodeApi, items: WorkItemSpec[], signer = submitterKey) {
  const best = await api.bestBlock();
  const stateRoot = await api.stateRoot(best.headerHash);
  return buildWorkPackage(tinyParams, { signer, anchor: { headerHash: best.headerHash, stateRoot, slot: best.slot }, items });
}

/** Resolves with the first status of `kind` (or failed), rejecting after timeoutMs. */
/** The order a package's statuses come in: waiting for one is also met by any after it (a slow subscriber may see only the later). */
const STATUS_ORDER: readonly WorkPackageStatus["kind"][] = ["submitted", "refined", "reported", "available", "accumulated"];

/**
 * Resolves with the package's first status that is one of `kinds` or later than all of them, or
 * "failed"; rejects after `timeoutMs` (generous by default: a busy machine is slow, not wrong).
 */
export async function waitForStatus(api: NodeApi, packageHash: Uint8Array, kinds: WorkPackageStatus["kind"][], timeoutMs = 30_000): Promise<WorkPackageStatus> {
  const earliest = Math.min(...kinds.map((k) => STATUS_ORDER.indexOf(k)).filter((i) => i >= 0));
  let unsubscribe: (() => void) | undefined;
  try {
    return await new Promise<WorkPackageStatus>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`package not ${kinds.join("/")} within ${timeoutMs} ms`)), timeoutMs);
      void api
        .subscribeWorkPackageStatus(packageHash, (s) => {
          if (kinds.includes(s.kind) || s.kind === "failed" || STATUS_ORDER.indexOf(s.kind) > earliest) {
            clearTimeout(timer);
            resolve(s);
          }
        })
        .then((u) => {
          unsubscribe = u;
        }, reject);
    });
  } finally {
    unsubscribe?.();
  }
}
