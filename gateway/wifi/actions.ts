/**
 * Operator actions on wifi-billing (top-ups, price changes, deregistrations): each gets a random
 * 16-byte id, waits up to ACTION_BATCH_MS for others to share its work item (as registrations do,
 * registration.ts), and goes to the node as an actions item (services/wifi-billing/payload.ts)
 * in a package of its own (Registrations.submitItem). Its status is the service's verdict, read
 * from the service's state once the package is accumulated: the value under `action/` ⌢ id
 * (`decodeActionVerdict`: applied, or refused with its code); none there after accumulation means
 * the service's accumulate applied nothing of the package. A package the node failed is reported
 * refused with the node's code: nothing of it was applied, and the operator may submit it again.
 *
 * After the gateway has forgotten an action (a restart, or RECENT_KEPT_MAX newer ones), its
 * status is still read from state, where the service keeps ACTIONS_KEPT verdicts.
 */
import { randomBytes } from "node:crypto";
import type { BlockDescriptor, NodeApi } from "../../node/api.ts";
import { toHex } from "../../node/codec/jam.ts";
import { JamgateError } from "../../devices/protocol/errors.ts";
import {
  ACTIONS_PER_ITEM_MAX,
  actionKey,
  decodeActionVerdict,
  decodeStoredAction,
  type WifiAction,
  wifiActionsGas,
  wifiActionsPayload,
} from "../../services/wifi-billing/types.ts";
import type { IngestService } from "../ingest-service.ts";
import type { ItemEnd, ItemSubmission } from "../registration.ts";
import type { ActionKind, ActionView } from "./backend.ts";

/** How long an action waits for others to share its item: operators act rarely; a burst (a script topping up 1,000 clients) goes in a few packages. */
export const ACTION_BATCH_MS = 50;
/** Actions submitted and not yet decided: a burst past this is refused (JG_ERR_QUEUE_FULL) until earlier ones are. */
export const ACTIONS_IN_FLIGHT_MAX = 10_000;
/** Decided actions remembered for `view`; older ones are read from state. */
const RECENT_KEPT_MAX = 2 * ACTIONS_IN_FLIGHT_MAX;

/** An action as the routes ask for it: what to do, without its id. */
export type ActionRequest =
  | { readonly type: "topup"; readonly account: string; readonly amountMicros: bigint }
  | { readonly type: "setPrice"; readonly router: string; readonly priceMicrosPerGb: bigint }
  | { readonly type: "deregister"; readonly router: string };

const KIND_OF: Record<ActionRequest["type"], ActionKind> = { topup: "topup", setPrice: "set-price", deregister: "deregister" };
const KIND_OF_TYPE_BYTE: readonly ActionKind[] = ["topup", "set-price", "deregister"];

interface Waiting {
  readonly action: WifiAction;
  readonly id: string;
}

export interface WifiActionsDeps {
  readonly api: Pick<NodeApi, "serviceValue" | "bestBlock">;
  readonly service: IngestService;
  /** Submits an item as a package of its own and follows it (Registrations.submitItem). */
  submitItem(item: ItemSubmission, onEnd: (end: ItemEnd) => Promise<{ readonly applied: number; readonly refused: number }>): Promise<Uint8Array>;
  /** Action ids (tests give fixed ones); default 16 random bytes. */
  readonly newId?: () => string;
}

export class WifiActions {
  private readonly recent = new Map<string, ActionView>();
  private queue: Waiting[] = [];
  private timer: NodeJS.Timeout | null = null;
  private inFlight = 0;
  private readonly newId: () => string;

  constructor(private readonly deps: WifiActionsDeps) {
    this.newId = deps.newId ?? (() => randomBytes(16).toString("hex"));
  }

  /** Actions submitted and not yet decided (tests, metrics). */
  get pending(): number {
    return this.inFlight;
  }

  /** Queues an action; resolves with its view (pending) at once. JG_ERR_QUEUE_FULL past ACTIONS_IN_FLIGHT_MAX. */
  submit(request: ActionRequest): ActionView {
    if (this.inFlight >= ACTIONS_IN_FLIGHT_MAX) throw new JamgateError("JG_ERR_QUEUE_FULL", `${this.inFlight} operator actions in flight`);
    const id = this.newId();
    const action: WifiAction = { ...request, actionId: id } as WifiAction;
    const view: ActionView = { action: id, kind: KIND_OF[request.type], status: "pending" };
    this.inFlight++;
    this.recent.set(id, view);
    this.queue.push({ action, id });
    if (this.queue.length >= ACTIONS_PER_ITEM_MAX) this.flush();
    else this.timer ??= setTimeout(() => this.flush(), ACTION_BATCH_MS);
    return view;
  }

  /** Stops the batch timer; what is queued is not submitted (the operator's requests were answered pending: a restart forgets them, as it forgets pending registrations). */
  stop(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  private flush(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    const batch = this.queue.splice(0, ACTIONS_PER_ITEM_MAX);
    if (this.queue.length > 0) this.timer = setTimeout(() => this.flush(), 0);
    if (batch.length === 0) return;
    const { service } = this.deps;
    const payload = wifiActionsPayload(batch.map((w) => w.action));
    this.deps
      .submitItem({ service, kind: "actions", payload, accumulateGasLimit: wifiActionsGas(batch.length), count: batch.length }, (end) =>
        this.decide(batch, end),
      )
      .then(
        (hash) => {
          const packageHash = toHex(hash);
          for (const w of batch) {
            const view = this.recent.get(w.id);
            if (view?.status === "pending") this.recent.set(w.id, { ...view, packageHash });
          }
        },
        (error: unknown) => {
          const code = error instanceof JamgateError ? error.code : "JG_ERR_SETTLEMENT_FAILED";
          this.finish(batch, () => ({ status: "refused", code, detail: `not submitted: ${error instanceof Error ? error.message : String(error)}` }));
        },
      );
  }

  /** The verdicts of an ended package's actions, from the state of the block that accumulated it. */
  private async decide(batch: readonly Waiting[], end: ItemEnd): Promise<{ readonly applied: number; readonly refused: number }> {
    if (end.kind === "failed") {
      this.finish(batch, () => ({
        status: "refused",
        code: end.code,
        detail: `the package carrying it failed (${end.detail}); nothing of it was applied: submit it again`,
      }));
      return { applied: 0, refused: batch.length };
    }
    const verdicts = await Promise.all(batch.map((w) => this.verdictAt(end.block, w.id)));
    let applied = 0;
    this.finish(batch, (_w, i) => {
      const v = verdicts[i]!;
      if (v === null)
        return {
          status: "refused",
          code: "JG_ERR_SETTLEMENT_FAILED",
          detail: "accumulated without a verdict: the service's accumulate applied nothing of its package",
          slot: end.block.slot,
        };
      if (v.status === "applied") {
        applied++;
        return { status: "applied", slot: v.slot };
      }
      return { status: "refused", code: v.code ?? "JG_ERR_WIFI_BODY", detail: `refused by service ${this.deps.service.name}`, slot: v.slot };
    });
    return { applied, refused: batch.length - applied };
  }

  private async verdictAt(block: BlockDescriptor, id: string) {
    const value = await this.deps.api.serviceValue(block.headerHash, this.deps.service.serviceId, actionKey(id));
    return value === null ? null : decodeActionVerdict(value);
  }

  private finish(batch: readonly Waiting[], verdict: (w: Waiting, index: number) => Partial<ActionView>): void {
    batch.forEach((w, i) => {
      const view = this.recent.get(w.id);
      if (view !== undefined) this.recent.set(w.id, { ...view, ...verdict(w, i) });
    });
    this.inFlight -= batch.length;
    for (const [id, view] of this.recent) {
      if (this.recent.size <= RECENT_KEPT_MAX) break;
      if (view.status !== "pending") this.recent.delete(id);
    }
  }

  /** An action's view: the gateway's while it remembers it, else the service's verdict at the best block; null when neither knows it. */
  async view(id: string): Promise<ActionView | null> {
    const recent = this.recent.get(id);
    if (recent !== undefined) return recent;
    const best = await this.deps.api.bestBlock();
    const value = await this.deps.api.serviceValue(best.headerHash, this.deps.service.serviceId, actionKey(id));
    if (value === null) return null;
    const stored = decodeStoredAction(value);
    const verdict = decodeActionVerdict(value);
    if (!stored.ok || verdict === null) return null;
    const kind = KIND_OF_TYPE_BYTE[stored.value.action.type] ?? "topup";
    return verdict.status === "applied"
      ? { action: id, kind, status: "applied", slot: verdict.slot }
      : { action: id, kind, status: "refused", code: verdict.code ?? "JG_ERR_WIFI_BODY", slot: verdict.slot };
  }
}
