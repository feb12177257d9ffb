/**
 * Control messages to routers (docs/protocol.md, the control topic): when the ledger index takes
 * a wifi-billing entry of reason `balance-exhausted` (the client's balance could not pay all of a
 * session's usage: the service billed what was left and marked the session exhausted), the
 * router is told to disconnect the session, on `devices/{router}/down/control` (QoS 1, JSON):
 *
 *     {"type":"disconnect","session":"<32 hex>","client":"<32 hex>","reason":"balance-exhausted"}
 *
 * Driven by the index's entry events (ledger/index.ts emits each entry once, when it is written,
 * never again after a restart), so a message goes once per exhausted update, also for those the
 * index catches up on after a stop: such a session is still one to cut. A router that is not
 * connected gets it from its persistent session when it comes back, within the broker's bound
 * (gateway/README.md, "undelivered messages per persistent session").
 */
import { tryAsDeviceId } from "../../devices/envelope.ts";
import type { EntryView, LedgerReader } from "../ledger/types.ts";

export const CONTROL_CHANNEL = "control";

/** The control topic of a router. */
export function controlTopic(routerId: string): string {
  return `devices/${routerId}/down/${CONTROL_CHANNEL}`;
}

export interface DisconnectMessage {
  readonly type: "disconnect";
  readonly session: string;
  readonly client: string;
  readonly reason: "balance-exhausted";
}

/** The control message an entry calls for, with the router it goes to; null for any other entry. */
export function controlMessageOf(entry: EntryView, wifiServiceName: string): { readonly router: string; readonly message: DisconnectMessage } | null {
  if (entry.service !== wifiServiceName || entry.kind !== "balance-exhausted") return null;
  if (entry.router == null || entry.session == null || entry.client == null || tryAsDeviceId(entry.router) === null) return null;
  return { router: entry.router, message: { type: "disconnect", session: entry.session, client: entry.client, reason: "balance-exhausted" } };
}

export interface WifiControlDeps {
  readonly ledger: Pick<LedgerReader, "subscribe">;
  readonly serviceName: string;
  /** Publishes on the router's `down/control` topic (gateway.ts publishControl). */
  publish(routerId: string, payload: Uint8Array): void;
  readonly logger?: { info(o: object, m: string): void };
}

/** Follows the ledger index's entries and tells routers to disconnect exhausted sessions. */
export class WifiControl {
  private unsubscribe: (() => void) | null = null;
  /** Messages sent since start (tests, logs). */
  sent = 0;

  constructor(private readonly deps: WifiControlDeps) {}

  start(): void {
    this.unsubscribe ??= this.deps.ledger.subscribe((event) => {
      if (event.kind !== "entry") return;
      const control = controlMessageOf(event.entry, this.deps.serviceName);
      if (control === null) return;
      this.deps.publish(control.router, new TextEncoder().encode(JSON.stringify(control.message)));
      this.sent++;
      this.deps.logger?.info(
        { router: control.router, session: control.message.session, client: control.message.client },
        "told a router to disconnect a session: the client's balance ran out",
      );
    });
  }

  stop(): void {
    this.unsubscribe?.();
    this.unsubscribe = null;
  }
}
