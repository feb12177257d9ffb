/**
 * The kinds a device registers as (docs/protocol.md "Registering"): what its envelopes may be and
 * which service settles them. The index is the kind's code in the telemetry service's device
 * records (services/telemetry/payload.ts, one u8 in state), so the list only ever grows at the end.
 */
export const DEVICE_KINDS = ["meter", "inverter", "router", "client", "agent"] as const;
export type DeviceKind = (typeof DEVICE_KINDS)[number];
