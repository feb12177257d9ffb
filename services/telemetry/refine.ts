/**
 * Refine of the telemetry service (GP 14.3, Ψ_R of one work item): stateless, on a core, in
 * parallel with other cores. Checks each envelope (device id against its key, Ed25519
 * signature), hashes each body, and condenses the item to a small output (output.ts): per
 * device the runs of accepted seqs and the refused ones with their codes, plus one commitment to
 * the accepted records' bodies. A bad envelope is a refusal in the output; a malformed payload
 * is a gateway bug and fails the item (throws).
 */
import type { RefineContext } from "../../node/service-api/index.ts";
import { bytesEqual } from "../common/bytes.ts";
import { decodedOrThrow, refineItem } from "../common/dispatch.ts";
import { CommitmentLeaves } from "../common/envelope.ts";
import { deviceIdOfKey } from "../common/registration.ts";
import { REJECTION_CODES } from "../common/errors.ts";
import {
  type DeviceSettlement,
  encodeRefineOutput,
  type EnvelopesOutput,
  REGISTRATION_KEYS_OUTPUT,
  type RegistrationKeysOutput,
  type SeqRejection,
  toRuns,
} from "./output.ts";
import { decodeEnvelopesItem, decodeRegistrationsItem, ItemKind, type RawDeviceId } from "./payload.ts";

const SERVICE = "telemetry";

/** The hash and signature check refine needs from its host (both gas-charged there). */
export type RefineHost = Pick<RefineContext, "hash" | "verifyEd25519">;

export function refine(payload: Uint8Array, context: RefineContext): Uint8Array {
  return refineItem(
    SERVICE,
    payload,
    {
      [ItemKind.envelopes]: () => encodeRefineOutput(refineEnvelopes(payload, context)),
      [ItemKind.registrations]: () => encodeRefineOutput(refineRegistrations(payload)),
    },
    "the item has too many devices or gaps in their seqs",
  );
}

export function refineEnvelopes(payload: Uint8Array, host: RefineHost): EnvelopesOutput {
  const records = decodedOrThrow(SERVICE, "envelopes item", decodeEnvelopesItem(payload));
  const leaves = new CommitmentLeaves(records.length);
  const devices: DeviceSettlement[] = [];
  // Records of a device are adjacent (sorted), so its key is hashed once, not once per envelope.
  let hashedKey: Uint8Array | null = null;
  let idOfKey: Uint8Array = new Uint8Array(0);
  let i = 0;
  while (i < records.length) {
    const deviceId: RawDeviceId = records[i]!.fields.deviceId;
    const accepted: bigint[] = [];
    const rejected: SeqRejection[] = [];
    for (; i < records.length && bytesEqual(records[i]!.fields.deviceId, deviceId); i++) {
      const record = records[i]!;
      const seq = record.fields.seq;
      if (hashedKey === null || !bytesEqual(hashedKey, record.publicKey)) {
        hashedKey = record.publicKey;
        idOfKey = deviceIdOfKey(host, record.publicKey);
      }
      if (!bytesEqual(idOfKey, deviceId)) {
        rejected.push({ seq, code: REJECTION_CODES.JG_ERR_ENVELOPE_DEVICE });
      } else if (!host.verifyEd25519(record.publicKey, record.signingBytes, record.signature)) {
        rejected.push({ seq, code: REJECTION_CODES.JG_ERR_ENVELOPE_SIGNATURE });
      } else {
        accepted.push(seq);
        leaves.add(deviceId, seq, host.hash(record.fields.body));
      }
    }
    devices.push({ deviceId, accepted: toRuns(accepted), rejected });
  }
  return { kind: ItemKind.envelopes, commitment: leaves.commitment((data) => host.hash(data)), devices };
}

/**
 * A registrations item's output: each record's key and kind as they came (the payload's decoder
 * checked the kinds and the count). Accumulate derives each device id from its key, so the
 * output carries 33 bytes a registration instead of 49 and a package 1,489 registrations instead
 * of 1,003 (W_R); the 32-byte hash each costs there is ~1,000 gas of G_A, far inside it.
 */
export function refineRegistrations(payload: Uint8Array): RegistrationKeysOutput {
  const records = decodedOrThrow(SERVICE, "registrations item", decodeRegistrationsItem(payload));
  return { kind: REGISTRATION_KEYS_OUTPUT, registrations: records.map((r) => ({ publicKey: r.publicKey, kind: r.kind })) };
}
