import { Ajv } from "ajv";
import fc from "fast-check";
import type { FastifyInstance, RouteOptions } from "fastify";
import { afterEach, describe, expect, it } from "vitest";
import { type ErrorCode, errorRegistry, JamgateError } from "../../devices/protocol/errors.ts";
import { buildHttp } from "../http.ts";
import type { Registrations } from "../registration.ts";
import { balanceView, blockView, deviceView, envelopesEntry, FakeLedger, fakeHex, intervalView, packageView, tradeEntry } from "../testing/fake-ledger.ts";
import { LIST_LIMIT_DEFAULT, parseTimeMs, type ProofSource } from "./routes.ts";
import { sharedSchemas } from "./schemas.ts";
import { type EntryView, LIST_LIMIT_MAX } from "./types.ts";

const meter = fakeHex("device meter", 16);
const agent = fakeHex("device agent", 16);
const householdA = fakeHex("device household a", 16);
const householdB = fakeHex("device household b", 16);

/** A ledger with a few of everything: blocks, packages of each status, devices of both services, entries of both kinds, intervals, balances. */
function populated(): FakeLedger {
  const ledger = new FakeLedger();
  for (let slot = 0; slot < 12; slot++) ledger.addBlock(blockView(slot, slot === 0 ? { reports: [], accumulated: [] } : {}));
  ledger.addPackage(
    packageView(0, {
      status: "submitted",
      core: null,
      refineMs: null,
      reportedSlot: null,
      accumulatedSlot: null,
      accumulatedBlock: null,
      settled: 0,
      refused: 0,
    }),
  );
  ledger.addPackage(packageView(1, { status: "failed", error: { code: "JG_ERR_REFINE_PANIC", detail: "refine threw" } }));
  for (let i = 2; i < 6; i++) ledger.addPackage(packageView(i, { service: i % 2 ? "energy-trading" : "telemetry", serviceId: i % 2 ? 2 : 1 }));
  ledger.addDevice(deviceView("meter"));
  ledger.addDevice(
    deviceView("agent", {
      kind: "agent",
      service: "energy-trading",
      serviceId: 2,
      household: householdA,
      settledHighestSeq: -1,
      lastSettledSlot: null,
      registeredSlot: null,
    }),
  );
  for (let id = 0; id < 30; id++) ledger.addEntry(id % 3 === 2 ? tradeEntry(id, householdA, householdB) : envelopesEntry(id, id % 3 === 0 ? meter : agent));
  for (let interval = 0; interval < 5; interval++)
    ledger.addInterval(intervalView(interval, [householdA, householdB], interval === 4 ? { settled: false, clearingPriceMicrosPerKwh: null } : {}));
  ledger.setBalance(balanceView(householdA, "-123456789012345678"));
  ledger.setBalance(balanceView(householdB, "123456789012345678"));
  return ledger;
}

/** Proof documents of the jamgate-proof/1 shape, for the routes' plumbing (prover.test.ts makes real ones). */
function fixtureProofs(ledger: FakeLedger): ProofSource {
  const state = {
    serviceId: 2,
    storageKey: "6c",
    stateKey: "ab".repeat(31),
    value: "01",
    root: fakeHex("root"),
    siblings: [fakeHex("s0"), fakeHex("s1")],
    block: { hash: fakeHex("block 20"), slot: 20 },
  };
  const doc = (claim: object, extra: object = { state }) => ({ format: "jamgate-proof/1", chain: "tiny", claim, ...extra, headers: ["00ff", "ff00"] });
  return {
    async entryProof(id) {
      const entry = await ledger.entry(id);
      if (entry === null) throw new JamgateError("JG_ERR_NOT_FOUND", `no entry ${id}`);
      if (entry.kind === "envelopes") return doc({ kind: "settled-seq", service: entry.service, device: entry.device, seq: entry.seqs!.at(-1) });
      return doc({
        kind: "energy-entry",
        service: "energy-trading",
        interval: entry.interval,
        index: entry.index,
        entry: {
          reason: entry.kind,
          buyer: entry.buyer,
          seller: entry.seller,
          energyWh: entry.energyWh,
          priceMicrosPerKwh: entry.priceMicrosPerKwh,
          amountMicros: entry.amountMicros,
        },
      });
    },
    async balanceProof(service, account) {
      const balance = await ledger.balance(service, account);
      if (balance === null) throw new JamgateError("JG_ERR_NOT_FOUND", "no balance");
      return doc({ kind: "balance", service, account, balanceMicros: balance.balanceMicros });
    },
    async seqProof(device, seq) {
      if (seq > 1000) throw new JamgateError("JG_ERR_PROOF_UNAVAILABLE", "not settled");
      return doc({ kind: "settled-seq", service: "telemetry", device, seq });
    },
    async readingProof(device, seq) {
      return doc(
        { kind: "reading", service: "telemetry", device, seq },
        { da: { packageHash: fakeHex("package 3"), bundle: "AAEC", envelope: { offset: 10, length: 200 }, report: "0102", reportBlock: "0304" } },
      );
    },
  };
}

interface Harness {
  readonly app: FastifyInstance;
  readonly ledger: FakeLedger;
  /** Every route the app registered (onRoute), GET and POST, HEAD left out. */
  readonly routes: RouteOptions[];
  readonly counted: ErrorCode[];
}

const open: FastifyInstance[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((app) => app.close()));
});

const registrations = {
  view: async (id: string) =>
    id === meter
      ? { deviceId: id, kind: "meter", service: "telemetry", status: "registered", packageHash: fakeHex("package 0") }
      : id === fakeHex("device pending", 16)
        ? { deviceId: id, kind: "meter", service: "telemetry", status: "pending" }
        : null,
  register: async () => ({ deviceId: fakeHex("device new", 16), kind: "meter", service: "telemetry", status: "pending", packageHash: fakeHex("package 9") }),
  bulkStatus: (batch: string) =>
    batch === fakeHex("bulk batch", 16)
      ? {
          batch,
          rows: 3,
          registered: 1,
          alreadyRegistered: 1,
          pending: 1,
          failed: 1,
          packages: [fakeHex("package 9")],
          failures: [{ deviceId: fakeHex("device refused", 16), code: "JG_ERR_DEVICE_EXISTS", detail: "refused by service telemetry" }],
          startedAtMs: 1_700_000_000_000,
          finishedAtMs: null,
        }
      : null,
} as unknown as Registrations;

async function harness(ledger: FakeLedger = populated()): Promise<Harness> {
  const counted: ErrorCode[] = [];
  const app = buildHttp({
    operatorToken: "T",
    registrations,
    metrics: { registry: { contentType: "text/plain; version=0.0.4", metrics: async () => "jamgate_up 1\n" } } as never,
    count: (code) => counted.push(code),
    ledger,
    prover: fixtureProofs(ledger),
  });
  open.push(app);
  const routes: RouteOptions[] = [];
  // Routes are registered by plugins, at ready: a hook added now sees every one.
  app.addHook("onRoute", (route) => {
    if (route.method !== "HEAD") routes.push(route);
  });
  await app.ready();
  return { app, ledger, routes, counted };
}

/** A URL that answers 200 for each GET route of the API (its path with params filled from the populated ledger). */
const SAMPLES: Record<string, string> = {
  "/v1/devices/:id": `/v1/devices/${meter}`,
  "/v1/devices/bulk/:batch": `/v1/devices/bulk/${fakeHex("bulk batch", 16)}`,
  "/metrics": "/metrics",
  "/healthz": "/healthz",
  "/v1/chain/head": "/v1/chain/head",
  "/v1/blocks": "/v1/blocks?limit=5",
  "/v1/blocks/:hashOrSlot": `/v1/blocks/${fakeHex("block 3")}`,
  "/v1/packages": "/v1/packages?status=accumulated",
  "/v1/packages/:hash": `/v1/packages/${fakeHex("package 1")}`,
  "/v1/services": "/v1/services",
  "/v1/devices": "/v1/devices?limit=1",
  "/v1/entries": "/v1/entries?limit=10",
  "/v1/entries/:id": "/v1/entries/2",
  "/v1/energy/intervals": "/v1/energy/intervals?limit=3",
  "/v1/energy/intervals/:interval": "/v1/energy/intervals/1",
  "/v1/balances": "/v1/balances?service=energy-trading",
  "/v1/balances/:service/:account": `/v1/balances/energy-trading/${householdA}`,
  "/v1/proofs/entries/:id": "/v1/proofs/entries/2",
  "/v1/proofs/balances/:service/:account": `/v1/proofs/balances/energy-trading/${householdB}`,
  "/v1/proofs/devices/:id/seqs/:seq": `/v1/proofs/devices/${meter}/seqs/41`,
  "/v1/proofs/readings/:device/:seq": `/v1/proofs/readings/${meter}/41`,
};

/** What the reader itself answers for a sample, as JSON: the route must pass every field through. */
async function direct(ledger: FakeLedger, url: string): Promise<unknown> {
  const proofs = fixtureProofs(ledger);
  const answers: Record<string, () => Promise<unknown>> = {
    "/v1/chain/head": () => ledger.head(),
    "/v1/blocks?limit=5": () => ledger.blocks({ limit: 5 }),
    [`/v1/blocks/${fakeHex("block 3")}`]: () => ledger.block(fakeHex("block 3")),
    "/v1/packages?status=accumulated": () => ledger.packages({ status: "accumulated", limit: LIST_LIMIT_DEFAULT }),
    [`/v1/packages/${fakeHex("package 1")}`]: () => ledger.package(fakeHex("package 1")),
    "/v1/services": () => ledger.services(),
    "/v1/devices?limit=1": () => ledger.devices({ limit: 1 }),
    "/v1/entries?limit=10": () => ledger.entries({}, { limit: 10 }),
    "/v1/entries/2": () => ledger.entry(2),
    "/v1/energy/intervals?limit=3": () => ledger.intervals({ limit: 3 }),
    "/v1/energy/intervals/1": () => ledger.interval(1),
    "/v1/balances?service=energy-trading": () => ledger.balances("energy-trading"),
    [`/v1/balances/energy-trading/${householdA}`]: () => ledger.balance("energy-trading", householdA),
    "/v1/proofs/entries/2": () => proofs.entryProof(2),
    [`/v1/proofs/balances/energy-trading/${householdB}`]: () => proofs.balanceProof("energy-trading", householdB),
    [`/v1/proofs/devices/${meter}/seqs/41`]: () => proofs.seqProof(meter, 41),
    [`/v1/proofs/readings/${meter}/41`]: () => proofs.readingProof(meter, 41),
  };
  const answer = answers[url];
  return answer === undefined ? undefined : JSON.parse(JSON.stringify(await answer()));
}

function responseValidator() {
  const ajv = new Ajv({ strict: false, allErrors: true });
  for (const schema of sharedSchemas) ajv.addSchema(schema);
  return ajv;
}

/** The list routes and a valid query of each (bad ones are made from these). */
const LIST_ROUTES = ["/v1/blocks", "/v1/packages", "/v1/devices", "/v1/entries", "/v1/energy/intervals", "/v1/balances"] as const;

describe("ledger routes", () => {
  it("every GET route answers 200 with a body its response schema accepts, holding every field the reader gave", async () => {
    const h = await harness();
    const ajv = responseValidator();
    const gets = h.routes.filter((r) => r.method === "GET" && !(r.schema as { hide?: boolean } | undefined)?.hide && r.url !== "/v1/events");
    expect(gets.map((r) => r.url).sort()).toEqual(Object.keys(SAMPLES).sort());
    for (const route of gets) {
      const url = SAMPLES[route.url]!;
      const reply = await h.app.inject({ url });
      expect(reply.statusCode, `${url}: ${reply.body}`).toBe(200);
      const schema = (route.schema as { response: Record<number, Record<string, unknown>> }).response[200]!;
      if ("content" in schema) {
        expect(route.url).toBe("/metrics");
        expect(reply.body).toBe("jamgate_up 1\n");
        continue;
      }
      const body = reply.json();
      const validate = ajv.compile(schema);
      expect(validate(body), `${url}: ${JSON.stringify(validate.errors)}`).toBe(true);
      const expected = await direct(h.ledger, url);
      if (expected !== undefined) expect(body, url).toEqual(expected);
    }
    expect(h.counted).toEqual([]);
  });

  it("every route is in the OpenAPI document (/docs/json), tagged, with its parameters", async () => {
    const h = await harness();
    const doc = (await h.app.inject({ url: "/docs/json" })).json() as {
      openapi: string;
      paths: Record<string, Record<string, { tags?: string[]; parameters?: { name: string }[]; security?: unknown }>>;
      components: { schemas: Record<string, unknown>; securitySchemes: Record<string, unknown> };
    };
    expect(doc.openapi).toMatch(/^3\./);
    const visible = h.routes.filter((r) => !(r.schema as { hide?: boolean } | undefined)?.hide);
    expect(visible.length).toBeGreaterThan(20);
    const tags = new Set(["chain", "packages", "services", "devices", "ledger", "energy", "proofs", "events", "gateway"]);
    for (const route of visible) {
      const path = route.url.replace(/:([A-Za-z]+)/g, "{$1}");
      for (const method of [route.method].flat()) {
        const operation = doc.paths[path]?.[method.toLowerCase()];
        expect(operation, `${method} ${path} in /docs/json`).toBeDefined();
        expect(operation!.tags?.length, `${method} ${path} tagged`).toBeGreaterThan(0);
        for (const tag of operation!.tags!) expect(tags.has(tag), `${path} tag ${tag}`).toBe(true);
        for (const param of route.url.match(/:([A-Za-z]+)/g) ?? []) expect(operation!.parameters?.map((p) => p.name)).toContain(param.slice(1));
      }
    }
    expect(doc.paths["/v1/entries"]!.get!.parameters!.map((p) => p.name).sort()).toEqual([
      "account",
      "before",
      "device",
      "fromSlot",
      "interval",
      "limit",
      "router",
      "service",
      "since",
      "toSlot",
      "until",
    ]);
    expect(doc.paths["/v1/devices"]!.post!.security).toEqual([{ operatorToken: [] }]);
    expect(doc.components.securitySchemes.operatorToken).toMatchObject({ type: "http", scheme: "bearer" });
    for (const name of ["BlockView", "PackageView", "EntryView", "IntervalView", "BalanceView", "DeviceView", "Proof", "Error"])
      expect(doc.components.schemas[name], name).toBeDefined();
    // The UI is served, under its own CSP; the API's responses under a CSP that loads nothing.
    const ui = await h.app.inject({ url: "/docs" });
    expect(ui.statusCode).toBe(200);
    expect(ui.headers["content-security-policy"]).toContain("script-src 'self'");
    const api = await h.app.inject({ url: "/v1/services" });
    expect(api.headers["content-security-policy"]).toBe("default-src 'none'; frame-ancestors 'none'");
    expect(api.headers["x-content-type-options"]).toBe("nosniff");
  });

  it("bad queries and params on every list and detail route: 400 JG_ERR_HTTP_QUERY, counted, never 500", async () => {
    const h = await harness();
    const bad = [
      ...LIST_ROUTES.flatMap((route) => [
        `${route}?limit=0`,
        `${route}?limit=${LIST_LIMIT_MAX + 1}`,
        `${route}?limit=ten`,
        `${route}?limit=1.5`,
        `${route}?limit=1&limit=2`,
        `${route}?nosuch=1`,
        `${route}?limit=`,
      ]),
      "/v1/blocks?before=-1",
      "/v1/blocks?before=4294967296",
      "/v1/packages?status=lost",
      "/v1/packages?service=Not_A_Service",
      "/v1/packages?before=9007199254740992",
      "/v1/devices?kind=toaster",
      "/v1/devices?household=xyz",
      "/v1/devices?after=abcd",
      "/v1/entries?account=12",
      `/v1/entries?device=zz${"0".repeat(30)}`,
      "/v1/entries?interval=-3",
      "/v1/entries?fromSlot=9&toSlot=3",
      "/v1/entries?since=yesterday",
      "/v1/entries?since=2024-13-45T99:99:99Z",
      "/v1/entries?since=2024-06-02&until=2024-06-01",
      "/v1/entries?until=99999999999999999999",
      "/v1/energy/intervals?before=x",
      "/v1/balances?service=",
      "/v1/blocks/xyz",
      "/v1/blocks/4294967296",
      `/v1/blocks/${"0".repeat(63)}`,
      "/v1/packages/1234",
      "/v1/entries/-1",
      "/v1/entries/1e400",
      "/v1/energy/intervals/abc",
      `/v1/balances/Energy/${householdA}`,
      "/v1/balances/energy-trading/1234",
      "/v1/devices/1234",
      "/v1/proofs/entries/x",
      `/v1/proofs/devices/${meter}/seqs/-1`,
      "/v1/proofs/readings/abc/1",
      "/v1/events?after=x",
      "/v1/events?device=12",
    ];
    for (const url of bad) {
      const reply = await h.app.inject({ url });
      expect(reply.statusCode, `${url}: ${reply.body}`).toBe(400);
      expect(reply.json().error.code, url).toBe("JG_ERR_HTTP_QUERY");
      expect(typeof reply.json().error.message).toBe("string");
    }
    expect(h.counted).toEqual(bad.map(() => "JG_ERR_HTTP_QUERY"));
  });

  it("garbage query strings on the list routes are answered 200 or 400 JG_ERR_HTTP_QUERY, never 500 (fast-check)", async () => {
    const h = await harness();
    const names = fc.constantFrom(
      "limit",
      "before",
      "after",
      "service",
      "status",
      "kind",
      "account",
      "device",
      "household",
      "interval",
      "fromSlot",
      "toSlot",
      "since",
      "until",
      "__proto__",
      "constructor",
      "x",
    );
    const values = fc.oneof(
      fc.string(),
      fc.integer().map(String),
      fc.double().map(String),
      fc.constantFrom("", "-0", "0x10", "1e3", "%", "%zz", "null", "[]", "{}", "2024-01-01", "energy-trading", meter),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...LIST_ROUTES, "/v1/entries/1", "/v1/blocks/3"),
        fc.array(fc.tuple(names, values), { maxLength: 5 }),
        fc.string(),
        async (route, pairs, raw) => {
          const query = pairs.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join("&");
          for (const url of [`${route}?${query}`, `${route}?${raw.replace(/[#\s]/g, "")}`]) {
            const reply = await h.app.inject({ url });
            expect([200, 400], `${url}: ${reply.body}`).toContain(reply.statusCode);
            if (reply.statusCode === 400) expect(reply.json().error.code).toBe("JG_ERR_HTTP_QUERY");
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it("unknown ids and routes: 404 JG_ERR_NOT_FOUND, counted; an unknown device keeps its 403", async () => {
    const h = await harness(new FakeLedger());
    const missing = [
      "/v1/chain/head",
      "/v1/blocks/7",
      `/v1/blocks/${fakeHex("nothing")}`,
      `/v1/packages/${fakeHex("nothing")}`,
      "/v1/entries/5",
      "/v1/energy/intervals/3",
      `/v1/balances/energy-trading/${householdA}`,
      "/v1/proofs/entries/5",
      "/v1/nothing",
      "/v2/entries",
    ];
    for (const url of missing) {
      const reply = await h.app.inject({ url });
      expect(reply.statusCode, url).toBe(404);
      expect(reply.json().error.code, url).toBe("JG_ERR_NOT_FOUND");
    }
    const unavailable = await h.app.inject({ url: `/v1/proofs/devices/${meter}/seqs/5000` });
    expect(unavailable.statusCode).toBe(errorRegistry.JG_ERR_PROOF_UNAVAILABLE.httpStatus);
    expect(unavailable.json().error.code).toBe("JG_ERR_PROOF_UNAVAILABLE");
    const device = await h.app.inject({ url: `/v1/devices/${fakeHex("device nobody", 16)}` });
    expect(device.statusCode).toBe(403);
    expect(h.counted).toEqual([...missing.map(() => "JG_ERR_NOT_FOUND"), "JG_ERR_PROOF_UNAVAILABLE", "JG_ERR_DEVICE_UNREGISTERED"]);
  });

  it("GET /v1/devices/:id joins the registration's status and the index's device fields", async () => {
    const h = await harness();
    const both = (await h.app.inject({ url: `/v1/devices/${meter.toUpperCase()}` })).json();
    expect(both).toEqual({ ...(await h.ledger.device(meter)), deviceId: meter, status: "registered", packageHash: fakeHex("package 0") });
    // Known to the index only (e.g. registered before a restart): registered, with its fields.
    const indexed = (await h.app.inject({ url: `/v1/devices/${agent}` })).json();
    expect(indexed).toEqual({ ...(await h.ledger.device(agent)), deviceId: agent, status: "registered" });
    // Known to the registration only (pending): its status, no ledger fields.
    const pending = (await h.app.inject({ url: `/v1/devices/${fakeHex("device pending", 16)}` })).json();
    expect(pending).toEqual({ deviceId: fakeHex("device pending", 16), kind: "meter", service: "telemetry", status: "pending" });
  });

  it("POST /v1/devices answers its response schema (202) and refuses a missing token (401)", async () => {
    const h = await harness();
    const payload = { publicKey: "ab".repeat(32), kind: "meter" };
    const ok = await h.app.inject({ method: "POST", url: "/v1/devices", headers: { authorization: "Bearer T" }, payload });
    expect(ok.statusCode).toBe(202);
    expect(ok.json()).toEqual({
      deviceId: fakeHex("device new", 16),
      kind: "meter",
      service: "telemetry",
      status: "pending",
      packageHash: fakeHex("package 9"),
    });
    const denied = await h.app.inject({ method: "POST", url: "/v1/devices", payload });
    expect(denied.statusCode).toBe(401);
    const badBody = await h.app.inject({
      method: "POST",
      url: "/v1/devices",
      headers: { authorization: "Bearer T" },
      payload: { publicKey: "zz", kind: "meter" },
    });
    expect(badBody.json().error.code).toBe("JG_ERR_HTTP_BODY");
    expect(h.counted).toEqual(["JG_ERR_OPERATOR_TOKEN", "JG_ERR_HTTP_BODY"]);
  });

  it("entry filters reach the reader: service, account, device, interval, slot and time ranges (ISO-8601 or Unix ms)", async () => {
    const h = await harness();
    const ids = async (query: string) => ((await h.app.inject({ url: `/v1/entries?${query}` })).json() as { items: EntryView[] }).items.map((e) => e.id);
    const all = h.ledger.entryList;
    const expectIds = (pick: (e: EntryView) => boolean) =>
      all
        .filter(pick)
        .map((e) => e.id)
        .reverse();
    expect(await ids("service=energy-trading")).toEqual(expectIds((e) => e.service === "energy-trading"));
    expect(await ids(`account=${householdB.toUpperCase()}`)).toEqual(expectIds((e) => e.accounts.includes(householdB)));
    expect(await ids(`device=${meter}`)).toEqual(expectIds((e) => e.device === meter));
    expect(await ids("interval=7&limit=3")).toEqual(expectIds((e) => e.interval === 7).slice(0, 3));
    expect(await ids("fromSlot=15&toSlot=20")).toEqual(expectIds((e) => e.slot >= 15 && e.slot <= 20));
    const t = (slot: number) => 1_700_000_000_000 + slot * 6000;
    expect(await ids(`since=${t(30)}&until=${t(33)}`)).toEqual(expectIds((e) => e.slot >= 30 && e.slot <= 33));
    const iso = (ms: number) => new Date(ms).toISOString();
    expect(await ids(`since=${encodeURIComponent(iso(t(30)))}&until=${encodeURIComponent(iso(t(33)))}`)).toEqual(
      expectIds((e) => e.slot >= 30 && e.slot <= 33),
    );
    expect(parseTimeMs("2024-01-02T03:04:05+02:00", "since")).toBe(Date.UTC(2024, 0, 2, 1, 4, 5));
    expect(parseTimeMs("2024-01-02T03:04:05", "since")).toBe(Date.UTC(2024, 0, 2, 3, 4, 5));
    expect(parseTimeMs("2024-01-02", "since")).toBe(Date.UTC(2024, 0, 2));
    expect(parseTimeMs("1700000000000", "since")).toBe(1_700_000_000_000);
  });

  it("paging /v1/entries by cursor while entries are appended returns each entry once, in order, with no gap", async () => {
    const ledger = new FakeLedger();
    for (let id = 0; id < 700; id++) ledger.addEntry(envelopesEntry(id, id % 2 ? meter : agent));
    const h = await harness(ledger);
    let appended = ledger.entryList.length;
    const append = async () => {
      for (let i = 0; i < 3; i++) ledger.addEntry(envelopesEntry(appended++, appended % 2 ? meter : agent));
    };
    const walk = async (filter: string, limit: number) => {
      const seen: number[] = [];
      let before: number | null = null;
      let first = true;
      let newestAtStart = -1;
      for (let pages = 0; pages < 10_000; pages++) {
        const url: string = `/v1/entries?limit=${limit}${filter}${before === null ? "" : `&before=${before}`}`;
        const [reply] = await Promise.all([h.app.inject({ url }), append()]);
        const page = reply.json() as { items: EntryView[]; next: number | null };
        if (first) newestAtStart = page.items[0]?.id ?? -1;
        first = false;
        seen.push(...page.items.map((e) => e.id));
        if (page.next === null) break;
        before = page.next;
      }
      return { seen, newestAtStart };
    };
    const unfiltered = await walk("", 37);
    expect(unfiltered.seen).toEqual(Array.from({ length: unfiltered.newestAtStart + 1 }, (_, i) => unfiltered.newestAtStart - i));
    // With a filter and a scan bound smaller than the page: pages come short, `next` carries on.
    ledger.scanMax = 50;
    const filtered = await walk(`&device=${meter}`, 100);
    const expected = ledger.entryList
      .filter((e) => e.device === meter && e.id <= filtered.newestAtStart)
      .map((e) => e.id)
      .reverse();
    expect(filtered.seen).toEqual(expected);
    expect(new Set(filtered.seen).size).toBe(filtered.seen.length);
  });

  it("pages of blocks, packages, devices and intervals chain by `next` to the end", async () => {
    const h = await harness();
    const walk = async (route: string, cursor: "before" | "after") => {
      const items: unknown[] = [];
      let next: string | number | null = null;
      do {
        const reply = await h.app.inject({ url: `${route}?limit=2${next === null ? "" : `&${cursor}=${next}`}` });
        expect(reply.statusCode).toBe(200);
        const page = reply.json() as { items: unknown[]; next: string | number | null };
        items.push(...page.items);
        next = page.next;
      } while (next !== null);
      return items;
    };
    expect(((await walk("/v1/blocks", "before")) as { slot: number }[]).map((b) => b.slot)).toEqual([11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0]);
    expect(((await walk("/v1/packages", "before")) as { hash: string }[]).map((p) => p.hash)).toEqual(h.ledger.packageList.map((p) => p.view.hash).reverse());
    expect(((await walk("/v1/devices", "after")) as { id: string }[]).map((d) => d.id)).toEqual(h.ledger.deviceList.map((d) => d.id));
    expect(((await walk("/v1/energy/intervals", "before")) as { interval: number }[]).map((i) => i.interval)).toEqual([4, 3, 2, 1, 0]);
  });
});
