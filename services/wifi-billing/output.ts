/**
 * Refine outputs of the wifi-billing service (the work result's ok blob, GP 11.1.4), refine →
 * accumulate: what is left of an item once its envelopes are verified and condensed. Per router,
 * per session, one delta: the chain's ends (the first update's `prev`, the last update's voucher
 * hash), the last cumulative counters, and which seqs it covers; the raw updates and vouchers stay
 * in the data-availability layer, committed to by `commitment`.
 *
 * Envelopes output: u8 0 ⌢ commitment 32 ⌢ u16 n ⌢ n × router
 *   router: routerId 16 ⌢ u16 r ⌢ r × (u64 seq ⌢ u8 code) ⌢ u16 s ⌢ s × delta
 *   delta: session 16 ⌢ client 16 ⌢ firstPrev 32 ⌢ lastHash 32 ⌢ counters first ⌢ counters last
 *     ⌢ u8 flags ⌢ u32 cause ⌢ u16 runs ⌢ runs × (u64 start ⌢ u32 length)
 *   counters: u64 inputOctets ⌢ u64 outputOctets ⌢ u32 seconds (cumulative, after gigaword wrap)
 *   flags: 1 started (the first update is a Start), 2 stopped (the last is a Stop), 4 attested (the
 *     last update carries no client voucher: the counters are the router's word alone)
 * A session's deltas come in the order its updates were sent; a session has several in one item
 * only when a router-attested update follows a client-signed one (refine.ts): each delta's last
 * update decides whether all of it is client-confirmed.
 * Registrations output: u8 1 ⌢ u32 n ⌢ n × (deviceId 16 ⌢ the registration as in the item)
 * Actions output: u8 2 ⌢ u32 n ⌢ n × action (as in the item)
 */
import { fail, ok, Reader, type Result, Writer } from "../common/bytes.ts";
import { DEVICE_ID_BYTES, ED25519_PUBLIC_KEY_BYTES, type RawDeviceId, type SeqRejection, type SeqRun } from "../common/envelope.ts";
import { isRejectionCode } from "../common/errors.ts";
import {
  ACTION_RECORD_BYTES,
  type ActionRecord,
  readActionRecords,
  ROUTER_NAME_BYTES_MAX,
  type RouterTermsRecord,
  WifiDeviceKind,
  WifiItemKind,
} from "./payload.ts";
import { SESSION_ID_BYTES } from "./storage.ts";
import { VOUCHER_HASH_BYTES } from "./voucher.ts";

export const DeltaFlag = { started: 1, stopped: 2, attested: 4 } as const;

/** One session's updates of one item, condensed. */
export interface SessionDelta {
  readonly session: Uint8Array;
  readonly client: RawDeviceId;
  /** The `prev` of the delta's first update: accumulate checks it is the session's stored last hash. */
  readonly firstPrev: Uint8Array;
  /** The voucher hash of the delta's last update: the session's last hash once applied. */
  readonly lastHash: Uint8Array;
  /** The counters of the delta's first update: accumulate checks they do not go below the session's stored ones. */
  readonly first: { readonly inputOctets: bigint; readonly outputOctets: bigint; readonly seconds: number };
  /** The counters of the delta's last update. */
  readonly inputOctets: bigint;
  readonly outputOctets: bigint;
  readonly seconds: number;
  readonly started: boolean;
  readonly stopped: boolean;
  readonly attested: boolean;
  /** Acct-Terminate-Cause of the Stop; 0 when not stopped. */
  readonly cause: number;
  /** The router's seqs the delta covers: it settles, or is refused, as one. */
  readonly seqs: readonly SeqRun[];
}

export interface RouterOutput {
  readonly router: RawDeviceId;
  readonly rejected: readonly SeqRejection[];
  readonly sessions: readonly SessionDelta[];
}

export interface EnvelopesOutput {
  readonly kind: typeof WifiItemKind.envelopes;
  readonly commitment: Uint8Array;
  readonly routers: readonly RouterOutput[];
}

export interface RegisteredOutput {
  readonly deviceId: RawDeviceId;
  readonly publicKey: Uint8Array;
  readonly kind: WifiDeviceKind;
  readonly router: RouterTermsRecord | null;
}

export interface RegistrationsOutput {
  readonly kind: typeof WifiItemKind.registrations;
  readonly registrations: readonly RegisteredOutput[];
}

export interface ActionsOutput {
  readonly kind: typeof WifiItemKind.actions;
  readonly actions: readonly ActionRecord[];
}

export type RefineOutput = EnvelopesOutput | RegistrationsOutput | ActionsOutput;

const RUN_BYTES = 8 + 4;
const REJECTION_BYTES = 8 + 1;
const ROUTER_HEADER_BYTES = DEVICE_ID_BYTES + 2 + 2;
const COUNTERS_BYTES = 8 + 8 + 4;
const DELTA_FIXED_BYTES = SESSION_ID_BYTES + DEVICE_ID_BYTES + VOUCHER_HASH_BYTES + VOUCHER_HASH_BYTES + 2 * COUNTERS_BYTES + 1 + 4 + 2;
/** The most one envelope adds to an envelopes output: a delta of its own with one run of seqs (a refusal is 9 bytes). */
export const SESSION_DELTA_BYTES_MAX = DELTA_FIXED_BYTES + RUN_BYTES;
export const ENVELOPES_OUTPUT_HEADER_BYTES = 1 + 32 + 2;
export { ROUTER_HEADER_BYTES };

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder("utf-8", { fatal: true });

export function encodeRefineOutput(output: RefineOutput): Uint8Array {
  switch (output.kind) {
    case WifiItemKind.envelopes:
      return encodeEnvelopesOutput(output);
    case WifiItemKind.registrations:
      return encodeRegistrationsOutput(output);
    case WifiItemKind.actions: {
      const w = new Writer(1 + 4 + ACTION_RECORD_BYTES * output.actions.length).u8(WifiItemKind.actions).u32(output.actions.length);
      for (const a of output.actions) w.bytes(a.actionId).u8(a.type).bytes(a.target).u64(a.value);
      return w.finish();
    }
  }
}

function encodeEnvelopesOutput(output: EnvelopesOutput): Uint8Array {
  let size = ENVELOPES_OUTPUT_HEADER_BYTES;
  for (const r of output.routers) {
    size += ROUTER_HEADER_BYTES + REJECTION_BYTES * r.rejected.length;
    for (const d of r.sessions) size += DELTA_FIXED_BYTES + RUN_BYTES * d.seqs.length;
  }
  const w = new Writer(size).u8(WifiItemKind.envelopes).bytes(output.commitment).u16(output.routers.length);
  for (const r of output.routers) {
    w.bytes(r.router).u16(r.rejected.length);
    for (const x of r.rejected) w.u64(x.seq).u8(x.code);
    w.u16(r.sessions.length);
    for (const d of r.sessions) {
      w.bytes(d.session)
        .bytes(d.client)
        .bytes(d.firstPrev)
        .bytes(d.lastHash)
        .u64(d.first.inputOctets)
        .u64(d.first.outputOctets)
        .u32(d.first.seconds)
        .u64(d.inputOctets)
        .u64(d.outputOctets)
        .u32(d.seconds)
        .u8((d.started ? DeltaFlag.started : 0) | (d.stopped ? DeltaFlag.stopped : 0) | (d.attested ? DeltaFlag.attested : 0))
        .u32(d.cause)
        .u16(d.seqs.length);
      for (const run of d.seqs) w.u64(run.start).u32(run.length);
    }
  }
  return w.finish();
}

function encodeRegistrationsOutput(output: RegistrationsOutput): Uint8Array {
  const names = output.registrations.map((r) => (r.router === null ? null : textEncoder.encode(r.router.name)));
  let size = 1 + 4;
  for (const name of names) size += DEVICE_ID_BYTES + ED25519_PUBLIC_KEY_BYTES + 1 + (name === null ? 0 : DEVICE_ID_BYTES + 8 + 8 + 8 + 1 + 1 + name.length);
  const w = new Writer(size).u8(WifiItemKind.registrations).u32(output.registrations.length);
  for (const [i, r] of output.registrations.entries()) {
    w.bytes(r.deviceId).bytes(r.publicKey).u8(r.kind);
    const t = r.router;
    if (t === null) continue;
    const name = names[i]!;
    w.bytes(t.owner)
      .u64(t.priceMicrosPerGb)
      .u64(t.stakeMicros)
      .u64(t.capacityBitsPerSecond)
      .u8(t.attested ? 1 : 0)
      .u8(name.length)
      .bytes(name);
  }
  return w.finish();
}

/** Decodes a refine output; never throws (accumulate treats a failure as a bug: its own refine made it). */
export function decodeRefineOutput(bytes: Uint8Array): Result<RefineOutput> {
  const r = new Reader(bytes);
  const kind = r.u8();
  let output: RefineOutput;
  if (kind === WifiItemKind.envelopes) {
    const commitment = r.bytes(32).slice();
    const routerCount = r.u16();
    const routers: RouterOutput[] = [];
    for (let i = 0; i < routerCount && !r.failed; i++) {
      const router = r.bytes(DEVICE_ID_BYTES).slice() as RawDeviceId;
      const rejected: SeqRejection[] = [];
      const rejectedCount = r.u16();
      for (let k = 0; k < rejectedCount && !r.failed; k++) {
        const seq = r.u64();
        const code = r.u8();
        if (!isRejectionCode(code)) return fail(`router ${i}: rejection code ${code}`);
        rejected.push({ seq, code });
      }
      const sessions: SessionDelta[] = [];
      const sessionCount = r.u16();
      for (let k = 0; k < sessionCount && !r.failed; k++) {
        const session = r.bytes(SESSION_ID_BYTES).slice();
        const client = r.bytes(DEVICE_ID_BYTES).slice() as RawDeviceId;
        const firstPrev = r.bytes(VOUCHER_HASH_BYTES).slice();
        const lastHash = r.bytes(VOUCHER_HASH_BYTES).slice();
        const first = { inputOctets: r.u64(), outputOctets: r.u64(), seconds: r.u32() };
        const inputOctets = r.u64();
        const outputOctets = r.u64();
        const seconds = r.u32();
        const flags = r.u8();
        const cause = r.u32();
        const seqs: SeqRun[] = [];
        const runCount = r.u16();
        for (let n = 0; n < runCount && !r.failed; n++) seqs.push({ start: r.u64(), length: r.u32() });
        if (flags > 7) return fail(`router ${i}, delta ${k}: flags ${flags}`);
        sessions.push({
          session,
          client,
          firstPrev,
          lastHash,
          first,
          inputOctets,
          outputOctets,
          seconds,
          started: (flags & DeltaFlag.started) !== 0,
          stopped: (flags & DeltaFlag.stopped) !== 0,
          attested: (flags & DeltaFlag.attested) !== 0,
          cause,
          seqs,
        });
      }
      routers.push({ router, rejected, sessions });
    }
    output = { kind, commitment, routers };
  } else if (kind === WifiItemKind.registrations) {
    const count = r.u32();
    const registrations: RegisteredOutput[] = [];
    for (let i = 0; i < count && !r.failed; i++) {
      const deviceId = r.bytes(DEVICE_ID_BYTES).slice() as RawDeviceId;
      const publicKey = r.bytes(ED25519_PUBLIC_KEY_BYTES).slice();
      const deviceKind = r.u8();
      if (deviceKind === WifiDeviceKind.client) {
        registrations.push({ deviceId, publicKey, kind: deviceKind, router: null });
        continue;
      }
      if (deviceKind !== WifiDeviceKind.router) return fail(`registration ${i}: kind ${deviceKind}`);
      const owner = r.bytes(DEVICE_ID_BYTES).slice() as RawDeviceId;
      const priceMicrosPerGb = r.u64();
      const stakeMicros = r.u64();
      const capacityBitsPerSecond = r.u64();
      const attested = r.u8();
      const nameBytes = r.bytes(r.u8());
      if (attested > 1 || nameBytes.length > ROUTER_NAME_BYTES_MAX) return fail(`registration ${i} is corrupt`);
      let name: string;
      try {
        name = textDecoder.decode(nameBytes);
      } catch {
        return fail(`registration ${i}: name is not UTF-8`);
      }
      registrations.push({
        deviceId,
        publicKey,
        kind: deviceKind,
        router: { owner, priceMicrosPerGb, stakeMicros, capacityBitsPerSecond, attested: attested === 1, name },
      });
    }
    output = { kind, registrations };
  } else if (kind === WifiItemKind.actions) {
    const actions = readActionRecords(r, r.u32());
    if (!actions.ok) return actions;
    output = { kind, actions: actions.value };
  } else {
    return fail(r.failed ? "empty refine output" : `refine output kind ${kind}`);
  }
  if (!r.done) return fail(r.failed ? "refine output truncated" : `${r.remaining} bytes after the refine output`);
  return ok(output);
}
