/**
 * What a simulated router puts on the wire for one step of a session (fraud.ts `Step`), built
 * with the router SDK (devices/wifi.ts): a `router.usage` body for a native router, an
 * Accounting-Request (RFC 2866 §4.1, encoded by the `radius` codec, which also computes the
 * Request Authenticator of §3) for a RADIUS one.
 */
import radius from "radius";
import type { DeviceKey } from "../../devices/keys.ts";
import { encodeUsageBody, RouterSession, signVoucher, splitOctets, UsageStatus, voucherHash, type VoucherFields } from "../../devices/wifi.ts";
import type { Step } from "./fraud.ts";
import type { SessionPlan, UsageUpdate } from "./traffic.ts";

/** A native session's honest updates, made once: each update's body and voucher hash (the next one's `prev`). */
export interface NativeSession {
  readonly bodies: readonly Uint8Array[];
  readonly hashes: readonly Uint8Array[];
  /** The `prev` of update i: FIRST_PREV for the Start. */
  prevOf(i: number): Uint8Array;
}

const counters = (u: UsageUpdate) => ({ inputOctets: BigInt(u.inputOctets), outputOctets: BigInt(u.outputOctets), seconds: u.seconds });

/**
 * Every update of a native session through one RouterSession, the client countersigning each
 * (or not: `strip`, the router dropped the vouchers).
 */
export function nativeSession(routerId: string, session: SessionPlan, sessionId: Uint8Array, client: DeviceKey, strip: boolean): NativeSession {
  const rs = new RouterSession(routerId, sessionId, client.deviceId);
  const bodies: Uint8Array[] = [];
  const hashes: Uint8Array[] = [];
  const prevs: Uint8Array[] = [];
  for (const u of session.updates) {
    const c = counters(u);
    prevs.push(rs.lastVoucherHash);
    const voucher = strip ? {} : { voucher: signVoucher(rs.voucherFields(c), client.secretKey), clientKey: client.publicKey };
    const { body, hash } = rs.update(c, { status: u.status as UsageStatus, cause: u.cause, ...voucher });
    bodies.push(body);
    hashes.push(hash);
  }
  return { bodies, hashes, prevOf: (i) => prevs[i]! };
}

/** The body a native router sends for a fraud step (honest steps are `session.bodies[update]`). */
export function nativeFraudBody(
  step: Exclude<Step, { kind: "honest" | "radius-duplicate" | "radius-backwards" | "radius-forged" }>,
  routerId: string,
  plan: SessionPlan,
  sessionId: Uint8Array,
  native: NativeSession,
  client: DeviceKey,
): Uint8Array {
  switch (step.kind) {
    case "replay":
      return native.bodies[step.of]!;
    case "reorder":
      return native.bodies[step.update]!;
    case "inflate": {
      const u = plan.updates[step.update]!;
      const prev = native.prevOf(step.update);
      // The client signs what it used; the router claims more.
      const signed: VoucherFields = { router: routerId, session: sessionId, ...counters(u), prev };
      return usageBody(
        plan,
        step.update,
        client,
        sessionId,
        prev,
        BigInt(u.inputOctets + step.extraInputOctets),
        BigInt(u.outputOctets + step.extraOutputOctets),
        { voucher: signVoucher(signed, client.secretKey), clientKey: client.publicKey },
      );
    }
    case "backwards": {
      const u = plan.updates[step.after]!;
      // Chained on the last voucher, so only the counters are wrong; no client signs that.
      return usageBody(
        plan,
        step.after,
        client,
        sessionId,
        native.hashes[step.after]!,
        BigInt(u.inputOctets - step.minusInputOctets),
        BigInt(u.outputOctets),
        {},
        UsageStatus.interim,
      );
    }
  }
}

function usageBody(
  plan: SessionPlan,
  update: number,
  client: DeviceKey,
  session: Uint8Array,
  prev: Uint8Array,
  input: bigint,
  output: bigint,
  voucher: { voucher?: Uint8Array; clientKey?: Uint8Array },
  status?: UsageStatus,
): Uint8Array {
  const u = plan.updates[update]!;
  const i = splitOctets(input);
  const o = splitOctets(output);
  const s = status ?? (u.status as UsageStatus);
  return encodeUsageBody({
    session,
    client: client.deviceId,
    status: s,
    inOctets: i.octets,
    outOctets: o.octets,
    inGigawords: i.gigawords,
    outGigawords: o.gigawords,
    seconds: u.seconds,
    cause: s === UsageStatus.stop ? u.cause : 0,
    prev,
    ...voucher,
  });
}

/** The voucher hash of an update as the service chains it (for checks against its session record). */
export function updateHash(routerId: string, sessionId: Uint8Array, u: UsageUpdate, prev: Uint8Array): Uint8Array {
  return voucherHash({ router: routerId, session: sessionId, ...counters(u), prev });
}

const STATUS_NAMES = { 1: "Start", 2: "Stop", 3: "Interim-Update" } as const;

/** An Accounting-Request of a RADIUS session's update, as hostapd sends one. */
export function accountingRequest(options: {
  readonly secret: string;
  readonly identifier: number;
  readonly routerId: string;
  readonly clientId: string;
  readonly acctSessionId: string;
  readonly update: UsageUpdate;
  readonly inputOctets?: number;
}): Buffer {
  const u = options.update;
  const i = splitOctets(BigInt(options.inputOctets ?? u.inputOctets));
  const o = splitOctets(BigInt(u.outputOctets));
  const attributes: [string, string | number][] = [
    ["NAS-Identifier", options.routerId],
    ["Acct-Status-Type", STATUS_NAMES[u.status]],
    ["Acct-Session-Id", options.acctSessionId],
    ["User-Name", options.clientId],
    ["Acct-Session-Time", u.seconds],
  ];
  // RFC 2866 §5.3–5.4: a Start carries no counters.
  if (u.status !== 1)
    attributes.push(
      ["Acct-Input-Octets", i.octets],
      ["Acct-Output-Octets", o.octets],
      ["Acct-Input-Gigawords", i.gigawords],
      ["Acct-Output-Gigawords", o.gigawords],
    );
  if (u.status === 2) attributes.push(["Acct-Terminate-Cause", u.cause]);
  return radius.encode({ code: "Accounting-Request", secret: options.secret, identifier: options.identifier, attributes });
}
