/**
 * The gateway's adapter for the wifi-billing service (services/wifi-billing/types.ts): routers'
 * `router.usage` envelopes and registrations of routers (with their terms) and accounts (kind
 * `client`: a Wi-Fi client, or a router's owner). Operator actions are items of their own, made by
 * wifi/actions.ts.
 */
import { tryAsServiceId } from "@typeberry/lib/block";
import { serialize } from "@typeberry/lib/state-merkleization";
import type { NodeApi } from "../../node/api.ts";
import { nativeCodeHash } from "../../node/chain/genesis.ts";
import { bytesEqual, decode } from "../../node/codec/jam.ts";
import {
  decodeDevice,
  decodeDeviceRecord,
  deviceKey,
  ENVELOPE_DEVICES_PER_ITEM_MAX,
  ENVELOPES_PER_ITEM_MAX,
  outcomeKey,
  REGISTRATIONS_PER_ITEM_MAX,
  routerTermsProblem,
  WIFI_SERVICE_NAME,
  wifiEnvelopesGas,
  wifiEnvelopesPayload,
  wifiRegistrationsGas,
  wifiRegistrationsPayload,
} from "../../services/wifi-billing/types.ts";
import { type IngestService, type RegisteredDevice, type RegistrationRecord, settledWindowOf } from "../ingest-service.ts";
import { VOUCHER_SIGNING_BYTES } from "../../devices/wifi.ts";
import { gasSchedule } from "../../node/service-api/gas.ts";
import { envelopesRefineGas } from "../refine-gas.ts";
import { outcomeDecoders } from "./outcome.ts";

/**
 * Refine gas of a wifi-billing envelopes item: what an envelope costs every ingest service's
 * refine (refine-gas.ts: the payload, its signature, its body's hash, the commitment), plus what
 * services/wifi-billing/refine.ts does more per envelope, each a host call on the node's schedule:
 * the client's key hashed into its account id (32 bytes), the voucher's signature verified over
 * its signing bytes, and the voucher hashed (the session chain). A quarter more, as refine-gas.ts
 * declares, at most `shareMax`.
 */
export function wifiEnvelopesRefineGas(
  item: { readonly payloadBytes: number; readonly envelopes: number; readonly devices: number },
  shareMax: bigint,
): bigint {
  const s = gasSchedule;
  const voucher = 3n * s.hostCallBase + 32n * s.perByteHashed + s.perSignatureVerified + 2n * BigInt(VOUCHER_SIGNING_BYTES) * s.perByteHashed;
  const more = (BigInt(item.envelopes) * voucher * 5n + 3n) / 4n;
  const declared = envelopesRefineGas(item, shareMax) + more;
  return declared < shareMax ? declared : shareMax;
}

/** A wifi-billing device record as the registry reads it, with its whole window of settled seqs. */
function decodeWifiDevice(value: Uint8Array): RegisteredDevice | null {
  const device = decodeDevice(value);
  const record = decodeDeviceRecord(value);
  return device === null || !record.ok ? null : { ...device, settledWindow: settledWindowOf(record.value.window) };
}

/** The service's terms of a registration record (the owner as the service's device id input). */
function termsOf(record: RegistrationRecord) {
  const r = record.router;
  return r === undefined
    ? undefined
    : {
        owner: r.owner,
        priceMicrosPerGb: r.priceMicrosPerGb,
        stakeMicros: r.stakeMicros,
        capacityBitsPerSecond: r.capacityBitsPerSecond,
        attested: r.attested,
        name: r.name,
      };
}

export function wifiService(serviceId: number): IngestService {
  return {
    name: WIFI_SERVICE_NAME,
    serviceId,
    codeHash: nativeCodeHash(WIFI_SERVICE_NAME),
    kinds: ["router", "client"],
    packageDevicesMax: ENVELOPE_DEVICES_PER_ITEM_MAX,
    // Refine keeps up to one session delta per envelope, and W_R bounds the deltas (payload.ts).
    packageEnvelopesMax: ENVELOPES_PER_ITEM_MAX,
    registrationsPerPackageMax: REGISTRATIONS_PER_ITEM_MAX,
    checkRegistration(record) {
      if (record.kind !== "router" && record.kind !== "client") return `wifi-billing takes routers and clients (accounts), not ${record.kind}s`;
      if (record.household !== undefined) return "a household is for energy agents";
      if (record.kind === "client") return record.router === undefined ? null : "an account (kind client) has no router terms";
      const terms = termsOf(record);
      if (terms === undefined) return "a router needs its terms: owner, price, stake, name (POST /v1/wifi/routers)";
      return routerTermsProblem(terms)?.detail ?? null;
    },
    envelopesPayload: (records, into) =>
      wifiEnvelopesPayload(
        records.map((r) => ({ publicKey: r.publicKey, signingBytes: r.signingBytes, signature: r.signature })),
        into,
      ),
    envelopesGas: (devices, envelopes) => wifiEnvelopesGas(devices, envelopes),
    envelopesRefineGas: wifiEnvelopesRefineGas,
    registrationsPayload: (records) => wifiRegistrationsPayload(records.map((r) => ({ publicKey: r.publicKey, kind: r.kind, router: termsOf(r) }))),
    registrationsGas: (registrations) => wifiRegistrationsGas(registrations),
    deviceKey: (deviceId) => deviceKey(deviceId),
    decodeDevice: decodeWifiDevice,
    outcomeKey,
    ...outcomeDecoders,
  };
}

/**
 * The adapter for the wifi-billing service the node runs, found by its code hash (the service
 * accounts' info, GP 9.3 a_c) among the best block's services, or null when the node has none:
 * the same for the embedded node and a remote one, whatever id its genesis gave the service.
 */
export async function wifiServiceFromChain(api: Pick<NodeApi, "bestBlock" | "listServices" | "serviceData">): Promise<IngestService | null> {
  const best = await api.bestBlock();
  const codeHash = nativeCodeHash(WIFI_SERVICE_NAME);
  for (const id of await api.listServices(best.headerHash)) {
    const raw = await api.serviceData(best.headerHash, id);
    if (raw === null) continue;
    const info = decode(serialize.serviceData(tryAsServiceId(id)).Codec, raw);
    if (bytesEqual(info.codeHash.raw, codeHash)) return wifiService(id);
  }
  return null;
}
