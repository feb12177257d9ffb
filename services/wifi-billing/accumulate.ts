/**
 * Accumulate of the wifi-billing service (GP 12, Ψ_A): sequential and stateful, called in every
 * block (the service is in χ_Z, always-accumulate) so stakes come back on the chain's clock.
 *
 * 1. Work results, in the order the node hands them over:
 *    - registrations: an account (kind client) starts with a zero balance; a router needs terms
 *      within their bounds (JG_ERR_WIFI_AMOUNT), a registered owner account (JG_ERR_WIFI_ACCOUNT)
 *      whose balance covers the stake (JG_ERR_WIFI_STAKE), which moves to the owner's locked;
 *    - operator actions, each once per id (JG_ERR_WIFI_REPLAY): top-up, price change (sessions
 *      started after it pay it), deregistration (usage refused from then on, JG_ERR_WIFI_ROUTER;
 *      the stake returns after the cool-down);
 *    - session deltas (refine's condensed usage), each settling or refused as one: the router
 *      registered and active, every seq new to its replay window, the client a registered account
 *      (JG_ERR_WIFI_CLIENT), the delta's first `prev` the session's stored last voucher hash
 *      (JG_ERR_WIFI_VOUCHER_CHAIN), a Start only for a new session and nothing for a stopped one
 *      (JG_ERR_WIFI_SESSION), the delta's first counters not below the stored ones (refine checked
 *      the rest go forward from it; JG_ERR_WIFI_COUNTER), octets × 8 within the stated capacity ×
 *      (seconds + 1) (JG_ERR_WIFI_CAPACITY), a Start within OPEN_SESSIONS_PER_ROUTER_MAX.
 * 2. Billing, on cumulative values so rounding never drifts: charged(total) = ⌊total × price /
 *    10^9⌋ at the session's start price; an update bills charged(input + output) less what the
 *    session was billed so far, at most the client's balance (then a `balance-exhausted` entry:
 *    the gateway tells the router to disconnect). The protocol fee is cumulative too:
 *    fee = ⌊billed × PROTOCOL_FEE_PPM / 10^6⌋ of the session's billed total, so however the updates
 *    are split into packages the same totals move. The owner gets amount − fee. A delta whose last
 *    update carries no client voucher, from a router whose owner did not choose attested billing,
 *    is `disputed`: the session advances, nothing is billed (a later voucher, which signs the
 *    cumulative counters, bills it then).
 * 3. The clock: stakes whose cool-down has ended return to their owners; ledger slots older than
 *    LEDGER_SLOTS_KEPT are deleted.
 *
 * Value is conserved: Σ balances + Σ locked + fees = Σ top-ups (stats.toppedUpMicros).
 * Deterministic: state changes depend only on the items, the slot and storage; integers only.
 */
import type { AccumulateHost, AccumulateItem } from "../../node/service-api/index.ts";
import { bytesEqual } from "../common/bytes.ts";
import { PackageOutcomes, resultsOf } from "../common/dispatch.ts";
import type { RawDeviceId } from "../common/envelope.ts";
import { REJECTION_CODES, type RejectionCode } from "../common/errors.ts";
import type { OutcomeBuilder, PackageOutcome } from "../common/outcome.ts";
import { Store } from "../common/store.ts";
import { EMPTY_WINDOW, windowAccepts, windowSettle } from "../common/window.ts";
import { LEDGER_PRUNES_PER_BLOCK_MAX, STAKE_RETURNS_PER_BLOCK_MAX } from "./gas.ts";
import { type ActionsOutput, decodeRefineOutput, type EnvelopesOutput, type RegistrationsOutput, type SessionDelta } from "./output.ts";
import {
  type ActionRecord,
  OCTETS_PER_GB,
  PRICE_MICROS_PER_GB_MAX,
  routerTermsProblem,
  TOPUP_MICROS_MAX,
  WifiActionType,
  WifiDeviceKind,
  WifiItemKind,
} from "./payload.ts";
import {
  accountDesc,
  accountKey,
  actionKey,
  actionRingEntryDesc,
  ACTIONS_KEPT,
  actionsKey,
  actionsSlotKey,
  CLOSED_SESSIONS_KEPT,
  closedEntryDesc,
  closedKey,
  closedSlotKey,
  configDesc,
  configKey,
  cooldownEntryDesc,
  cooldownEntryKey,
  cooldownKey,
  cooldownQueueDesc,
  countDesc,
  DEFAULT_CONFIG,
  deviceKey,
  deviceRecordDesc,
  EMPTY_COOLDOWN_QUEUE,
  EMPTY_STATS,
  feesKey,
  LEDGER_SLOTS_KEPT,
  ledgerDesc,
  type LedgerEntry,
  ledgerKey,
  microsDesc,
  PPM,
  progressDesc,
  progressKey,
  routerDesc,
  routerKey,
  sessionDesc,
  sessionKey,
  type SessionRecord,
  statsDesc,
  statsKey,
  storedActionDesc,
  type WifiStats,
} from "./storage.ts";
import { FIRST_PREV } from "./voucher.ts";

const SERVICE = "wifi-billing";

/**
 * Sessions open at once per router: a Start beyond it is refused (JG_ERR_WIFI_SESSION). Bounds the
 * state a router holds (a session is ~120 bytes) even if it never sends a Stop; a busy hotspot
 * serves a few hundred clients at once.
 */
export const OPEN_SESSIONS_PER_ROUTER_MAX = 1_024;
/**
 * Seconds of slack in the capacity check: Acct-Session-Time is whole seconds (truncated) while
 * octets count to the moment of the update, so a link at full rate can be up to a second ahead.
 */
export const CAPACITY_SLACK_SECONDS = 1n;

const ZERO_ID = new Uint8Array(16) as RawDeviceId;
const ZERO_SESSION = new Uint8Array(16);

/** ⌊total × price / 10^9⌋: what `total` octets cost at `priceMicrosPerGb`. */
export function chargedMicros(totalOctets: bigint, priceMicrosPerGb: bigint): bigint {
  return (totalOctets * priceMicrosPerGb) / OCTETS_PER_GB;
}

/** ⌊billed × ppm / 10^6⌋: the protocol fee of a session's billed total. */
export function feeMicros(billedMicros: bigint, feePpm: number): bigint {
  return (billedMicros * BigInt(feePpm)) / BigInt(PPM);
}

/** The rings' capacities: fixed for the life of a service's state (changing them would strand ring slots); smaller ones only in tests. */
export interface RingCapacities {
  readonly closedSessionsKept: number;
  readonly actionsKept: number;
}

export const RING_CAPACITIES: RingCapacities = { closedSessionsKept: CLOSED_SESSIONS_KEPT, actionsKept: ACTIONS_KEPT };

export function accumulate(items: readonly AccumulateItem[], host: AccumulateHost): void {
  accumulateWith(RING_CAPACITIES)(items, host);
}

/** Accumulate with other ring capacities (tests of eviction). */
export function accumulateWith(rings: RingCapacities): (items: readonly AccumulateItem[], host: AccumulateHost) => void {
  for (const [name, n] of Object.entries(rings)) if (!Number.isInteger(n) || n < 1) throw new Error(`${SERVICE}: ${name} ${n}`);
  return (items, host) => accumulateCall(items, host, rings);
}

function accumulateCall(items: readonly AccumulateItem[], host: AccumulateHost, rings: RingCapacities): void {
  const state = new WifiState(host, rings);
  const packages = new PackageOutcomes();
  for (const { output, outcome } of resultsOf(SERVICE, items, decodeRefineOutput, packages)) {
    if (output.kind === WifiItemKind.registrations) state.register(output, outcome);
    else if (output.kind === WifiItemKind.actions) state.applyActions(output);
    else state.applyEnvelopes(output, outcome);
  }
  state.runClock();
  packages.store(host, (outcome) => state.countOutcome(outcome));
  state.flush();
}

type StatsDelta = Partial<Omit<WifiStats, "refusalsByCode">>;

/** The service's storage regions for one accumulate call (services/common/store.ts): read through, written once at flush. */
function openRegions(host: AccumulateHost) {
  const store = new Store(host, SERVICE);
  return {
    store,
    config: store.cell(configKey, configDesc, DEFAULT_CONFIG),
    devices: store.map((id: Uint8Array) => deviceKey(id), deviceRecordDesc),
    accounts: store.map((id: Uint8Array) => accountKey(id), accountDesc),
    routers: store.map((id: Uint8Array) => routerKey(id), routerDesc),
    sessions: store.map((k: { readonly router: Uint8Array; readonly session: Uint8Array }) => sessionKey(k.router, k.session), sessionDesc),
    closedCount: store.cell(closedKey, countDesc, 0n),
    closedSlots: store.map(closedSlotKey, closedEntryDesc),
    actionCount: store.cell(actionsKey, countDesc, 0n),
    actionSlots: store.map(actionsSlotKey, actionRingEntryDesc),
    actions: store.map((id: Uint8Array) => actionKey(id), storedActionDesc),
    cooldown: store.cell(cooldownKey, cooldownQueueDesc, EMPTY_COOLDOWN_QUEUE),
    cooldownEntries: store.map(cooldownEntryKey, cooldownEntryDesc),
    ledger: store.map(ledgerKey, ledgerDesc),
    progress: store.cell(progressKey, progressDesc),
    fees: store.cell(feesKey, microsDesc, 0n),
    stats: store.cell(statsKey, statsDesc, EMPTY_STATS),
  };
}

class WifiState {
  private readonly r: ReturnType<typeof openRegions>;
  /** Ledger entries of this call, in the order written; appended to the slot's at flush. */
  private readonly entries: LedgerEntry[] = [];

  constructor(
    private readonly host: AccumulateHost,
    private readonly rings: RingCapacities,
  ) {
    this.r = openRegions(host);
  }

  // -------------------------------------------------------------------------------------------
  // Registrations.

  register(output: RegistrationsOutput, outcome: OutcomeBuilder): void {
    for (const r of output.registrations) {
      const refuse = (code: RejectionCode) => outcome.rejectRegistration(r.deviceId, code);
      if (this.r.devices.has(r.deviceId)) {
        refuse(REJECTION_CODES.JG_ERR_DEVICE_EXISTS);
        continue;
      }
      const slot = this.host.slot;
      if (r.kind === WifiDeviceKind.client) {
        this.r.devices.set(r.deviceId, { publicKey: r.publicKey, kind: r.kind, registeredSlot: slot, window: EMPTY_WINDOW, envelopesSettled: 0n });
        this.r.accounts.set(r.deviceId, { balanceMicros: 0n, lockedMicros: 0n, registeredSlot: slot });
        this.count({ accountsRegistered: 1n });
        outcome.settleRegistration();
        continue;
      }
      const terms = r.router!;
      const problem = routerTermsProblem(terms);
      if (problem !== null) {
        refuse(REJECTION_CODES[problem.code]);
        continue;
      }
      const owner = this.r.accounts.get(terms.owner);
      if (owner === null) {
        refuse(REJECTION_CODES.JG_ERR_WIFI_ACCOUNT);
        continue;
      }
      if (owner.balanceMicros < terms.stakeMicros) {
        refuse(REJECTION_CODES.JG_ERR_WIFI_STAKE);
        continue;
      }
      this.r.accounts.set(terms.owner, {
        ...owner,
        balanceMicros: owner.balanceMicros - terms.stakeMicros,
        lockedMicros: owner.lockedMicros + terms.stakeMicros,
      });
      this.r.devices.set(r.deviceId, { publicKey: r.publicKey, kind: r.kind, registeredSlot: slot, window: EMPTY_WINDOW, envelopesSettled: 0n });
      this.r.routers.set(r.deviceId, {
        owner: terms.owner,
        priceMicrosPerGb: terms.priceMicrosPerGb,
        stakeMicros: terms.stakeMicros,
        capacityBitsPerSecond: terms.capacityBitsPerSecond,
        attested: terms.attested,
        status: "active",
        registeredSlot: slot,
        deregisteredSlot: 0,
        openSessions: 0,
        sessionsStarted: 0n,
        billedOctets: 0n,
        billedMicros: 0n,
        earnedMicros: 0n,
        disputedOctets: 0n,
        name: terms.name,
      });
      this.entry({ reason: "stake-lock", router: r.deviceId, client: terms.owner, amountMicros: terms.stakeMicros });
      this.count({ routersRegistered: 1n });
      outcome.settleRegistration();
    }
  }

  // -------------------------------------------------------------------------------------------
  // Operator actions.

  applyActions(output: ActionsOutput): void {
    for (const action of output.actions) {
      if (this.r.actions.has(action.actionId)) {
        this.refusal(REJECTION_CODES.JG_ERR_WIFI_REPLAY);
        this.count({ actionsRejected: 1n });
        continue;
      }
      const code = this.applyAction(action);
      if (code === null) this.count({ actionsApplied: 1n });
      else {
        this.refusal(code);
        this.count({ actionsRejected: 1n });
      }
      this.remember(action, code ?? 0);
    }
  }

  /** Applies one action: null, or the code it is refused with (nothing changed). */
  private applyAction(a: ActionRecord): RejectionCode | null {
    switch (a.type) {
      case WifiActionType.topup: {
        if (a.value < 1n || a.value > TOPUP_MICROS_MAX) return REJECTION_CODES.JG_ERR_WIFI_AMOUNT;
        const account = this.r.accounts.get(a.target);
        if (account === null) return REJECTION_CODES.JG_ERR_WIFI_ACCOUNT;
        this.r.accounts.set(a.target, { ...account, balanceMicros: account.balanceMicros + a.value });
        this.entry({ reason: "topup", client: a.target, amountMicros: a.value });
        this.count({ toppedUpMicros: a.value });
        return null;
      }
      case WifiActionType.setPrice: {
        if (a.value < 1n || a.value > PRICE_MICROS_PER_GB_MAX) return REJECTION_CODES.JG_ERR_WIFI_AMOUNT;
        const router = this.r.routers.get(a.target);
        if (router === null || router.status !== "active") return REJECTION_CODES.JG_ERR_WIFI_ROUTER;
        this.r.routers.set(a.target, { ...router, priceMicrosPerGb: a.value });
        return null;
      }
      case WifiActionType.deregister: {
        const router = this.r.routers.get(a.target);
        if (router === null || router.status !== "active") return REJECTION_CODES.JG_ERR_WIFI_ROUTER;
        const slot = this.host.slot;
        this.r.routers.set(a.target, { ...router, status: "deregistered", deregisteredSlot: slot });
        const queue = this.r.cooldown.get();
        this.r.cooldownEntries.set(queue.tail, { router: a.target, dueSlot: slot + this.r.config.get().stakeCooldownSlots });
        this.r.cooldown.set({ head: queue.head, tail: queue.tail + 1n });
        this.count({ routersDeregistered: 1n });
        return null;
      }
    }
  }

  /** Records an action's verdict under its id, in the ring of ACTIONS_KEPT (evicting the oldest, which a replay could then apply again). */
  private remember(action: ActionRecord, code: number): void {
    const n = this.r.actionCount.get();
    const capacity = BigInt(this.rings.actionsKept);
    const ringSlot = Number(n % capacity);
    if (n >= capacity) {
      const oldest = this.r.actionSlots.get(ringSlot);
      if (oldest === null) throw new Error(`${SERVICE}: action ring slot ${ringSlot} is empty`); // a bug
      this.r.actions.set(oldest, null);
    }
    this.r.actions.set(action.actionId, { action, slot: this.host.slot, code });
    this.r.actionSlots.set(ringSlot, action.actionId);
    this.r.actionCount.set(n + 1n);
  }

  // -------------------------------------------------------------------------------------------
  // Usage.

  applyEnvelopes(output: EnvelopesOutput, outcome: OutcomeBuilder): void {
    outcome.commitments.push(output.commitment);
    for (const r of output.routers) {
      for (const x of r.rejected) outcome.rejectEnvelope(r.router, x.seq, x.code);
      const device = this.r.devices.get(r.router);
      const router = device === null || device.kind !== WifiDeviceKind.router ? null : this.r.routers.get(r.router);
      const refusal =
        device === null
          ? REJECTION_CODES.JG_ERR_DEVICE_UNREGISTERED
          : router === null || router.status !== "active"
            ? REJECTION_CODES.JG_ERR_WIFI_ROUTER
            : null;
      for (const delta of r.sessions) {
        const seqs = seqsOf(delta);
        const code = refusal ?? this.applyDelta(r.router, delta, seqs);
        if (code !== null) {
          for (const seq of seqs) outcome.rejectEnvelope(r.router, seq, code);
          continue;
        }
        for (const seq of seqs) outcome.settleEnvelope(r.router, seq);
      }
    }
  }

  /** Settles one session delta: null, or the code it is refused with (nothing changed). */
  private applyDelta(routerId: RawDeviceId, delta: SessionDelta, seqs: readonly bigint[]): RejectionCode | null {
    const device = this.r.devices.get(routerId)!;
    if (seqs.some((seq) => !windowAccepts(device.window, seq))) return REJECTION_CODES.JG_ERR_ENVELOPE_REPLAY;
    const client = this.r.accounts.get(delta.client);
    if (client === null) return REJECTION_CODES.JG_ERR_WIFI_CLIENT;
    let router = this.r.routers.get(routerId)!;
    const key = { router: routerId, session: delta.session };
    const stored = this.r.sessions.get(key);
    if (delta.started) {
      if (stored !== null) return REJECTION_CODES.JG_ERR_WIFI_SESSION; // a Start for a session already open, or stopped
      if (!bytesEqual(delta.firstPrev, FIRST_PREV)) return REJECTION_CODES.JG_ERR_WIFI_VOUCHER_CHAIN;
      if (router.openSessions >= OPEN_SESSIONS_PER_ROUTER_MAX) return REJECTION_CODES.JG_ERR_WIFI_SESSION;
    } else {
      if (stored === null || stored.stopped) return REJECTION_CODES.JG_ERR_WIFI_SESSION;
      if (!bytesEqual(stored.client, delta.client)) return REJECTION_CODES.JG_ERR_WIFI_CLIENT;
      if (!bytesEqual(delta.firstPrev, stored.lastVoucherHash)) return REJECTION_CODES.JG_ERR_WIFI_VOUCHER_CHAIN;
    }
    const before = stored ?? { inputOctets: 0n, outputOctets: 0n, seconds: 0, billedMicros: 0n, exhausted: false };
    // Refine checked the delta's updates go forward from its first; its first must not be below the stored counters.
    const first = delta.first;
    if (first.inputOctets < before.inputOctets || first.outputOctets < before.outputOctets || first.seconds < before.seconds)
      return REJECTION_CODES.JG_ERR_WIFI_COUNTER;
    const totalOctets = delta.inputOctets + delta.outputOctets;
    if (totalOctets * 8n > router.capacityBitsPerSecond * (BigInt(delta.seconds) + CAPACITY_SLACK_SECONDS)) return REJECTION_CODES.JG_ERR_WIFI_CAPACITY;

    // Accepted: bill it.
    const slot = this.host.slot;
    const price = stored?.priceMicrosPerGb ?? router.priceMicrosPerGb;
    const inputDelta = delta.inputOctets - before.inputOctets;
    const outputDelta = delta.outputOctets - before.outputOctets;
    const octets = inputDelta + outputDelta;
    const usage = {
      session: delta.session,
      router: routerId,
      client: delta.client,
      inputOctets: inputDelta,
      outputOctets: outputDelta,
      priceMicrosPerGb: price,
      attested: delta.attested,
    };
    let billed = before.billedMicros;
    let exhausted = before.exhausted;
    if (delta.attested && !router.attested) {
      if (octets > 0n) this.entry({ ...usage, reason: "disputed" });
      router = { ...router, disputedOctets: router.disputedOctets + octets };
      this.count({ disputedOctets: octets });
    } else {
      const due = chargedMicros(totalOctets, price) - billed;
      const pay = due < client.balanceMicros ? due : client.balanceMicros;
      const feePpm = this.r.config.get().protocolFeePpm;
      const fee = feeMicros(billed + pay, feePpm) - feeMicros(billed, feePpm);
      billed += pay;
      this.r.accounts.set(delta.client, { ...client, balanceMicros: client.balanceMicros - pay });
      const owner = this.r.accounts.get(router.owner);
      if (owner === null) throw new Error(`${SERVICE}: router ${router.owner} has no owner account`); // a bug: accounts are never deleted
      this.r.accounts.set(router.owner, { ...owner, balanceMicros: owner.balanceMicros + pay - fee });
      this.r.fees.set(this.r.fees.get() + fee);
      const short = pay < due;
      if (short) exhausted = true;
      if (octets > 0n || pay > 0n || short) this.entry({ ...usage, reason: short ? "balance-exhausted" : "usage", amountMicros: pay, feeMicros: fee });
      router = {
        ...router,
        billedOctets: router.billedOctets + octets,
        billedMicros: router.billedMicros + pay,
        earnedMicros: router.earnedMicros + pay - fee,
      };
      this.count({ billedOctets: octets, billedMicros: pay, exhaustedUpdates: short ? 1n : 0n });
    }
    if (delta.started) {
      router = { ...router, openSessions: router.openSessions + 1, sessionsStarted: router.sessionsStarted + 1n };
      this.count({ sessionsStarted: 1n });
    }
    if (delta.stopped) {
      router = { ...router, openSessions: router.openSessions - 1 };
      this.count({ sessionsStopped: 1n });
      this.close(routerId, delta.session);
    }
    this.r.routers.set(routerId, router);
    const session: SessionRecord = {
      client: delta.client,
      priceMicrosPerGb: price,
      lastVoucherHash: delta.lastHash,
      inputOctets: delta.inputOctets,
      outputOctets: delta.outputOctets,
      seconds: delta.seconds,
      billedMicros: billed,
      stopped: delta.stopped,
      exhausted,
      terminateCause: delta.cause,
      startSlot: stored?.startSlot ?? slot,
      lastSlot: slot,
    };
    this.r.sessions.set(key, session);
    let window = device.window;
    for (const seq of seqs) window = windowSettle(window, seq)!;
    this.r.devices.set(routerId, { ...device, window, envelopesSettled: device.envelopesSettled + BigInt(seqs.length) });
    return null;
  }

  /** Puts a stopped session in the ring of CLOSED_SESSIONS_KEPT; the one it evicts is forgotten (its record deleted). */
  private close(router: RawDeviceId, session: Uint8Array): void {
    const n = this.r.closedCount.get();
    const capacity = BigInt(this.rings.closedSessionsKept);
    const ringSlot = Number(n % capacity);
    if (n >= capacity) {
      const oldest = this.r.closedSlots.get(ringSlot);
      if (oldest === null) throw new Error(`${SERVICE}: closed-session ring slot ${ringSlot} is empty`); // a bug
      this.r.sessions.set(oldest, null);
    }
    this.r.closedSlots.set(ringSlot, { router, session });
    this.r.closedCount.set(n + 1n);
  }

  // -------------------------------------------------------------------------------------------
  // The clock.

  runClock(): void {
    const slot = this.host.slot;
    let queue = this.r.cooldown.get();
    for (let n = 0; n < STAKE_RETURNS_PER_BLOCK_MAX && queue.head < queue.tail; n++) {
      const due = this.r.cooldownEntries.get(queue.head);
      if (due === null) throw new Error(`${SERVICE}: cool-down entry ${queue.head} is missing`); // a bug
      if (due.dueSlot > slot) break;
      this.returnStake(due.router);
      this.r.cooldownEntries.set(queue.head, null);
      queue = { head: queue.head + 1n, tail: queue.tail };
      this.r.cooldown.set(queue);
    }
    // Ledger slots before keptFrom are gone; the first call starts the mark at its own slot.
    const mark = this.r.progress.get();
    let keptFrom = mark ?? slot;
    for (let n = 0; n < LEDGER_PRUNES_PER_BLOCK_MAX && keptFrom + LEDGER_SLOTS_KEPT <= slot; n++) {
      this.r.ledger.set(keptFrom, null);
      keptFrom++;
    }
    if (mark !== keptFrom) this.r.progress.set(keptFrom);
  }

  private returnStake(routerId: RawDeviceId): void {
    const router = this.r.routers.get(routerId);
    if (router === null || router.status !== "deregistered") throw new Error(`${SERVICE}: cool-down of router that is not deregistered`); // a bug
    const owner = this.r.accounts.get(router.owner);
    if (owner === null) throw new Error(`${SERVICE}: router without owner account`); // a bug
    this.r.accounts.set(router.owner, {
      ...owner,
      balanceMicros: owner.balanceMicros + router.stakeMicros,
      lockedMicros: owner.lockedMicros - router.stakeMicros,
    });
    this.r.routers.set(routerId, { ...router, status: "stake-returned" });
    this.entry({ reason: "stake-return", router: routerId, client: router.owner, amountMicros: router.stakeMicros });
    this.count({ stakesReturned: 1n });
  }

  // -------------------------------------------------------------------------------------------
  // Ledger, counters, writes.

  private entry(e: Partial<LedgerEntry> & Pick<LedgerEntry, "reason" | "client">): void {
    this.entries.push({
      session: ZERO_SESSION,
      router: ZERO_ID,
      inputOctets: 0n,
      outputOctets: 0n,
      priceMicrosPerGb: 0n,
      amountMicros: 0n,
      feeMicros: 0n,
      attested: false,
      ...e,
    });
  }

  private count(add: StatsDelta): void {
    const next: Record<string, unknown> = { ...this.r.stats.get() };
    for (const [field, value] of Object.entries(add)) next[field] = (next[field] as bigint) + (value as bigint);
    this.r.stats.set(next as unknown as WifiStats);
  }

  private refusal(code: RejectionCode, times = 1n): void {
    const stats = this.r.stats.get();
    const refusalsByCode = stats.refusalsByCode.slice();
    refusalsByCode[code] = refusalsByCode[code]! + times;
    this.r.stats.set({ ...stats, refusalsByCode });
  }

  /** Counts a package's settled and refused envelopes and refused registrations (each refusal under its code). */
  countOutcome(outcome: PackageOutcome): void {
    let rejected = 0n;
    for (const run of outcome.rejectedEnvelopes) {
      rejected += BigInt(run.length);
      this.refusal(run.code, BigInt(run.length));
    }
    for (const r of outcome.rejectedRegistrations) this.refusal(r.code);
    this.count({
      envelopesSettled: BigInt(outcome.envelopesSettled),
      envelopesRejected: rejected,
      registrationsRejected: BigInt(outcome.rejectedRegistrations.length),
    });
  }

  flush(): void {
    if (this.entries.length > 0) {
      const slot = this.host.slot;
      this.r.ledger.set(slot, [...(this.r.ledger.get(slot) ?? []), ...this.entries]);
      this.count({ ledgerEntries: BigInt(this.entries.length) });
    }
    this.r.store.flush();
  }
}

function seqsOf(delta: SessionDelta): bigint[] {
  const seqs: bigint[] = [];
  for (const run of delta.seqs) for (let k = 0; k < run.length; k++) seqs.push(run.start + BigInt(k));
  return seqs;
}
