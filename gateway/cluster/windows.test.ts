/**
 * What a gateway of a cluster learns of a device's window when it connects and Redis knows none of
 * its seqs (a device new to the cluster, away for a week, or Redis's data lost): the window its
 * service settled, read from the ledger through the service's adapter, every settled seq of it,
 * not only the highest. A resend of a seq settled below the highest is then a replay before its
 * PUBACK, and a seq the ledger has not settled stays new.
 */
import { describe, expect, it } from "vitest";
import { SEQ_WINDOW_SEQS } from "../../devices/protocol/seq-window.ts";
import { EMPTY_WINDOW as EMPTY_SERVICE_WINDOW, type ReplayWindow, windowSettle } from "../../services/common/window.ts";
import { DeviceRole } from "../../services/energy-trading/payload.ts";
import { encodeDeviceRecord as encodeEnergyDevice } from "../../services/energy-trading/storage.ts";
import { encodeDeviceRecord as encodeTelemetryDevice } from "../../services/telemetry/storage.ts";
import { WifiDeviceKind } from "../../services/wifi-billing/payload.ts";
import { encodeDeviceRecord as encodeWifiDevice } from "../../services/wifi-billing/storage.ts";
import { settledWindowOf, settledWindowOfDevice } from "../ingest-service.ts";
import { energyService } from "../services/energy.ts";
import { telemetryService } from "../services/telemetry.ts";
import { wifiService } from "../services/wifi.ts";
import { acceptSeq, EMPTY_WINDOW, judgeSeq } from "../window.ts";
import { learnedWindow, seqsOfWindow } from "./windows.ts";

/** The service's window after settling `seqs`, in this order, as its accumulate does (services/common/window.ts). */
function settledWindow(seqs: readonly number[]): ReplayWindow {
  let w = EMPTY_SERVICE_WINDOW;
  for (const seq of seqs) w = windowSettle(w, BigInt(seq)) ?? w;
  return w;
}

/** 0…20 but 4, 6 and 15 settled: three holes below the highest. */
const SETTLED = Array.from({ length: 21 }, (_, seq) => seq).filter((seq) => seq !== 4 && seq !== 6 && seq !== 15);
const HOLES = [4, 6, 15];

/** The device record each adapter reads, with that window. */
function records(window: ReplayWindow) {
  const publicKey = new Uint8Array(32).fill(5);
  return [
    {
      name: "telemetry",
      adapter: telemetryService(2),
      bytes: encodeTelemetryDevice({ publicKey, kind: 0, registeredSlot: 1, window, envelopesSettled: 18n, lastSettledSlot: 9 }),
    },
    {
      name: "energy-trading",
      adapter: energyService(3, { marketStartMs: 0n, intervalMs: 900_000 }),
      bytes: encodeEnergyDevice({
        publicKey,
        role: DeviceRole.meter,
        household: new Uint8Array(16).fill(1) as never,
        registeredSlot: 1,
        window,
        lastReading: null,
        envelopesSettled: 18n,
      }),
    },
    {
      name: "wifi-billing",
      adapter: wifiService(4),
      bytes: encodeWifiDevice({ publicKey, kind: WifiDeviceKind.router, registeredSlot: 1, window, envelopesSettled: 18n }),
    },
  ];
}

describe("a cluster's gateway learning a device's window from the ledger", () => {
  it.each(records(settledWindow(SETTLED)))("reads every settled seq of a $name device, and answers each a replay, the holes new", ({ adapter, bytes }) => {
    const device = adapter.decodeDevice(bytes);
    expect(device).not.toBeNull();
    expect(device!.settledHighestSeq).toBe(20);
    expect(device!.settledWindow).toEqual(settledWindowOf(settledWindow(SETTLED)));
    // Redis knows none of its seqs; this gateway logged none either.
    const w = learnedWindow(EMPTY_WINDOW, [], [settledWindowOfDevice(device!)]);
    for (const seq of SETTLED) expect(judgeSeq(w, seq), `seq ${seq}`).toBe("replay");
    for (const seq of HOLES) expect(judgeSeq(w, seq), `seq ${seq}`).toBe("new");
    expect(judgeSeq(w, 21)).toBe("new");
  });

  it("adds the ledger's window to what the gateway and Redis know, taking nothing out", () => {
    // This gateway logged 22; Redis holds 23 from another gateway; the ledger settled SETTLED.
    const own = acceptSeq(EMPTY_WINDOW, 22);
    const w = learnedWindow(own, [23], [settledWindowOf(settledWindow(SETTLED))]);
    expect(w.highest).toBe(23);
    for (const seq of [...SETTLED, 22, 23]) expect(judgeSeq(w, seq), `seq ${seq}`).toBe("replay");
    for (const seq of HOLES) expect(judgeSeq(w, seq), `seq ${seq}`).toBe("new");
    // The registry's entry of a device just registered has no window: its highest alone, here none.
    expect(learnedWindow(w, [], [settledWindowOfDevice({ settledHighestSeq: -1 })])).toEqual(w);
  });

  it("lists a window's seqs as the bitmap says, at the window's far edge too", () => {
    const window = settledWindow([0, 1, 2, 70, 100, 100 - SEQ_WINDOW_SEQS]);
    expect(seqsOfWindow(settledWindowOf(window))).toEqual([100, 70, 100 - SEQ_WINDOW_SEQS]);
    expect(seqsOfWindow(settledWindowOf(settledWindow([0, 2])))).toEqual([2, 0]);
    expect(seqsOfWindow(EMPTY_WINDOW)).toEqual([]);
    // A highest past 2^53 (no envelope carries one) keeps no bitmap, whose bits would name other seqs.
    expect(settledWindowOf({ highestSeq: 2n ** 60n, bitmap: 1n })).toEqual({ highest: Number.MAX_SAFE_INTEGER, below: 0n });
  });
});
