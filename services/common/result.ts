/**
 * The one Result of services/common (house style, errors 2: expected outcomes are values, never
 * exceptions): decoders of untrusted bytes return it with a reason, and service logic returns it
 * with a Refusal, a registry code (services/common/errors.ts, docs/errors.md) and a detail, so the
 * gateway can forward the code to the device unchanged.
 */
import type { RejectionName } from "./errors.ts";

export type Result<T, E = string> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: E };

export function ok<T>(value: T): { ok: true; value: T } {
  return { ok: true, value };
}

export function fail<E>(error: E): { ok: false; error: E } {
  return { ok: false, error };
}

/** A refusal with its registry code (a RejectionName of services/common/errors.ts) and a detail. */
export interface Refusal {
  readonly code: RejectionName;
  readonly detail: string;
}

export function refuse(code: RejectionName, detail: string): { ok: false; error: Refusal } {
  return fail({ code, detail });
}

/**
 * A Result whose failure also says in words what was wrong (for logs and tests) beside its
 * machine-readable error (a body decoder's error name, a condensing step's): a Result<T, E> with a
 * detail, so code that only needs ok/value/error reads it as the one Result.
 */
export type DetailedResult<T, E> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: E; readonly detail: string };

export function failWith<E>(error: E, detail: string): { ok: false; error: E; detail: string } {
  return { ok: false, error, detail };
}
