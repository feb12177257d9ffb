/**
 * The registry codes the device side reports (house style, "Errors: three kinds", kind 1). The
 * registry is node/errors.ts (docs/errors.md); devices/ may not import node/ (it runs in
 * browsers), so the codes are named here and errors.test.ts checks every one is in the registry.
 * Browser-safe.
 */
export const DEVICE_CODES = [
  "JG_ERR_CLI_ARGUMENT",
  "JG_ERR_QUEUE_FULL",
  "JG_ERR_ENVELOPE_OVERSIZE",
  "JG_ERR_ENVELOPE_KIND",
  "JG_ERR_ENVELOPE_REPLAY",
  "JG_ERR_SETTLEMENT_FAILED",
  "JG_ERR_MQTT_AUTH",
  "JG_ERR_MQTT_RATE",
  "JG_ERR_MQTT_TOPIC",
  "JG_ERR_DEVICE_UNREGISTERED",
  "JG_ERR_OPERATOR_TOKEN",
  "JG_ERR_RPC_CLOSED",
  "JG_ERR_RPC_TIMEOUT",
  "JG_ERR_RPC_REMOTE",
] as const;

export type DeviceCode = (typeof DEVICE_CODES)[number];

/** A coded problem as a value: a refusal returned by `send`, or a warning the client emits. */
export interface CodedProblem {
  readonly code: DeviceCode;
  readonly detail: string;
}

/** A coded error thrown at an edge that reports it (`DeviceClient.connect`, the CLI). */
export class DeviceSideError extends Error {
  constructor(
    readonly code: DeviceCode,
    readonly detail: string,
  ) {
    super(`${code}: ${detail}`);
    this.name = "DeviceSideError";
  }
}

/** Error codes a gateway sends that do not end an envelope: a resend it already has (answered by the first copy's receipt), or a settlement it retries. */
export const NON_FINAL_CODES: ReadonlySet<string> = new Set<DeviceCode>(["JG_ERR_ENVELOPE_REPLAY", "JG_ERR_SETTLEMENT_FAILED"]);
