/**
 * The registry codes the device side reports (house style, "Errors: three kinds", kind 1). The
 * registry is devices/protocol/errors.ts (docs/errors.md), imported directly: `DeviceCode` is the
 * subset of `ErrorCode` a device meets, so a code missing from the registry does not compile.
 * errors.test.ts checks every code written in devices/ sources is one of these. Browser-safe.
 */
import type { ErrorCode } from "./protocol/errors.ts";

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
] as const satisfies readonly ErrorCode[];

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
