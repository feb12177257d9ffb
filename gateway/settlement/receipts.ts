/**
 * What devices are told once their package is accumulated: the service's outcome for the
 * package, read from state, becomes a receipt per device (its settled seqs, RECEIPT_SEQS_MAX a
 * message) and a coded error per refused envelope; then the ledger index gets the receipts. What
 * is told is handed to the broker, which says when each notice is published (`notify`'s promise):
 * settlement keeps the package in the durable log until then (told.ts).
 */
import { RECEIPT_SEQS_MAX } from "../../devices/messages.ts";
import { toHex } from "../../devices/protocol/hex.ts";
import type { BlockDescriptor, NodeApi } from "../../node/api.ts";
import type { EnvelopeVerdicts, IngestService } from "../ingest-service.ts";
import type { LedgerSink, SettledReceipt } from "../ledger/sink.ts";
import { appendTo } from "./batcher.ts";

export type DeviceNotice =
  /** A device's envelopes settled in one package: seqs ascending, at most RECEIPT_SEQS_MAX (one receipt message). */
  | {
      readonly kind: "receipt";
      readonly deviceId: string;
      readonly seqs: readonly number[];
      readonly packageHash: Uint8Array;
      readonly blockHash: Uint8Array;
      readonly slot: number;
    }
  | { readonly kind: "error"; readonly deviceId: string; readonly seq: number; readonly code: string; readonly detail: string };

/** An accumulated package: its hash, service and the entries it settled. */
export interface SettledPackage {
  readonly hash: Uint8Array;
  readonly serviceId: number;
  readonly entries: readonly { readonly deviceId: string; readonly seq: number; readonly acceptedAtMs: number }[];
}

export interface ReceiptsDeps {
  /**
   * Hands a notice to the broker for its device. A promise, if returned, settles when the notice is
   * published: resolved once the broker holds it for the device's session (aedes' publish callback:
   * written to the device, or queued for its session; in a cluster, in Redis), rejected if it could
   * not be. Returning nothing means published at once.
   */
  notify(notice: DeviceNotice): void | PromiseLike<void>;
  readonly observe?: { settledLatencyMs(ms: number): void; packageSettled(envelopes: number, refused: number): void };
  readonly ledger?: Pick<LedgerSink, "packageSettled">;
}

/** The service's outcome value for an accumulated package, or null if it left none (its accumulate failed). */
export async function outcomeValue(api: Pick<NodeApi, "bestBlock" | "serviceValue">, service: IngestService, pkg: SettledPackage): Promise<Uint8Array | null> {
  // Read at the best block, not at `accumulatedIn`: the outcome stays in state (for the service's
  // last few thousand packages), while a node keeps only recent blocks' states (none older
  // than its last restart).
  const best = await api.bestBlock();
  return api.serviceValue(best.headerHash, pkg.serviceId, service.outcomeKey(pkg.hash));
}

/** Whether every notice of a package was published: null, or why one was not (never rejects). */
export type NoticesPublished = Promise<Error | null>;

/**
 * Tells each device of `pkg`, accumulated in `block`, what the service decided: one receipt per
 * device for the package, not per envelope (devices/messages.ts, ReceiptBatch), and an error per
 * refused envelope; then the ledger index. Resolves once the index has the receipts, or could not
 * write them (it logs why): an index that cannot write is never a reason to hold settlement back.
 * `published` settles once the broker has published every notice, or one could not be.
 */
export async function tellOutcome(
  deps: ReceiptsDeps,
  pkg: SettledPackage,
  verdicts: EnvelopeVerdicts,
  block: BlockDescriptor,
  nowMs: number,
): Promise<{ readonly published: NoticesPublished }> {
  const handed: PromiseLike<void>[] = [];
  const tell = (notice: DeviceNotice): void => {
    const told = deps.notify(notice);
    if (told !== undefined) handed.push(told);
  };
  let refused = 0;
  const settledSeqs = new Map<string, number[]>();
  for (const entry of pkg.entries) {
    const code = verdicts(entry.deviceId, entry.seq);
    if (code === null) {
      appendTo(settledSeqs, entry.deviceId, entry.seq);
      deps.observe?.settledLatencyMs(nowMs - entry.acceptedAtMs);
    } else {
      refused++;
      tell({
        kind: "error",
        deviceId: entry.deviceId,
        seq: entry.seq,
        code,
        detail: `refused by service ${pkg.serviceId} in package ${toHex(pkg.hash)}`,
      });
    }
  }
  const receipts: SettledReceipt[] = [];
  for (const [deviceId, seqs] of settledSeqs) {
    seqs.sort((a, b) => a - b);
    for (let at = 0; at < seqs.length; at += RECEIPT_SEQS_MAX) {
      const receipt = { deviceId, seqs: seqs.slice(at, at + RECEIPT_SEQS_MAX) };
      receipts.push(receipt);
      tell({ kind: "receipt", ...receipt, packageHash: pkg.hash, blockHash: block.headerHash, slot: block.slot });
    }
  }
  // Settled to a value before the index write below: a notice refused meanwhile is no unhandled rejection.
  const published: NoticesPublished = Promise.all(handed.map((told) => Promise.resolve(told).then(() => null, errorOf))).then(
    (errors) => errors.find((e) => e !== null) ?? null,
  );
  deps.observe?.packageSettled(pkg.entries.length, refused);
  await deps.ledger
    ?.packageSettled({
      hash: pkg.hash,
      serviceId: pkg.serviceId,
      kind: "envelopes",
      block,
      receipts,
      settled: pkg.entries.length - refused,
      refused,
      settledAtMs: nowMs,
    })
    .catch(() => undefined);
  return { published };
}

const errorOf = (e: unknown): Error => (e instanceof Error ? e : new Error(String(e)));
