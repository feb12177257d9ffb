/**
 * Seqs below a device's highest that are still told apart: 64. Every service that settles
 * envelopes keeps, per device, its highest settled seq and a 64-bit bitmap of the 64 below it (one
 * u64 in state, the anti-replay window of IPsec, RFC 4303 §3.4.3, and DTLS, RFC 6347 §4.1.2.6):
 * services/common/window.ts. So an envelope more than 64 below the highest is refused as too old
 * (JG_ERR_ENVELOPE_SEQ), the gateway judges seqs by the same window (gateway/window.ts), and
 * settlement keeps a device's seqs in flight within 64 of its lowest unsettled one so packages that
 * land in any order never push a seq out of it. Changing it changes the services' state layout.
 */
export const SEQ_WINDOW_SEQS = 64;
