/**
 * Accumulate gas the gateway sets on a wifi-billing work item (GP 11.1.4 g): a limit that always
 * suffices for an item of that shape, on the node's schedule (node/service-api/gas.ts). The
 * block's own work (stake returns after their cool-down, ledger pruning) is paid by the χ_Z gas
 * genesis gives the service (ALWAYS_ACCUMULATE_GAS).
 *
 * The figures count every value read and written once per item they touch; the Store reads a key
 * once per call, so they are generous: measured (accumulate.test.ts, "gas"), the largest envelopes
 * item (64 routers, 300 billed sessions) used 1.2e6 of its 4.9e6, within G_A = 1e7.
 */
import { gasSchedule as g } from "../../node/service-api/index.ts";
import { LEDGER_ENTRY_BYTES, SESSION_RECORD_BYTES, DEVICE_RECORD_BYTES } from "./storage.ts";

/** Storage keys are at most "session/" ⌢ 32 bytes. */
const KEY_BYTES = 40n;
/** A router record with its longest name. */
const ROUTER_RECORD_BYTES_MAX = 120n;
const ACCOUNT_RECORD_BYTES = 21n;
const readWrite = (bytes: bigint) => 2n * g.hostCallBase + (g.perByteRead + g.perByteWritten) * (KEY_BYTES + bytes);

/** A router of an envelopes item: its device record (replay window) and router record, read and written. */
const PER_DEVICE_GAS = readWrite(BigInt(DEVICE_RECORD_BYTES)) + readWrite(ROUTER_RECORD_BYTES_MAX);
/**
 * A session delta: its session record, the client's and the owner's accounts, the closed-session
 * ring (slot and counter, and the evicted session) and its ledger entry (read back and rewritten
 * with the slot's others).
 */
const PER_SESSION_GAS =
  readWrite(BigInt(SESSION_RECORD_BYTES)) +
  2n * readWrite(ACCOUNT_RECORD_BYTES) +
  3n * readWrite(KEY_BYTES) +
  2n * (g.perByteRead + g.perByteWritten) * BigInt(LEDGER_ENTRY_BYTES);
/** An envelope's part of the package outcome. */
const PER_ENVELOPE_GAS = g.hostCallBase + g.perByteWritten * 40n;
/** A registration: device record, account or router record, the owner's account, a stake-lock entry. */
const PER_REGISTRATION_GAS =
  readWrite(BigInt(DEVICE_RECORD_BYTES)) +
  readWrite(ROUTER_RECORD_BYTES_MAX) +
  readWrite(ACCOUNT_RECORD_BYTES) +
  2n * (g.perByteRead + g.perByteWritten) * BigInt(LEDGER_ENTRY_BYTES);
/** An action: its record and ring slot (and the evicted one), its target, the owner's account, a cool-down entry, a ledger entry. */
const PER_ACTION_GAS =
  3n * readWrite(64n) +
  readWrite(ROUTER_RECORD_BYTES_MAX) +
  readWrite(ACCOUNT_RECORD_BYTES) +
  readWrite(32n) +
  2n * (g.perByteRead + g.perByteWritten) * BigInt(LEDGER_ENTRY_BYTES);
/** Config, stats, fees, progress, ring counters, the outcome FIFO and the outcome itself. */
const PER_ITEM_GAS = 16n * g.hostCallBase + (g.perByteRead + g.perByteWritten) * 8_192n;

/** Accumulate gas of an envelopes item of `devices` routers and `envelopes` usage envelopes (each may be a session of its own). */
export function wifiEnvelopesGas(devices: number, envelopes: number): bigint {
  return PER_ITEM_GAS + BigInt(devices) * PER_DEVICE_GAS + BigInt(envelopes) * (PER_SESSION_GAS + PER_ENVELOPE_GAS);
}

export function wifiRegistrationsGas(registrations: number): bigint {
  return PER_ITEM_GAS + BigInt(registrations) * PER_REGISTRATION_GAS;
}

export function wifiActionsGas(actions: number): bigint {
  return PER_ITEM_GAS + BigInt(actions) * PER_ACTION_GAS;
}

/** Stakes returned per block at most: bounds a block's work when many routers' cool-downs end at once (the rest follow in the next blocks). */
export const STAKE_RETURNS_PER_BLOCK_MAX = 64;
/** Ledger slots pruned per block at most: one a block keeps pace; more catch up after slots without a block. */
export const LEDGER_PRUNES_PER_BLOCK_MAX = 16;
const PER_STAKE_RETURN_GAS =
  readWrite(32n) + readWrite(ROUTER_RECORD_BYTES_MAX) + readWrite(ACCOUNT_RECORD_BYTES) + 2n * (g.perByteRead + g.perByteWritten) * BigInt(LEDGER_ENTRY_BYTES);
/** The gas genesis gives the service in χ_Z (always-accumulate): the block's own work at its bounds, twice over. */
export const ALWAYS_ACCUMULATE_GAS =
  2n *
  (PER_ITEM_GAS +
    BigInt(STAKE_RETURNS_PER_BLOCK_MAX) * PER_STAKE_RETURN_GAS +
    BigInt(LEDGER_PRUNES_PER_BLOCK_MAX) * (g.hostCallBase + g.perByteWritten * KEY_BYTES));
