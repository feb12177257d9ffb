/**
 * Refine of the wifi-billing service (GP 14.3, Ψ_R of one work item): stateless, on a core, in
 * parallel with other cores.
 *
 * Envelopes item: per envelope, the router's envelope (device id against its key, Ed25519
 * signature), its kind (`router.usage`), its body (body.ts) and, when the client countersigned, the
 * voucher: the client key must be the named client account's (its device id is H(key)'s first 16
 * bytes, so accumulate needs no key) and its signature must verify over the update's router,
 * session, cumulative octets, seconds and `prev`. Then per session, in seq order: a Start only as
 * the session's first update (its `prev` zero bytes), nothing after a Stop, one client, each
 * update's `prev` the voucher hash of the update before it, and the 64-bit counters (octets after
 * gigaword wrap, and seconds) never going backwards, so a wrong wrap (octets falling while the
 * gigawords stay) reads as going backwards. Each session's accepted updates condense into one
 * delta (output.ts): its first `prev`, its first and last counters, its last voucher hash, Start /
 * Stop, and the seqs it covers. A delta's last update decides whether it is client-confirmed (a
 * voucher signs the cumulative counters, so it confirms everything before it), so a router-attested
 * update after a client-signed one starts a new delta of the session: the signed part is billed
 * the same whether or not the attested tail came in the same package. A refused envelope is a rejection with its code; the session's later updates
 * then chain to nothing and are refused too (JG_ERR_WIFI_VOUCHER_CHAIN), so what is billed is
 * always a chain the router and, where it signed, the client agree on.
 *
 * Registrations item: each key's device id (H(key)'s first 16 bytes) with the registration.
 * Actions item: checked and passed on; accumulate applies them.
 *
 * A malformed payload is a gateway bug and fails the item (throws). Deterministic: integers only.
 */
import type { RefineContext } from "../../node/service-api/index.ts";
import { bytesEqual, toHex } from "../common/bytes.ts";
import { decodedOrThrow, refineItem } from "../common/dispatch.ts";
import { CommitmentLeaves, DEVICE_ID_BYTES, type RawDeviceId, type SeqRejection, toRuns } from "../common/envelope.ts";
import { REJECTION_CODES, type RejectionCode } from "../common/errors.ts";
import { decodeUsageBody, UsageStatus } from "./body.ts";
import { type ActionsOutput, encodeRefineOutput, type EnvelopesOutput, type RegistrationsOutput, type RouterOutput, type SessionDelta } from "./output.ts";
import { decodeActionsItem, decodeEnvelopesItem, decodeRegistrationsItem, ROUTER_USAGE_KIND, WifiItemKind } from "./payload.ts";
import { FIRST_PREV, voucherSigningBytes } from "./voucher.ts";

const SERVICE = "wifi-billing";

/** The hash and signature check refine needs from its host (both gas-charged there). */
export type RefineHost = Pick<RefineContext, "hash" | "verifyEd25519">;

export function refine(payload: Uint8Array, context: RefineContext): Uint8Array {
  // The item bounds (payload.ts) keep every output within W_R; past it is a bug.
  return refineItem(
    SERVICE,
    payload,
    {
      [WifiItemKind.envelopes]: (p) => encodeRefineOutput(refineEnvelopes(p, context)),
      [WifiItemKind.registrations]: (p) => encodeRefineOutput(refineRegistrations(p, context)),
      [WifiItemKind.actions]: (p) => encodeRefineOutput(refineActions(p)),
    },
    "the item has more envelopes or routers than ENVELOPES_PER_ITEM_MAX and ENVELOPE_DEVICES_PER_ITEM_MAX allow",
  );
}

/** A session's delta while refine builds it. */
interface OpenDelta {
  readonly session: Uint8Array;
  readonly client: RawDeviceId;
  readonly firstPrev: Uint8Array;
  readonly started: boolean;
  readonly first: { readonly inputOctets: bigint; readonly outputOctets: bigint; readonly seconds: number };
  lastHash: Uint8Array;
  inputOctets: bigint;
  outputOctets: bigint;
  seconds: number;
  stopped: boolean;
  attested: boolean;
  cause: number;
  readonly seqs: bigint[];
}

export function refineEnvelopes(payload: Uint8Array, host: RefineHost): EnvelopesOutput {
  const records = decodedOrThrow(SERVICE, "envelopes item", decodeEnvelopesItem(payload));
  const leaves = new CommitmentLeaves(records.length);
  const routers: RouterOutput[] = [];
  let i = 0;
  while (i < records.length) {
    const router: RawDeviceId = records[i]!.fields.deviceId;
    const rejected: SeqRejection[] = [];
    const deltas: OpenDelta[] = []; // in the order they were opened
    const open = new Map<string, OpenDelta>(); // each session's last delta, by session hex
    let idOfKey: Uint8Array | null = null;
    for (; i < records.length && bytesEqual(records[i]!.fields.deviceId, router); i++) {
      const record = records[i]!;
      const { seq, kind, body } = record.fields;
      const reject = (code: RejectionCode) => void rejected.push({ seq, code });
      // Records of a device are adjacent and share its key (the gateway sends the registered one).
      if (idOfKey === null || !bytesEqual(records[i - 1]!.publicKey, record.publicKey)) idOfKey = host.hash(record.publicKey).subarray(0, DEVICE_ID_BYTES);
      if (!bytesEqual(idOfKey, router)) {
        reject(REJECTION_CODES.JG_ERR_ENVELOPE_DEVICE);
        continue;
      }
      if (!host.verifyEd25519(record.publicKey, record.signingBytes, record.signature)) {
        reject(REJECTION_CODES.JG_ERR_ENVELOPE_SIGNATURE);
        continue;
      }
      if (kind !== ROUTER_USAGE_KIND) {
        reject(REJECTION_CODES.JG_ERR_WIFI_BODY);
        continue;
      }
      const usage = decodeUsageBody(body);
      if (!usage.ok) {
        reject(REJECTION_CODES.JG_ERR_WIFI_BODY);
        continue;
      }
      const u = usage.value;
      const signingBytes = voucherSigningBytes({
        router,
        session: u.session,
        inputOctets: u.inputOctets,
        outputOctets: u.outputOctets,
        seconds: u.seconds,
        prev: u.prev,
      });
      if (u.voucher !== null) {
        if (!bytesEqual(host.hash(u.voucher.clientKey).subarray(0, DEVICE_ID_BYTES), u.client)) {
          reject(REJECTION_CODES.JG_ERR_WIFI_CLIENT);
          continue;
        }
        if (!host.verifyEd25519(u.voucher.clientKey, signingBytes, u.voucher.signature)) {
          reject(REJECTION_CODES.JG_ERR_WIFI_VOUCHER_SIGNATURE);
          continue;
        }
      }
      const sessionHex = toHex(u.session);
      const last = open.get(sessionHex);
      const stopped = u.status === UsageStatus.stop;
      const opened = (d: OpenDelta) => {
        deltas.push(d);
        open.set(sessionHex, d);
      };
      if (last === undefined) {
        if (u.status === UsageStatus.start && !bytesEqual(u.prev, FIRST_PREV)) {
          reject(REJECTION_CODES.JG_ERR_WIFI_VOUCHER_CHAIN);
          continue;
        }
        opened({
          session: u.session.slice(),
          client: u.client.slice() as RawDeviceId,
          firstPrev: u.prev.slice(),
          started: u.status === UsageStatus.start,
          first: { inputOctets: u.inputOctets, outputOctets: u.outputOctets, seconds: u.seconds },
          lastHash: host.hash(signingBytes),
          inputOctets: u.inputOctets,
          outputOctets: u.outputOctets,
          seconds: u.seconds,
          stopped,
          attested: u.voucher === null,
          cause: u.cause,
          seqs: [seq],
        });
      } else {
        if (last.stopped || u.status === UsageStatus.start) {
          reject(REJECTION_CODES.JG_ERR_WIFI_SESSION);
          continue;
        }
        if (!bytesEqual(u.client, last.client)) {
          reject(REJECTION_CODES.JG_ERR_WIFI_CLIENT);
          continue;
        }
        if (!bytesEqual(u.prev, last.lastHash)) {
          reject(REJECTION_CODES.JG_ERR_WIFI_VOUCHER_CHAIN);
          continue;
        }
        if (u.inputOctets < last.inputOctets || u.outputOctets < last.outputOctets || u.seconds < last.seconds) {
          reject(REJECTION_CODES.JG_ERR_WIFI_COUNTER);
          continue;
        }
        const lastHash = host.hash(signingBytes);
        if (u.voucher === null && !last.attested) {
          // A router-attested update after a client-signed one: a delta of its own (see above).
          opened({
            session: last.session,
            client: last.client,
            firstPrev: last.lastHash,
            started: false,
            first: { inputOctets: u.inputOctets, outputOctets: u.outputOctets, seconds: u.seconds },
            lastHash,
            inputOctets: u.inputOctets,
            outputOctets: u.outputOctets,
            seconds: u.seconds,
            stopped,
            attested: true,
            cause: u.cause,
            seqs: [seq],
          });
        } else {
          last.lastHash = lastHash;
          last.inputOctets = u.inputOctets;
          last.outputOctets = u.outputOctets;
          last.seconds = u.seconds;
          last.stopped = stopped;
          last.attested = u.voucher === null;
          last.cause = u.cause;
          last.seqs.push(seq);
        }
      }
      leaves.add(router, seq, host.hash(body));
    }
    const sessions: SessionDelta[] = deltas.map((d) => ({
      session: d.session,
      client: d.client,
      firstPrev: d.firstPrev,
      lastHash: d.lastHash,
      first: d.first,
      inputOctets: d.inputOctets,
      outputOctets: d.outputOctets,
      seconds: d.seconds,
      started: d.started,
      stopped: d.stopped,
      attested: d.attested,
      cause: d.cause,
      seqs: toRuns(d.seqs),
    }));
    routers.push({ router, rejected, sessions });
  }
  return { kind: WifiItemKind.envelopes, commitment: leaves.commitment((data) => host.hash(data)), routers };
}

export function refineRegistrations(payload: Uint8Array, host: RefineHost): RegistrationsOutput {
  const registrations = decodedOrThrow(SERVICE, "registrations item", decodeRegistrationsItem(payload));
  return {
    kind: WifiItemKind.registrations,
    registrations: registrations.map((r) => ({
      deviceId: host.hash(r.publicKey).slice(0, DEVICE_ID_BYTES) as RawDeviceId,
      publicKey: r.publicKey.slice(),
      kind: r.kind,
      router: r.router,
    })),
  };
}

export function refineActions(payload: Uint8Array): ActionsOutput {
  return { kind: WifiItemKind.actions, actions: decodedOrThrow(SERVICE, "actions item", decodeActionsItem(payload)) };
}
