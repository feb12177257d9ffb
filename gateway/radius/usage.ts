/**
 * A RADIUS update as the router's signed `router.usage` envelope (contract section 2): the body
 * from devices/wifi.ts without a voucher (router-attested), chained by `prev` to the session's
 * previous update, signed with the key the gateway holds for the router.
 */
import { ENVELOPE_VERSION, encodeEnvelope, signEnvelope } from "../../devices/envelope.ts";
import { encodeUsageBody, voucherHash } from "../../devices/wifi.ts";
import { type AccountingUsage, octets64 } from "./packet.ts";
import type { RadiusRouter } from "./routers.ts";

/** The envelope's wire bytes, and the voucher hash of its update (the session's next `prev`). */
export function usageEnvelope(router: RadiusRouter, seq: number, timeMs: number, session: Uint8Array, usage: AccountingUsage, prev: Uint8Array): { readonly envelope: Uint8Array; readonly hash: Uint8Array } {
  const { status, inOctets, outOctets, inGigawords, outGigawords, seconds, cause } = usage;
  const body = encodeUsageBody({ session, client: usage.clientId, status, inOctets, outOctets, inGigawords, outGigawords, seconds, cause, prev });
  const hash = voucherHash({ router: router.routerId, session, inputOctets: octets64(inOctets, inGigawords), outputOctets: octets64(outOctets, outGigawords), seconds, prev });
  const envelope = signEnvelope({ version: ENVELOPE_VERSION, device: router.routerId, seq, kind: "router.usage", timeMs, body }, router.secretKey);
  return { envelope: encodeEnvelope(envelope), hash };
}
