/**
 * A row of a bulk registration: one device of `POST /v1/devices/bulk`'s `devices` array, and one
 * line of the file `jamgate device register --from FILE` reads (docs/protocol.md, "Registering a
 * fleet"). The gateway and the CLI check rows here, the same way, so a file the CLI takes is a
 * request the gateway takes. This is the row's shape only: whether a row's `deviceId` is its
 * key's needs BLAKE2b (devices/envelope.ts `deviceIdOf`), and whether a service takes a kind is
 * the gateway's to say.
 *
 * A row is an object of these fields and no others (a misspelt `houshold` is refused, not
 * ignored): `publicKey` (64 hex digits, either case; required), `kind` (DEVICE_KINDS; required),
 * `service` (a service's name), `household` (32 hex digits: an energy agent's meter), `deviceId`
 * (32 hex digits: checked against the key when given, so a file whose ids and keys went apart is
 * caught before anything is registered). Hex is answered in lowercase.
 */
import { DEVICE_KINDS, type DeviceKind } from "./device-kinds.ts";

/**
 * Rows in one `POST /v1/devices/bulk`: 5,000 rows are ~550 KB of JSON (at most ~1.3 MB with
 * every optional field) and ~3.4 packages of telemetry's 1,489 registrations, so a request is
 * answered in well under a second while two requests in flight keep the node's cores busy with
 * registrations (gateway/registration.ts REGISTRATION_PACKAGES_IN_FLIGHT_MAX).
 */
export const BULK_REGISTRATIONS_MAX = 5_000;

/** The largest `POST /v1/devices/bulk` body: BULK_REGISTRATIONS_MAX rows of at most ~260 bytes of JSON each (every field given), with room for whitespace. */
export const BULK_BODY_BYTES_MAX = 2 * 1024 * 1024;

export interface RegistrationRow {
  /** 64 lowercase hex digits. */
  readonly publicKey: string;
  readonly kind: DeviceKind;
  readonly service?: string;
  /** 32 lowercase hex digits. */
  readonly household?: string;
  /** 32 lowercase hex digits, to be checked against the key's id. */
  readonly deviceId?: string;
}

/** Why a row is refused: JG_ERR_DEVICE_KIND for a kind that is none of DEVICE_KINDS, JG_ERR_DEVICE_ROW for anything else. */
export interface RowProblem {
  readonly code: "JG_ERR_DEVICE_ROW" | "JG_ERR_DEVICE_KIND";
  readonly message: string;
}

const FIELDS: ReadonlySet<string> = new Set(["publicKey", "kind", "service", "household", "deviceId"]);
/** As `POST /v1/devices` takes a service's name. */
const SERVICE_NAME = /^[a-z][a-z0-9-]{0,31}$/;
const HEX_64 = /^[0-9a-fA-F]{64}$/;
const HEX_32 = /^[0-9a-fA-F]{32}$/;

const problem = (code: RowProblem["code"], message: string) => ({ ok: false as const, problem: { code, message } });

/** A quoted, shortened value for a message: rows come from files and requests, so nothing long is echoed. */
function shown(value: unknown): string {
  const text = typeof value === "string" ? JSON.stringify(value) : String(JSON.stringify(value) ?? value);
  return text.length > 40 ? `${text.slice(0, 37)}…` : text;
}

/** Checks one row; never throws. */
export function checkRegistrationRow(
  value: unknown,
): { readonly ok: true; readonly row: RegistrationRow } | { readonly ok: false; readonly problem: RowProblem } {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return problem("JG_ERR_DEVICE_ROW", "a row is a JSON object");
  const fields = value as Record<string, unknown>;
  for (const name of Object.keys(fields)) if (!FIELDS.has(name)) return problem("JG_ERR_DEVICE_ROW", `unknown field ${shown(name)}`);
  const { publicKey, kind, service, household, deviceId } = fields;
  if (publicKey === undefined) return problem("JG_ERR_DEVICE_ROW", "publicKey is missing");
  if (typeof publicKey !== "string" || !HEX_64.test(publicKey)) return problem("JG_ERR_DEVICE_ROW", `publicKey ${shown(publicKey)} is not 64 hex digits`);
  if (kind === undefined) return problem("JG_ERR_DEVICE_ROW", "kind is missing");
  if (typeof kind !== "string" || !(DEVICE_KINDS as readonly string[]).includes(kind))
    return problem("JG_ERR_DEVICE_KIND", `kind ${shown(kind)} is not ${DEVICE_KINDS.join(", ")}`);
  if (service !== undefined && (typeof service !== "string" || !SERVICE_NAME.test(service)))
    return problem("JG_ERR_DEVICE_ROW", `service ${shown(service)} is not a service's name`);
  if (household !== undefined && (typeof household !== "string" || !HEX_32.test(household)))
    return problem("JG_ERR_DEVICE_ROW", `household ${shown(household)} is not a device id (32 hex digits)`);
  if (deviceId !== undefined && (typeof deviceId !== "string" || !HEX_32.test(deviceId)))
    return problem("JG_ERR_DEVICE_ROW", `deviceId ${shown(deviceId)} is not a device id (32 hex digits)`);
  return {
    ok: true,
    row: {
      publicKey: publicKey.toLowerCase(),
      kind: kind as DeviceKind,
      ...(service === undefined ? {} : { service: service as string }),
      ...(household === undefined ? {} : { household: (household as string).toLowerCase() }),
      ...(deviceId === undefined ? {} : { deviceId: (deviceId as string).toLowerCase() }),
    },
  };
}
