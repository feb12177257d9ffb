import { afterEach, describe, expect, it } from "vitest";
import { type Envelope, signEnvelope, signingBytes } from "../../devices/envelope.ts";
import { type DeviceKey, deviceKeyFromSecret } from "../../devices/keys.ts";
import type { NodeApi } from "../../node/api.ts";
import { nativeCodeHash } from "../../node/chain/genesis.ts";
import type { WorkItemSpec } from "../../node/intake/builder.ts";
import { JamNode } from "../../node/node.ts";
import { packageFor, submitterKey, tempDir, waitForStatus } from "../../node/testing/fixtures.ts";
import { accumulateGasLimit } from "./accumulate.ts";
import { TELEMETRY_SERVICE_NAME } from "./service.ts";
import {
  decodeDeviceRecord,
  decodeOutcome,
  decodeStats,
  deviceKey,
  encodeEnvelopesItem,
  encodeRegistrationsItem,
  envelopeRejection,
  outcomeKey,
  registrationRejection,
  STATS_KEY,
} from "./types.ts";

const SERVICE_ID = 7;
const nodes: JamNode[] = [];
afterEach(async () => {
  await Promise.all(nodes.splice(0).map((n) => n.stop()));
});

function item(payload: Uint8Array, accumulateGasLimit: bigint): WorkItemSpec {
  return { serviceId: SERVICE_ID, codeHash: nativeCodeHash(TELEMETRY_SERVICE_NAME), payload, refineGasLimit: 100_000_000n, accumulateGasLimit };
}

async function settle(node: JamNode, spec: WorkItemSpec): Promise<Uint8Array> {
  const pkg = await packageFor(node, [spec]);
  await node.submitWorkPackage(0, pkg.bytes, []);
  expect(await waitForStatus(node, pkg.hash, ["accumulated"])).toMatchObject({ kind: "accumulated" });
  return pkg.hash;
}

async function value(api: NodeApi, key: Uint8Array): Promise<Uint8Array> {
  const raw = await api.serviceValue((await api.bestBlock()).headerHash, SERVICE_ID, key);
  if (raw === null) throw new Error("no value");
  return raw;
}

function unwrap<T>(r: { ok: true; value: T } | { ok: false; error: string }): T {
  if (!r.ok) throw new Error(r.error);
  return r.value;
}

function record(key: DeviceKey, e: Envelope) {
  return { publicKey: key.publicKey, signingBytes: signingBytes(e), signature: e.signature };
}

describe("telemetry on an in-process JamNode", () => {
  it("registers devices, settles their envelopes exactly once and records outcomes", async () => {
    const node = await JamNode.open({
      dataDir: tempDir(),
      slotMs: 50,
      refineTimeoutMs: 5_000,
      services: [
        {
          id: SERVICE_ID,
          name: TELEMETRY_SERVICE_NAME,
          moduleUrl: new URL("./service.ts", import.meta.url).href,
          balance: 1_000_000n,
          authorizedKeys: [submitterKey.publicKey],
        },
      ],
    });
    nodes.push(node);
    node.start();
    const [meter, inverter, stranger] = [1, 2, 3].map((n) => deviceKeyFromSecret(new Uint8Array(32).fill(n))) as [DeviceKey, DeviceKey, DeviceKey];

    // Registrations: the meter twice, so the second is refused.
    const regs = [
      { publicKey: meter.publicKey, kind: "meter" as const },
      { publicKey: inverter.publicKey, kind: "inverter" as const },
      { publicKey: meter.publicKey, kind: "meter" as const },
    ];
    const regHash = await settle(node, item(encodeRegistrationsItem(regs), accumulateGasLimit({ registrations: regs.length })));
    const regOutcome = unwrap(decodeOutcome(await value(node, outcomeKey(regHash))));
    expect(regOutcome).toMatchObject({ registrationsSettled: 2, rejectedRegistrations: [{ code: 5 }] });
    expect(registrationRejection(regOutcome, meter.deviceId)).toBe("JG_ERR_DEVICE_EXISTS");
    expect(registrationRejection(regOutcome, inverter.deviceId)).toBeNull();
    const registered = unwrap(decodeDeviceRecord(await value(node, deviceKey(meter.deviceId))));
    expect(registered).toMatchObject({ publicKey: meter.publicKey, kind: 0, window: { highestSeq: null }, envelopesSettled: 0n });

    // Envelopes, signed by devices/envelope.ts: three good meter readings, a forged inverter one, one from an unregistered device.
    const envelope = (key: DeviceKey, seq: number, kind: "meter.reading" | "inverter.reading") =>
      signEnvelope(
        { version: 1, device: key.deviceId, seq, kind, timeMs: 1_700_000_000_000 + seq * 1_000, body: new TextEncoder().encode(`{"wh":${seq}}`) },
        key.secretKey,
      );
    const forged = envelope(inverter, 0, "inverter.reading");
    const records = [
      record(meter, envelope(meter, 0, "meter.reading")),
      record(meter, envelope(meter, 1, "meter.reading")),
      record(meter, envelope(meter, 2, "meter.reading")),
      { ...record(inverter, forged), signature: Uint8Array.from(forged.signature, (b, i) => (i === 0 ? b ^ 1 : b)) },
      record(stranger, envelope(stranger, 0, "meter.reading")),
    ];
    const gas = accumulateGasLimit({ devices: 3, envelopes: records.length });
    const envHash = await settle(node, item(encodeEnvelopesItem(records), gas));
    const outcome = unwrap(decodeOutcome(await value(node, outcomeKey(envHash))));
    expect(outcome).toMatchObject({ envelopesSettled: 3, commitments: [expect.any(Uint8Array)] });
    expect([0, 1, 2].map((s) => envelopeRejection(outcome, meter.deviceId, s))).toEqual([null, null, null]);
    expect(envelopeRejection(outcome, inverter.deviceId, 0)).toBe("JG_ERR_ENVELOPE_SIGNATURE");
    expect(envelopeRejection(outcome, stranger.deviceId, 0)).toBe("JG_ERR_DEVICE_UNREGISTERED");
    const settled = unwrap(decodeDeviceRecord(await value(node, deviceKey(meter.deviceId))));
    expect(settled).toMatchObject({ envelopesSettled: 3n, window: { highestSeq: 2n, bitmap: 0b11n }, lastSettledSlot: outcome.slot });

    // The same envelopes again, in a new package: refused as replays, counted once.
    const againHash = await settle(node, item(encodeEnvelopesItem(records.slice(0, 3)), gas));
    const again = unwrap(decodeOutcome(await value(node, outcomeKey(againHash))));
    expect(again).toMatchObject({ envelopesSettled: 0, rejectedEnvelopes: [{ start: 0n, length: 3, code: 3 }] });
    expect(unwrap(decodeDeviceRecord(await value(node, deviceKey(meter.deviceId)))).envelopesSettled).toBe(3n);
    expect(unwrap(decodeStats(await value(node, STATS_KEY)))).toEqual({ devicesRegistered: 2n, envelopesSettled: 3n, envelopesRejected: 5n });

    // One package of two envelopes items (the gateway splits a large package at a device
    // boundary, and the node refines its items in parallel): one outcome covers both.
    const first = [3, 4].map((s) => record(meter, envelope(meter, s, "meter.reading")));
    const second = [0, 1].map((s) => record(inverter, envelope(inverter, s, "inverter.reading")));
    const split = await packageFor(
      node,
      [first, second].map((part) => item(encodeEnvelopesItem(part), accumulateGasLimit({ devices: 1, envelopes: part.length }))),
    );
    await node.submitWorkPackage(0, split.bytes, []);
    expect(await waitForStatus(node, split.hash, ["accumulated"])).toMatchObject({ kind: "accumulated" });
    const both = unwrap(decodeOutcome(await value(node, outcomeKey(split.hash))));
    expect(both).toMatchObject({ envelopesSettled: 4, rejectedEnvelopes: [], commitments: [expect.any(Uint8Array), expect.any(Uint8Array)] });
    expect([3, 4].map((s) => envelopeRejection(both, meter.deviceId, s))).toEqual([null, null]);
    expect([0, 1].map((s) => envelopeRejection(both, inverter.deviceId, s))).toEqual([null, null]);
  });
});
