/**
 * Builders for the RADIUS tests: Accounting-Requests as a NAS sends them, made by the `radius`
 * codec's `encode` (which computes the Request Authenticator of RFC 2866 §3 itself).
 */
import radius from "radius";

export const TEST_ROUTER_ID = "00112233445566778899aabbccddeeff";
export const TEST_CLIENT_ID = "ffeeddccbbaa99887766554433221100";
export const TEST_SECRET = "a-test-shared-secret-of-32-chars";

export interface TestUsage {
  readonly router?: string;
  readonly status?: string | number;
  readonly session?: string;
  readonly user?: string;
  readonly inOctets?: number;
  readonly outOctets?: number;
  readonly inGigawords?: number;
  readonly outGigawords?: number;
  readonly seconds?: number;
  readonly cause?: number;
  /** More attributes, in the codec's form ([name or type, value]). */
  readonly extra?: readonly (readonly [string | number, unknown])[];
  readonly identifier?: number;
}

/** An Accounting-Request with the given attributes (absent ones left out), signed with `secret`. */
export function accountingRequest(secret: string, u: TestUsage = {}): Buffer {
  const attributes: [string | number, unknown][] = [];
  const add = (name: string, value: unknown) => value !== undefined && attributes.push([name, value]);
  add("NAS-Identifier", u.router ?? TEST_ROUTER_ID);
  add("Acct-Status-Type", u.status ?? "Start");
  add("Acct-Session-Id", u.session ?? "session-1");
  add("User-Name", u.user ?? TEST_CLIENT_ID);
  add("Acct-Input-Octets", u.inOctets);
  add("Acct-Output-Octets", u.outOctets);
  add("Acct-Input-Gigawords", u.inGigawords);
  add("Acct-Output-Gigawords", u.outGigawords);
  add("Acct-Session-Time", u.seconds);
  add("Acct-Terminate-Cause", u.cause);
  for (const [name, value] of u.extra ?? []) attributes.push([name, value]);
  return radius.encode({ code: "Accounting-Request", secret, identifier: u.identifier ?? 1, attributes });
}
