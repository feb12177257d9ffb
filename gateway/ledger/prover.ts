/**
 * Assembles `jamgate-proof/1` documents (their format and checks: proof.ts) for the
 * proof routes: what the ledger index says (an entry, a device, a balance) is proven from the
 * node, not from the index, for energy-trading and wifi-billing alike (where each keeps a value
 * and how it decodes is proof.ts's, one table per claim kind). A state claim is the service
 * storage value with its GP D.2 path to the best block's posterior state root
 * (NodeApi.serviceValueProof), then the block after it, whose header commits to that root as its
 * prior state root (GP 5.1 H_r), and the headers from there to the best block: a Wi-Fi entry is
 * proven in its slot's `ledger/` value at the best block, so while the service keeps that slot
 * (LEDGER_SLOTS_KEPT). A reading is its envelope's path through data availability (da-proof.ts),
 * then the headers from the block that guaranteed its report.
 *
 * The claim is read from the proven value, and checked against what was asked: a proof never
 * says something other than what the index showed.
 */
import type { BlockDescriptor, NodeApi, Unsubscribe } from "../../node/api.ts";
import { type ChainName, chainParams, type ChainParams } from "../../node/chain/params.ts";
import { bytesEqual, Decoder, fromHex, Header, toHex } from "../../node/codec/jam.ts";
import { hash } from "../../node/crypto/hash.ts";
import { type ErrorCode, JamgateError } from "../../devices/protocol/errors.ts";
import { ENERGY_SERVICE_NAME, LEDGER_INTERVALS_KEPT } from "../../services/energy-trading/types.ts";
import { SEQ_WINDOW_SEQS } from "../../devices/protocol/seq-window.ts";
import { LEDGER_SLOTS_KEPT, WIFI_SERVICE_NAME } from "../../services/wifi-billing/types.ts";
import type { IngestService } from "../ingest-service.ts";
import { readingProof as readingDa, READING_SERVICES, type ReadingService } from "./da-proof.ts";
import {
  BALANCE_SERVICES,
  type BalanceService,
  balanceKeyOf,
  deviceRecordKey,
  type EntryClaim,
  entryDiffers,
  ledgerOf,
  type Proof,
  type ProofClaim,
  PROOF_FORMAT,
  PROOF_HEADERS_MAX,
  type ProofState,
  readBalance,
  recordedWindow,
  SEQ_SERVICES,
  type SeqService,
  seqInWindow,
} from "./proof.ts";
import type { ProofSource } from "./routes.ts";
import { type EntryView, type Hex, type LedgerReader, LIST_LIMIT_MAX, WIFI_ENTRY_KINDS } from "./types.ts";

/**
 * Slots a proof waits for the block after the proven one (the embedded node authors one a slot):
 * three let a slot or two be missed under load before the request is refused.
 */
export const PROOF_WAIT_SLOTS = 3;
/**
 * Proofs assembled at once: each reads a state path and up to PROOF_HEADERS_MAX blocks from the
 * node, and a reading's bundle (up to W_B) from data availability; an auditor asks for a few, and
 * more at once would take the node's thread from settlement.
 */
export const PROOFS_IN_FLIGHT_MAX = 4;
/** `entries` calls a reading proof makes to find the package that settled (device, seq): each scans at most ENTRY_SCAN_MAX entries. */
const READING_LOOKUP_CALLS_MAX = 8;

export interface ProverOptions {
  readonly api: NodeApi;
  readonly reader: LedgerReader;
  /** The chain spec the node's headers are encoded with. */
  readonly chain: ChainName;
  /** The services the gateway settles on (their device keys). */
  readonly services: readonly IngestService[];
}

const unavailable = (detail: string) => new JamgateError("JG_ERR_PROOF_UNAVAILABLE", detail);
const notFound = (detail: string) => new JamgateError("JG_ERR_NOT_FOUND", detail);

/** A header as the block carries it: its GP encoding is the block encoding's prefix, so its hash is that prefix's. */
function headerOf(params: ChainParams, block: Uint8Array): { readonly header: Header; readonly bytes: Uint8Array; readonly hash: Uint8Array } {
  const decoder = Decoder.fromBlob(block, params.spec);
  const header = decoder.object<Header>(Header.Codec);
  const bytes = block.subarray(0, decoder.bytesRead());
  return { header, bytes, hash: hash(bytes) };
}

const isReadingService = (name: string): name is ReadingService => (READING_SERVICES as readonly string[]).includes(name);
const isSeqService = (name: string): name is SeqService => (SEQ_SERVICES as readonly string[]).includes(name);
const isBalanceService = (name: string): name is BalanceService => (BALANCE_SERVICES as readonly string[]).includes(name);
const isWifiEntry = (entry: EntryView) => (WIFI_ENTRY_KINDS as readonly string[]).includes(entry.kind);

/** How long each service keeps a ledger place in state, for the refusal of one that left it. */
const PLACES_KEPT = {
  "energy-entry": `the service keeps the last ${LEDGER_INTERVALS_KEPT} settled intervals`,
  "wifi-entry": `the service keeps the ledgers of the last ${LEDGER_SLOTS_KEPT} slots`,
} as const;

/**
 * Where a ledger entry of the index is in its service's stored ledger, and what it says there, as
 * the claim states it: an energy entry's interval and index, or a Wi-Fi entry's slot (the index
 * holds no place within the slot's ledger: any stored entry equal in every field is it).
 */
function entryClaimOf(
  entry: EntryView,
): { readonly kind: EntryClaim["kind"]; readonly place: number; readonly index: number | null; readonly said: EntryClaim["entry"] } | null {
  if (
    entry.service === ENERGY_SERVICE_NAME &&
    entry.interval !== null &&
    entry.index !== null &&
    entry.buyer !== null &&
    entry.seller !== null &&
    entry.energyWh !== null &&
    entry.priceMicrosPerKwh !== null &&
    entry.amountMicros !== null
  ) {
    const said = {
      reason: entry.kind,
      buyer: entry.buyer,
      seller: entry.seller,
      energyWh: entry.energyWh,
      priceMicrosPerKwh: entry.priceMicrosPerKwh,
      amountMicros: entry.amountMicros,
    };
    return { kind: "energy-entry", place: entry.interval, index: entry.index, said: said as EntryClaim["entry"] };
  }
  if (entry.service === WIFI_SERVICE_NAME && isWifiEntry(entry) && entry.client !== undefined && entry.amountMicros !== null) {
    const said = {
      reason: entry.kind,
      session: entry.session ?? null,
      router: entry.router ?? null,
      client: entry.client,
      inputOctets: entry.inputOctets,
      outputOctets: entry.outputOctets,
      priceMicrosPerGb: entry.priceMicrosPerGb,
      amountMicros: entry.amountMicros,
      feeMicros: entry.feeMicros,
      attested: entry.attested,
    };
    return { kind: "wifi-entry", place: entry.slot, index: null, said: said as EntryClaim["entry"] };
  }
  return null;
}

interface ProvenState {
  readonly state: ProofState;
  readonly value: Uint8Array;
  readonly headers: readonly Hex[];
}

export class Prover implements ProofSource {
  private readonly api: NodeApi;
  private readonly reader: LedgerReader;
  private readonly chain: ChainName;
  private readonly params: ChainParams;
  private readonly services: readonly IngestService[];
  private slotMs: Promise<number> | null = null;
  private inFlight = 0;

  constructor(options: ProverOptions) {
    this.api = options.api;
    this.reader = options.reader;
    this.chain = options.chain;
    this.params = chainParams(options.chain);
    this.services = options.services;
  }

  /**
   * A settlement entry: an energy entry in its interval's stored ledger, a Wi-Fi entry in its
   * slot's (`ledger/` ⌢ slot, at the best block while the service keeps it), or an envelopes
   * entry's last seq settled in its device's window.
   */
  entryProof(id: number): Promise<Proof> {
    return this.bounded(async () => {
      const entry = await this.reader.entry(id);
      if (entry === null) throw notFound(`no entry ${id}`);
      const service = this.serviceById(entry.serviceId);
      if (entry.kind === "envelopes") {
        if (entry.device === null || entry.seqs === null || entry.seqs.length === 0) throw unavailable(`entry ${id} names no device seqs`);
        return this.settledSeq(service, entry.device, Math.max(...entry.seqs));
      }
      const asked = entryClaimOf(entry);
      if (asked === null || asked.kind !== (service.name === WIFI_SERVICE_NAME ? "wifi-entry" : "energy-entry"))
        throw unavailable(`entry ${id} is not a ledger entry with its place in its service's stored ledger`);
      const ledger = ledgerOf(asked.kind);
      const where = `${ledger.placeName} ${asked.place}`;
      const proven = await this.stateProof(service.serviceId, ledger.key(asked.place));
      if (proven === null) throw unavailable(`the ledger of ${where} is no longer in state (${PLACES_KEPT[asked.kind]})`);
      const entries = ledger.entries(proven.value);
      if (!entries.ok) throw new Error(`${where}'s stored ledger does not decode: ${entries.error}`);
      const index = asked.index ?? entries.value.findIndex((stored) => entryDiffers(stored, asked.said) === null);
      const stored = entries.value[index];
      if (stored === undefined || entryDiffers(stored, asked.said) !== null)
        throw unavailable(`entry ${id} is not what ${where}'s stored ledger holds${asked.index === null ? "" : ` at ${asked.index}`}`);
      const claim = { kind: asked.kind, service: ledger.service, [ledger.placeName]: asked.place, index, entry: stored } as unknown as ProofClaim;
      return this.document(claim, proven);
    });
  }

  /** An account's balance (energy-trading: `balance/`; wifi-billing: `account/`, with its locked stakes), at the best block. */
  balanceProof(serviceName: string, account: Hex): Promise<Proof> {
    return this.bounded(async () => {
      const service = this.services.find((s) => s.name === serviceName);
      if (service === undefined || !isBalanceService(service.name)) throw notFound(`service ${serviceName} keeps no balances here`);
      const proven = await this.stateProof(service.serviceId, balanceKeyOf(service.name, account));
      if (proven === null) throw notFound(`no balance of ${account} in ${serviceName}`);
      const balance = readBalance(service.name, proven.value);
      if (!balance.ok) throw new Error(`the balance of ${account} does not decode: ${balance.error}`);
      return this.document({ kind: "balance", service: service.name, account, ...balance.value }, proven);
    });
  }

  /** That a device's seq is settled: its record's replay window on the service it settles on. */
  seqProof(device: Hex, seq: number): Promise<Proof> {
    return this.bounded(async () => {
      const view = await this.reader.device(device);
      if (view === null) throw notFound(`no device ${device}`);
      return this.settledSeq(this.serviceById(view.serviceId), device, seq);
    });
  }

  /** A device's raw reading: its envelope in the bundle of the package that settled it, through DA to the block that guaranteed it. */
  readingProof(device: Hex, seq: number): Promise<Proof> {
    return this.bounded(async () => {
      const view = await this.reader.device(device);
      if (view === null) throw notFound(`no device ${device}`);
      const service = this.serviceById(view.serviceId);
      if (!isReadingService(service.name)) throw unavailable(`service ${service.name} carries no readings this gateway can prove`);
      const packageHash = await this.packageOf(device, seq);
      const status = await this.api.workPackageStatus(fromHex(packageHash));
      if (status === null || !("reportedIn" in status)) throw unavailable(`the node no longer knows how package ${packageHash} was reported`);
      const da = await readingDa({
        api: this.api,
        params: this.params,
        service: service.name,
        packageHash: fromHex(packageHash),
        device: fromHex(device),
        seq: BigInt(seq),
        reportHash: status.reportHash,
        reportBlockHash: status.reportedIn.headerHash,
      });
      if (!da.ok) throw new JamgateError(da.error.code, da.error.detail);
      const headers = await this.headersAfter(status.reportedIn);
      return { format: PROOF_FORMAT, chain: this.chain, claim: { kind: "reading", service: service.name, device, seq }, da: da.value, headers };
    });
  }

  private async settledSeq(service: IngestService, device: Hex, seq: number): Promise<Proof> {
    if (!isSeqService(service.name)) throw unavailable(`service ${service.name} keeps no replay window this gateway can prove`);
    const proven = await this.stateProof(service.serviceId, deviceRecordKey(service.name, device));
    if (proven === null) throw notFound(`service ${service.name} has no record of device ${device}`);
    const window = recordedWindow(service.name, proven.value);
    if (!window.ok) throw new Error(`device ${device}'s record does not decode: ${window.error}`);
    const holds = seqInWindow(window.value, BigInt(seq));
    if (holds === "unsettled") throw notFound(`seq ${seq} of device ${device} is not settled`);
    if (holds === "below")
      throw unavailable(`seq ${seq} is more than ${SEQ_WINDOW_SEQS} below device ${device}'s highest settled seq: its window no longer holds it`);
    return this.document({ kind: "settled-seq", service: service.name, device, seq }, proven);
  }

  private document(claim: ProofClaim, proven: ProvenState): Proof {
    return { format: PROOF_FORMAT, chain: this.chain, claim, state: proven.state, headers: proven.headers };
  }

  /** The storage value with its path to the best block's state root, and the headers from the next block on; null when the key holds no value. */
  private async stateProof(serviceId: number, storageKey: Uint8Array): Promise<ProvenState | null> {
    const proof = await this.api.serviceValueProof(serviceId, storageKey);
    if (proof === null) return null;
    const headers = await this.headersAfter(proof.block);
    const child = headerOf(this.params, fromHex(headers[0]!)).header;
    // The next header commits to the proven root (GP 5.1 H_r): a node that answered otherwise is broken, not the request.
    if (!bytesEqual(child.priorStateRoot.raw, proof.stateRoot))
      throw new Error(`the block after ${toHex(proof.block.headerHash)} does not commit to its state root`);
    return {
      value: proof.value,
      headers,
      state: {
        serviceId,
        storageKey: toHex(storageKey),
        stateKey: toHex(proof.stateKey),
        value: toHex(proof.value),
        root: toHex(proof.stateRoot),
        siblings: proof.siblings.map(toHex),
        block: { hash: toHex(proof.block.headerHash), slot: proof.block.slot },
      },
    };
  }

  /**
   * The GP-encoded headers from the child of `block` to the best block, oldest first: waits (at
   * most PROOF_WAIT_SLOTS slots) for a block after it, then walks parent links back from the best
   * block (at most PROOF_HEADERS_MAX). Each header's parent is the one before; the first's is `block`.
   */
  private async headersAfter(block: BlockDescriptor): Promise<Hex[]> {
    const best = await this.blockAfter(block);
    const headers: Hex[] = [];
    let cursor = best.headerHash;
    for (let i = 0; i < PROOF_HEADERS_MAX; i++) {
      const encoded = await this.api.block(cursor);
      if (encoded === null) throw unavailable(`the node has no block ${toHex(cursor)}`);
      const { header, bytes, hash: hashed } = headerOf(this.params, encoded);
      if (!bytesEqual(hashed, cursor)) throw new Error(`block ${toHex(cursor)} from the node hashes to ${toHex(hashed)}`);
      headers.push(toHex(bytes));
      if (bytesEqual(header.parentHeaderHash.raw, block.headerHash)) return headers.reverse();
      if (header.timeSlotIndex <= block.slot) throw unavailable(`block ${toHex(block.headerHash)} is not on the best chain`);
      cursor = header.parentHeaderHash.raw;
    }
    throw unavailable(`block ${toHex(block.headerHash)} is more than ${PROOF_HEADERS_MAX} blocks behind the best block`);
  }

  /** The best block once it is past `block`, waiting for it at most PROOF_WAIT_SLOTS slots. */
  private async blockAfter(block: BlockDescriptor): Promise<BlockDescriptor> {
    const waitMs = PROOF_WAIT_SLOTS * (await this.slotPeriodMs());
    return new Promise<BlockDescriptor>((resolve, reject) => {
      let unsubscribe: Unsubscribe | null = null;
      let settled = false;
      const settle = (outcome: () => void) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        unsubscribe?.();
        outcome();
      };
      const timer = setTimeout(() => settle(() => reject(unavailable(`no block came after slot ${block.slot} within ${PROOF_WAIT_SLOTS} slots`))), waitMs);
      const onBlock = (b: BlockDescriptor) => {
        if (b.slot > block.slot) settle(() => resolve(b));
      };
      this.api.subscribeBestBlock(onBlock).then(
        (u) => {
          // Settled before the subscription was made: it is not needed.
          if (settled) return u();
          unsubscribe = u;
          // A block that came before the subscription is not sent to it.
          this.api.bestBlock().then(onBlock, (e) => settle(() => reject(e)));
        },
        (e) => settle(() => reject(e)),
      );
    });
  }

  private slotPeriodMs(): Promise<number> {
    this.slotMs ??= this.api.parameters().then((p) => Math.max(1, Math.round((p.slot_period_sec ?? 6) * 1000)));
    return this.slotMs;
  }

  /** The package that settled (device, seq), from the index's envelopes entries of the device (bounded). */
  private async packageOf(device: Hex, seq: number): Promise<Hex> {
    let before: number | undefined;
    for (let calls = 0; calls < READING_LOOKUP_CALLS_MAX; calls++) {
      const page = await this.reader.entries({ device }, { ...(before === undefined ? {} : { before }), limit: LIST_LIMIT_MAX });
      const entry = page.items.find((e) => e.kind === "envelopes" && e.seqs?.includes(seq) && e.packageHash !== null);
      if (entry !== undefined) return entry.packageHash!;
      if (page.next === null) break;
      before = page.next;
    }
    throw notFound(`no settled entry of device ${device} holds seq ${seq}`);
  }

  private serviceById(serviceId: number): IngestService {
    const service = this.services.find((s) => s.serviceId === serviceId);
    if (service === undefined) throw unavailable(`the gateway does not settle on service ${serviceId}`);
    return service;
  }

  /** Runs one proof within PROOFS_IN_FLIGHT_MAX. */
  private async bounded<T>(make: () => Promise<T>): Promise<T> {
    if (this.inFlight >= PROOFS_IN_FLIGHT_MAX)
      throw new JamgateError("JG_ERR_HTTP_BUSY" satisfies ErrorCode, `${PROOFS_IN_FLIGHT_MAX} proofs are being made; retry later`);
    this.inFlight++;
    try {
      return await make();
    } finally {
      this.inFlight--;
    }
  }
}
