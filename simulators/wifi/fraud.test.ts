import { describe, expect, it } from "vitest";
import { FRAUD_CODES, FRAUD_KINDS, fraudCounts, NATIVE_FRAUD_KINDS, planSteps, RADIUS_FRAUD_KINDS } from "./fraud.ts";
import { generatePopulation } from "./scenario.ts";
import { generateSessions } from "./traffic.ts";

const population = generatePopulation({ routers: 5, clients: 40, seed: 11 });
const sessions = generateSessions(population, "2026-06-19T18:00:00Z", 3 * 3600);

describe("planSteps", () => {
  it("at fraud rate 0 sends each session's updates once, in order, with vouchers", () => {
    const plan = planSteps(population, sessions, 0);
    expect(plan).toHaveLength(sessions.length);
    for (const s of plan) {
      expect(s.strip).toBe(false);
      expect(s.steps).toEqual(s.session.updates.map((_, update) => ({ kind: "honest", update })));
    }
    expect(Object.values(fraudCounts(plan)).every((n) => n === 0)).toBe(true);
  });

  it("at fraud rate 1 tries a fraud before every update past the Start of a session with vouchers, and strips every native session of a non-attested router", () => {
    const plan = planSteps(population, sessions, 1);
    for (const s of plan) {
      const router = population.routers[s.session.router]!;
      expect(s.strip).toBe(router.transport === "mqtt" && !router.attested);
      const honest = s.steps.filter((step) => step.kind === "honest");
      expect(honest).toEqual(s.session.updates.map((_, update) => ({ kind: "honest", update })));
      const frauds = s.steps.length - honest.length;
      expect(frauds).toBe(s.strip ? 0 : s.session.updates.length - 1);
    }
  });

  it("builds each attempt so it must be refused with its code: none before the Start, replays of earlier interims, reorders of a later interim, counters lowered but not below zero", () => {
    const plan = planSteps(population, sessions, 0.5);
    let checked = 0;
    for (const s of plan) {
      const last = s.session.updates.length - 1;
      const transport = population.routers[s.session.router]!.transport;
      s.steps.forEach((step, at) => {
        if (step.kind === "honest") return;
        checked++;
        // The honest update the attempt comes before.
        const next = s.steps.slice(at + 1).find((x) => x.kind === "honest") as { update: number };
        expect((transport === "mqtt" ? NATIVE_FRAUD_KINDS : RADIUS_FRAUD_KINDS) as readonly string[]).toContain(step.kind);
        expect(next.update).toBeGreaterThanOrEqual(step.kind === "replay" || step.kind.endsWith("backwards") ? 2 : 1);
        if (step.kind === "inflate") {
          expect(step.update).toBe(next.update);
          expect(step.extraOutputOctets).toBeGreaterThan(0);
        }
        if (step.kind === "replay") expect(step.of >= 1 && step.of < next.update).toBe(true);
        if (step.kind === "reorder") expect(step.update === next.update + 1 && step.update < last).toBe(true);
        if (step.kind === "radius-duplicate") expect(step.of).toBe(next.update - 1);
        if (step.kind === "radius-forged") expect(step.update).toBe(next.update);
        if (step.kind === "backwards" || step.kind === "radius-backwards") {
          expect(step.after).toBe(next.update - 1);
          expect(step.minusInputOctets).toBeGreaterThan(0);
          expect(step.minusInputOctets).toBeLessThanOrEqual(s.session.updates[step.after]!.inputOctets);
        }
      });
    }
    expect(checked).toBeGreaterThan(20);
  });

  it("deals every kind, about evenly, once there are enough fraud points", () => {
    const counts = fraudCounts(planSteps(population, sessions, 0.5));
    for (const kind of FRAUD_KINDS) expect(counts[kind], kind).toBeGreaterThan(0);
    const native = NATIVE_FRAUD_KINDS.map((k) => counts[k]);
    // A deck deals each kind once per round; reorder is skipped where no later interim exists.
    expect(Math.max(...native) - Math.min(...native)).toBeLessThanOrEqual(Math.ceil(Math.max(...native) / 2));
    expect(Object.keys(FRAUD_CODES).sort()).toEqual([...FRAUD_KINDS].sort());
  });

  it("refuses a rate outside [0, 1] and replays exactly from its seed", () => {
    expect(() => planSteps(population, sessions, 1.5)).toThrow(/fraudRate/);
    expect(() => planSteps(population, sessions, -0.1)).toThrow(/fraudRate/);
    expect(planSteps(population, sessions, 0.2)).toEqual(planSteps(population, sessions, 0.2));
  });
});
