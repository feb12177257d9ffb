/**
 * The households as a run drives them: each is two real MQTT devices, its smart meter (publishing
 * the household model's readings) and its trading agent (publishing orders), with keys derived
 * from the scenario, registered through the gateway's HTTP API (`POST /v1/devices`) and connected
 * to its broker with their signed tokens.
 */
import { createHash } from "node:crypto";
import { DeviceClient } from "../../devices/client.ts";
import { type DeviceKey, deviceKeyFromSecret } from "../../devices/keys.ts";
import { HouseholdAgent } from "./agent.ts";
import type { SimClock } from "./clock.ts";
import { HouseholdModel } from "./household.ts";
import type { RunCounts } from "./progress.ts";
import type { Scenario } from "./scenario.ts";
import type { EnergyTarget } from "./target.ts";

/** Registration must be settled on the chain within this: minutes on a busy machine for thousands of devices, never forever. */
const REGISTRATION_DEADLINE_MS = 120_000;
/** How often a pending registration is asked after. */
const REGISTRATION_POLL_MS = 100;

export interface Household {
  readonly id: string;
  readonly meterKey: DeviceKey;
  readonly agentKey: DeviceKey;
  /** What the meter measures. */
  readonly model: HouseholdModel;
  readonly agent: HouseholdAgent;
  meter?: DeviceClient;
  trader?: DeviceClient;
  /** The scenario's intervals the agent has ordered for, and has seen the meter's truth of. */
  ordered: number;
  observed: number;
}

/**
 * Household keys from the scenario's seed and start: the same scenario makes the same devices, and
 * a later run against the same running jamgate (which starts at a later interval) makes new ones,
 * whose seqs start from 0 again.
 */
function keyOf(scenario: Scenario, household: string, role: "meter" | "agent"): DeviceKey {
  return deviceKeyFromSecret(createHash("sha256").update(`jamgate-sim/${scenario.seed}/${scenario.start}/${household}/${role}`).digest());
}

/**
 * The scenario's households, not yet registered. An agent whose forecaster is `perfect` asks a
 * second model of its household (same seed, so the same truth) for an interval's net energy.
 */
export function makeHouseholds(scenario: Scenario, clock: SimClock): Household[] {
  return scenario.households.map((spec, index) => {
    const shadow = new HouseholdModel(spec, scenario, index);
    const oracle = (k: number) => {
      shadow.advance(Math.min(clock.endMs, clock.startMs + (k + 1) * clock.intervalMs));
      const e = shadow.intervalEnergy(k);
      return e === undefined ? 0 : e.importWh - e.exportWh;
    };
    return {
      id: spec.id,
      meterKey: keyOf(scenario, spec.id, "meter"),
      agentKey: keyOf(scenario, spec.id, "agent"),
      model: new HouseholdModel(spec, scenario, index),
      agent: new HouseholdAgent(spec, scenario, index, oracle),
      ordered: 0,
      observed: 0,
    };
  });
}

/** Registers every household's devices, then connects them, counting their receipts and refusals into `counts`. */
export async function connectHouseholds(target: EnergyTarget, households: readonly Household[], clientsDir: string, counts: RunCounts): Promise<void> {
  await registerAll(target, households);
  for (const h of households) {
    h.meter = await DeviceClient.connect({ url: target.mqttUrl, key: h.meterKey, dataDir: clientsDir });
    h.trader = await DeviceClient.connect({ url: target.mqttUrl, key: h.agentKey, dataDir: clientsDir });
    for (const client of [h.meter, h.trader]) {
      client.on("receipt", () => counts.receipts++);
      client.on("deviceError", (e: { code: string }) => counts.refused(e.code));
    }
  }
}

/** Disconnects every device that connected. */
export async function closeHouseholds(households: readonly Household[]): Promise<void> {
  for (const h of households) {
    await h.meter?.close();
    await h.trader?.close();
  }
}

/** Registers every household's meter, then its agent, through the gateway's HTTP API; waits until all are on the ledger. */
async function registerAll(target: EnergyTarget, households: readonly Household[]): Promise<void> {
  const post = async (key: DeviceKey, kind: "meter" | "agent", household?: string) => {
    const response = await fetch(`${target.httpUrl}/v1/devices`, {
      method: "POST",
      headers: { authorization: `Bearer ${target.token}`, "content-type": "application/json" },
      body: JSON.stringify({
        publicKey: Buffer.from(key.publicKey).toString("hex"),
        kind,
        service: target.service.name,
        ...(household === undefined ? {} : { household }),
      }),
    });
    // 409: registered already (a remote market from an earlier run with the same seed): fine.
    if (response.status !== 202 && response.status !== 409) throw new Error(`registering ${key.deviceId}: HTTP ${response.status} ${await response.text()}`);
  };
  const deadline = Date.now() + REGISTRATION_DEADLINE_MS;
  const settled = async (keys: readonly DeviceKey[]) => {
    for (const key of keys) {
      for (;;) {
        const view = await target.view(key.deviceId);
        if (view?.status === "registered") break;
        if (view?.status === "failed") throw new Error(`registration of ${key.deviceId} failed: ${view.code} ${view.detail ?? ""}`);
        if (Date.now() > deadline) throw new Error(`registration of ${key.deviceId} not settled within ${REGISTRATION_DEADLINE_MS / 1000} s`);
        await new Promise((r) => setTimeout(r, REGISTRATION_POLL_MS));
      }
    }
  };
  // Meters first, settled before any agent is posted: an agent's registration names its meter,
  // which must be registered when the agent's is accumulated. Posted together, the meters and
  // the agents may go in two packages on two cores of one block, accumulated in core order, and
  // the agents' package first refuses them (JG_ERR_ENERGY_HOUSEHOLD).
  await Promise.all(households.map((h) => post(h.meterKey, "meter")));
  await settled(households.map((h) => h.meterKey));
  await Promise.all(households.map((h) => post(h.agentKey, "agent", h.meterKey.deviceId)));
  await settled(households.map((h) => h.agentKey));
}
