import { describe, expect, it } from "vitest";
import { generatePopulation } from "./scenario.ts";
import { generateSessions, INTERIM_INTERVAL_SECONDS, profileAt, STATUS_INTERIM, STATUS_START, STATUS_STOP, UPDATE_OCTETS_MIN } from "./traffic.ts";

describe("generateSessions", () => {
  const population = generatePopulation({ routers: 6, clients: 60, seed: 4 });
  const sessions = generateSessions(population, "2026-06-19T18:00:00Z", 4 * 3600);

  it("gives every session a Start at zero, Interim-Updates every 300 s, and a Stop with a cause, counters strictly rising", () => {
    expect(sessions.length).toBeGreaterThan(60);
    for (const s of sessions) {
      const u = s.updates;
      expect(u[0]).toMatchObject({ status: STATUS_START, seconds: 0, inputOctets: 0, outputOctets: 0, cause: 0 });
      expect(u[u.length - 1]!.status).toBe(STATUS_STOP);
      expect(u[u.length - 1]!.cause).toBeGreaterThan(0);
      for (let i = 1; i < u.length; i++) {
        if (i < u.length - 1) expect(u[i]).toMatchObject({ status: STATUS_INTERIM, seconds: i * INTERIM_INTERVAL_SECONDS, cause: 0 });
        expect(u[i]!.inputOctets - u[i - 1]!.inputOctets).toBeGreaterThanOrEqual(UPDATE_OCTETS_MIN);
        expect(u[i]!.outputOctets - u[i - 1]!.outputOctets).toBeGreaterThanOrEqual(UPDATE_OCTETS_MIN);
        expect(u[i]!.atSeconds - u[0]!.atSeconds).toBe(u[i]!.seconds);
      }
    }
  });

  it("keeps every update within half the router's link over its interval, so the service's capacity check holds", () => {
    for (const s of sessions) {
      const capacity = population.routers[s.router]!.capacityBitsPerSecond;
      const u = s.updates;
      for (let i = 1; i < u.length; i++) {
        const octets = u[i]!.inputOctets + u[i]!.outputOctets - u[i - 1]!.inputOctets - u[i - 1]!.outputOctets;
        expect(octets * 8).toBeLessThanOrEqual((capacity * (u[i]!.seconds - u[i - 1]!.seconds)) / 2 + 16);
        expect((u[i]!.inputOctets + u[i]!.outputOctets) * 8).toBeLessThanOrEqual(capacity * u[i]!.seconds);
      }
    }
  });

  it("gives a client one session at a time, at one of its routers, within the run", () => {
    const byClient = new Map<number, typeof sessions>();
    for (const s of sessions) byClient.set(s.client, [...(byClient.get(s.client) ?? []), s]);
    for (const [client, list] of byClient) {
      for (const s of list) expect(population.clients[client]!.routers).toContain(s.router);
      for (let i = 1; i < list.length; i++) expect(list[i]!.updates[0]!.atSeconds).toBeGreaterThan(list[i - 1]!.updates.at(-1)!.atSeconds);
      expect(list.at(-1)!.updates.at(-1)!.atSeconds).toBeLessThanOrEqual(4 * 3600);
    }
    expect(sessions.map((s) => s.index)).toEqual(sessions.map((_, i) => i));
    for (let i = 1; i < sessions.length; i++) expect(sessions[i]!.updates[0]!.atSeconds).toBeGreaterThanOrEqual(sessions[i - 1]!.updates[0]!.atSeconds);
  });

  it("gives native sessions 16-byte ids and RADIUS ones hostapd-style Acct-Session-Ids, all distinct", () => {
    for (const s of sessions) expect(s.acctSessionId).toMatch(population.routers[s.router]!.transport === "radius" ? /^[0-9A-F]{16}$/ : /^[0-9a-f]{32}$/);
    expect(new Set(sessions.map((s) => s.acctSessionId)).size).toBe(sessions.length);
  });

  it("follows the diurnal profile: far more sessions start in the evening peak than before dawn", () => {
    expect(profileAt(21)).toBe(1);
    expect(profileAt(4.5)).toBeCloseTo(0.065, 10); // halfway from 0.06 (04:00) to 0.07 (05:00)
    const day = generateSessions(generatePopulation({ routers: 4, clients: 300, seed: 5 }), "2026-06-19T00:00:00Z", 24 * 3600);
    const startsIn = (hour: number) => day.filter((s) => Math.floor(s.updates[0]!.atSeconds / 3600) === hour).length;
    expect(startsIn(21)).toBeGreaterThan(5 * startsIn(4));
  });

  it("has heavy sessions whose counters pass 2^32 (RADIUS counters wrap into Gigawords)", () => {
    const day = generateSessions(generatePopulation({ routers: 4, clients: 300, seed: 5 }), "2026-06-19T00:00:00Z", 24 * 3600);
    expect(day.some((s) => s.updates.at(-1)!.outputOctets > 2 ** 32)).toBe(true);
  });

  it("replays exactly from its seed", () => {
    expect(generateSessions(generatePopulation({ routers: 6, clients: 60, seed: 4 }), "2026-06-19T18:00:00Z", 4 * 3600)).toEqual(sessions);
  });
});
