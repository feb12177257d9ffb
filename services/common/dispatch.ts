/**
 * The dispatch every service that settles device envelopes repeats, written once:
 *
 * - refine (GP 14.3, Ψ_R of one work item): the item's first byte names its kind and picks the
 *   service's handler; the handler's output must fit W_R. An unknown kind, a payload that does not
 *   decode, or an output over W_R is a gateway bug and throws, failing the item.
 * - accumulate (GP 12, Ψ_A): the work results of a call are decoded in the order the node hands
 *   them over (a result that does not decode is a bug: the service's own refine made it; a transfer
 *   carries nothing to record, the node credits its amount), each with the outcome builder of its
 *   package; after the call's work, each package's outcome goes into the outcome FIFO for receipts
 *   (outcome.ts), in the order the packages were first seen.
 */
import type { AccumulateItem } from "../../node/service-api/index.ts";
import { toHex } from "./bytes.ts";
import { d, type Descriptor } from "./codec.ts";
import { ItemKind, W_R } from "./envelope.ts";
import { encodeOutcome, OutcomeBuilder, OutcomeFifo, type OutcomeHost, type PackageOutcome } from "./outcome.ts";
import type { Result } from "./result.ts";

/** A refine handler per item kind byte, each making the item's encoded output. */
export type RefineHandlers = Readonly<Record<number, (payload: Uint8Array) => Uint8Array>>;

/**
 * Runs the handler of the payload's kind byte and checks its output fits W_R (`tooBig` says what
 * makes an item's output too big). Throws, failing the package, on an unknown kind or an output
 * over W_R.
 */
export function refineItem(service: string, payload: Uint8Array, handlers: RefineHandlers, tooBig: string): Uint8Array {
  const kind = payload[0];
  const handler = kind === undefined ? undefined : handlers[kind];
  if (handler === undefined) throw new Error(`${service}: unknown item kind ${kind ?? "(empty payload)"}`);
  const bytes = handler(payload);
  if (bytes.length > W_R) throw new Error(`${service}: refine output of ${bytes.length} bytes > W_R = ${W_R}; ${tooBig}`);
  return bytes;
}

/**
 * A refine output told apart by the kind of the item it came from: u8 kind (ItemKind) ⌢ that
 * kind's output. Each variant describes what follows the kind byte; its values carry `kind`.
 */
export function itemOutputCodec<E extends { readonly kind: typeof ItemKind.envelopes }, R extends { readonly kind: typeof ItemKind.registrations }>(
  envelopes: Descriptor<E>,
  registrations: Descriptor<R>,
): Descriptor<E | R> {
  return d.union<E | R>(
    { [ItemKind.envelopes]: envelopes as Descriptor<E | R>, [ItemKind.registrations]: registrations as Descriptor<E | R> },
    (output) => output.kind,
    "refine output",
  );
}

/** The value of a decoded payload; a payload that does not decode is the gateway's bug and throws (refine fails the item). */
export function decodedOrThrow<T>(service: string, what: string, decoded: Result<T>): T {
  if (!decoded.ok) throw new Error(`${service}: ${what}: ${decoded.error}`);
  return decoded.value;
}

/** The outcome builders of one accumulate call's packages, by package hash, in the order first seen. */
export class PackageOutcomes {
  private readonly builders = new Map<string, OutcomeBuilder>();

  /** The builder of a package, made on its first item. */
  of(packageHash: Uint8Array): OutcomeBuilder {
    const hex = toHex(packageHash);
    let builder = this.builders.get(hex);
    if (builder === undefined) {
      builder = new OutcomeBuilder(packageHash);
      this.builders.set(hex, builder);
    }
    return builder;
  }

  get size(): number {
    return this.builders.size;
  }

  /**
   * Finishes each package's outcome at `host.slot`, hands it to `onOutcome` (for a service's
   * counters) and stores it in the outcome FIFO; writes nothing when the call had no package.
   */
  store(host: OutcomeHost & { readonly slot: number }, onOutcome?: (outcome: PackageOutcome) => void): void {
    if (this.builders.size === 0) return;
    const fifo = new OutcomeFifo(host);
    for (const builder of this.builders.values()) {
      const outcome = builder.finish(host.slot);
      onOutcome?.(outcome);
      fifo.push(builder.packageHash, encodeOutcome(outcome));
    }
    fifo.flush();
  }
}

/**
 * The work results among `items`, decoded, each with its package's outcome builder (made in
 * `packages`). Throws on a result that does not decode: the service's refine made it (a bug).
 */
export function* resultsOf<O>(
  service: string,
  items: readonly AccumulateItem[],
  decodeOutput: (bytes: Uint8Array) => Result<O>,
  packages: PackageOutcomes,
): Generator<{ readonly output: O; readonly outcome: OutcomeBuilder }> {
  for (const item of items) {
    if (item.kind !== "result") continue; // a transfer's amount is credited by the node; nothing to record
    const output = decodeOutput(item.output);
    if (!output.ok) throw new Error(`${service}: refine output does not decode: ${output.error}`); // a bug: our refine made it
    yield { output: output.value, outcome: packages.of(item.packageHash) };
  }
}
