/**
 * The kinds of envelope a device sends (docs/protocol.md): an envelope's `k` and the last level of
 * its up topic, checked by the envelope codec (../envelope.ts, which exports them too). Apart from
 * the codec so that a command's flags offer them without loading it and its crypto: `jamgate
 * --help` loads no package but commander (scripts/cli-startup.test.ts).
 */

/** What a device sends. `meter.reset`: an energy-trading meter's new counters after its counter was replaced or reset (docs/protocol.md). */
export const ENVELOPE_KINDS = ["meter.reading", "inverter.reading", "router.usage", "client.usage", "agent.order", "meter.reset"] as const;
export type EnvelopeKind = (typeof ENVELOPE_KINDS)[number];
