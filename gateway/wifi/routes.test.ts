import type { FastifyInstance, InjectOptions } from "fastify";
import { afterEach, describe, expect, it } from "vitest";
import { type ErrorCode, errorRegistry, JamgateError } from "../../devices/protocol/errors.ts";
import { buildHttp } from "../http.ts";
import type { Registrations, RegistrationView } from "../registration.ts";
import { fakeHex } from "../testing/fake-ledger.ts";
import type { ActionView, RouterRequest, WifiAccountView, WifiBackend, WifiLimits, WifiRouterView, WifiStatsView } from "./backend.ts";

const known = fakeHex("account known", 16);
const router = fakeHex("router known", 16);
const unknown = fakeHex("nobody", 16);
const key = fakeHex("a public key");
const TOKEN = "operator-secret";
const auth = { authorization: `Bearer ${TOKEN}` };

const limits: WifiLimits = {
  priceMicrosPerGbMax: 1_000_000_000n,
  topupMicrosMax: 10n ** 15n,
  stakeMicrosMax: 10n ** 15n,
  capacityBitsPerSecondMax: 10n ** 12n,
  capacityBitsPerSecondDefault: 1_000_000_000n,
};

const accountView: WifiAccountView = { account: known, balanceMicros: "18446744073709551615", lockedMicros: "5", registered: true, slot: 7 };
const routerView: WifiRouterView = {
  router,
  owner: known,
  name: "café ☕",
  priceMicrosPerGb: "500000",
  stakeMicros: "1000000",
  capacityBitsPerSecond: "1000000000",
  attested: false,
  status: "active",
  registeredSlot: 3,
  deregisteredSlot: null,
  stakeReturnSlot: null,
  usage: { sessionsStarted: "3", openSessions: 1, billedOctets: "123456789012345678", billedMicros: "77", earnedMicros: "74", disputedOctets: "0" },
  slot: 7,
};

/** Counters past 2^53 where a float would round them, and refusals under two codes. */
const statsView: WifiStatsView = {
  slot: 12,
  sessionsStarted: "9",
  sessionsStopped: "7",
  billedOctets: "18446744073709551615",
  billedMicros: "9007199254740993",
  feesMicros: "450359962737049",
  disputedOctets: "1000000000",
  exhaustedUpdates: "2",
  envelopesRejected: "4",
  refusedByCode: { JG_ERR_WIFI_VOUCHER_SIGNATURE: "3", JG_ERR_WIFI_SESSION: "1" },
};

/** A backend that records what the routes asked of it and knows one account and one router. */
class RecordingBackend implements WifiBackend {
  readonly limits = limits;
  readonly calls: [string, ...unknown[]][] = [];
  private readonly actions = new Map<string, ActionView>();
  private n = 0;

  private act(kind: ActionView["kind"]): ActionView {
    const view: ActionView = { action: fakeHex(`action ${this.n++}`, 16), kind, status: "pending", packageHash: fakeHex("package") };
    this.actions.set(view.action, view);
    return view;
  }
  async registerAccount(publicKey: Uint8Array): Promise<RegistrationView> {
    this.calls.push(["registerAccount", Buffer.from(publicKey).toString("hex")]);
    return { deviceId: known, kind: "client", service: "wifi-billing", status: "pending", packageHash: fakeHex("package") };
  }
  async registerRouter(request: RouterRequest) {
    this.calls.push(["registerRouter", request]);
    if (request.owner !== known) throw new JamgateError("JG_ERR_WIFI_ACCOUNT", `owner ${request.owner} is not on wifi-billing`);
    return {
      view: { deviceId: router, kind: "router" as const, service: "wifi-billing", status: "pending" as const },
      ...(request.radius ? { radius: { sharedSecret: "s3cret" } } : {}),
    };
  }
  async account(id: string) {
    this.calls.push(["account", id]);
    return id === known ? accountView : null;
  }
  async router(id: string) {
    this.calls.push(["router", id]);
    return id === router ? routerView : null;
  }
  async routers(page: { after?: string; limit: number }) {
    this.calls.push(["routers", page]);
    return { items: [routerView], next: null };
  }
  async stats() {
    this.calls.push(["stats"]);
    return statsView;
  }
  async setPrice(id: string, price: bigint) {
    this.calls.push(["setPrice", id, price]);
    if (id !== router) throw new JamgateError("JG_ERR_WIFI_ROUTER", `no router ${id}`);
    return this.act("set-price");
  }
  async deregister(id: string) {
    this.calls.push(["deregister", id]);
    if (id !== router) throw new JamgateError("JG_ERR_WIFI_ROUTER", `no router ${id}`);
    return this.act("deregister");
  }
  async topup(account: string, amount: bigint) {
    this.calls.push(["topup", account, amount]);
    if (account !== known) throw new JamgateError("JG_ERR_WIFI_ACCOUNT", `no account ${account}`);
    return this.act("topup");
  }
  action(id: string) {
    return this.actions.get(id) ?? null;
  }
}

const open: FastifyInstance[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((app) => app.close()));
});

async function harness() {
  const backend = new RecordingBackend();
  const counted: ErrorCode[] = [];
  const app = buildHttp({ operatorToken: TOKEN, registrations: {} as Registrations, metrics: {} as never, count: (code) => counted.push(code), wifi: backend });
  open.push(app);
  await app.ready();
  return { app, backend, counted };
}

/** Asserts a coded refusal: the status (the registry's unless given), `{error: {code, message}}`, counted once. */
async function refused(h: Awaited<ReturnType<typeof harness>>, request: InjectOptions, code: ErrorCode, status = errorRegistry[code].httpStatus) {
  const before = h.counted.length;
  const res = await h.app.inject(request);
  expect(res.statusCode, res.body).toBe(status);
  expect(res.json().error.code).toBe(code);
  expect(h.counted.slice(before)).toEqual([code]);
}

describe("/v1/wifi routes", () => {
  it("take the operator token for every write, before looking at the body", async () => {
    const h = await harness();
    const writes = [
      { method: "POST", url: "/v1/wifi/accounts", payload: { publicKey: key } },
      { method: "POST", url: "/v1/wifi/routers", payload: { garbage: true } },
      { method: "POST", url: "/v1/wifi/topups", payload: { account: known, amountMicros: "5" } },
      { method: "POST", url: `/v1/wifi/routers/${router}/price`, payload: { priceMicrosPerGb: "5" } },
      { method: "DELETE", url: `/v1/wifi/routers/${router}` },
    ] as const satisfies readonly InjectOptions[];
    for (const w of writes) {
      await refused(h, w, "JG_ERR_OPERATOR_TOKEN");
      await refused(h, { ...w, headers: { authorization: "Bearer wrong" } }, "JG_ERR_OPERATOR_TOKEN");
    }
    expect(h.backend.calls).toEqual([]);
  });

  it("top-ups: an amount of zero, below zero or past the maximum is JG_ERR_WIFI_AMOUNT; a wrong shape JG_ERR_HTTP_BODY; an unknown account 404 JG_ERR_WIFI_ACCOUNT", async () => {
    const h = await harness();
    const topup = (body: object): InjectOptions => ({ method: "POST", url: "/v1/wifi/topups", headers: auth, payload: body });
    for (const amount of ["0", "-1", "-0", 0, -5, String(limits.topupMicrosMax + 1n), "99999999999999999999999999"])
      await refused(h, topup({ account: known, amountMicros: amount }), "JG_ERR_WIFI_AMOUNT");
    for (const body of [
      { account: known },
      { account: known, amountMicros: "1.5" },
      { account: known, amountMicros: 1.5 },
      { account: known, amountMicros: "12a" },
      { account: "xyz", amountMicros: "1" },
      { account: known, amountMicros: "1", extra: 1 },
      { account: known, amountMicros: 2 ** 60 },
    ]) {
      await refused(h, topup(body), "JG_ERR_HTTP_BODY");
    }
    expect(h.backend.calls).toEqual([]);
    await refused(h, topup({ account: unknown, amountMicros: "1" }), "JG_ERR_WIFI_ACCOUNT", 404);

    const ok = await h.app.inject(topup({ account: known.toUpperCase(), amountMicros: String(limits.topupMicrosMax) }));
    expect(ok.statusCode).toBe(202);
    expect(ok.json()).toMatchObject({ kind: "topup", status: "pending" });
    const asInteger = await h.app.inject(topup({ account: known, amountMicros: 25 }));
    expect(asInteger.statusCode).toBe(202);
    expect(h.backend.calls.filter(([c]) => c === "topup").slice(1)).toEqual([
      ["topup", known, limits.topupMicrosMax],
      ["topup", known, 25n],
    ]);
    // The action reads back by its id.
    const read = await h.app.inject({ method: "GET", url: `/v1/wifi/actions/${ok.json().action}` });
    expect(read.json()).toEqual(ok.json());
    await refused(h, { method: "GET", url: `/v1/wifi/actions/${unknown}` }, "JG_ERR_NOT_FOUND");
    await refused(h, { method: "GET", url: "/v1/wifi/actions/123" }, "JG_ERR_HTTP_QUERY");
  });

  it("routers: checked terms reach the backend as bigints, with the capacity's default; bad names, amounts and key choices are refused", async () => {
    const h = await harness();
    const onboard = (body: object): InjectOptions => ({ method: "POST", url: "/v1/wifi/routers", headers: auth, payload: body });
    const good = { publicKey: key, owner: known, name: "café ☕", priceMicrosPerGb: "500000", stakeMicros: 1_000_000 };
    const res = await h.app.inject(onboard(good));
    expect(res.statusCode, res.body).toBe(202);
    expect(res.json()).toEqual({ router, status: "pending" });
    const asked = h.backend.calls[0]![1] as RouterRequest;
    expect({ ...asked, publicKey: Buffer.from(asked.publicKey!).toString("hex") }).toEqual({
      publicKey: key,
      owner: known,
      name: "café ☕",
      priceMicrosPerGb: 500_000n,
      stakeMicros: 1_000_000n,
      capacityBitsPerSecond: limits.capacityBitsPerSecondDefault,
      attested: false,
      radius: false,
    });
    const radius = await h.app.inject(
      onboard({ owner: known, name: "hotspot", priceMicrosPerGb: "1", stakeMicros: "1", radius: true, attested: true, capacityBitsPerSecond: "54000000" }),
    );
    expect(radius.json()).toEqual({ router, status: "pending", radius: { sharedSecret: "s3cret" } });
    expect(h.backend.calls[1]![1]).toMatchObject({ publicKey: null, radius: true, attested: true, capacityBitsPerSecond: 54_000_000n });

    const calls = h.backend.calls.length;
    for (const [field, value] of [
      ["priceMicrosPerGb", "0"],
      ["priceMicrosPerGb", String(limits.priceMicrosPerGbMax + 1n)],
      ["stakeMicros", "-3"],
      ["capacityBitsPerSecond", 0],
    ] as const) {
      await refused(h, onboard({ ...good, [field]: value }), "JG_ERR_WIFI_AMOUNT");
    }
    // 11 characters, 33 bytes of UTF-8: the service stores at most 32 bytes.
    await refused(h, onboard({ ...good, name: "€".repeat(11) }), "JG_ERR_HTTP_BODY");
    await refused(h, onboard({ ...good, name: "" }), "JG_ERR_HTTP_BODY");
    await refused(h, onboard({ ...good, radius: true }), "JG_ERR_HTTP_BODY");
    const { publicKey: _, ...keyless } = good;
    await refused(h, onboard(keyless), "JG_ERR_HTTP_BODY");
    await refused(h, onboard({ ...good, owner: "00" }), "JG_ERR_HTTP_BODY");
    await refused(h, onboard({ ...good, attested: "yes" }), "JG_ERR_HTTP_BODY");
    expect(h.backend.calls.length).toBe(calls);
    await refused(h, onboard({ ...good, owner: unknown }), "JG_ERR_WIFI_ACCOUNT", 404);
  });

  it("price changes and deregistrations: 404 JG_ERR_WIFI_ROUTER for an unknown router, JG_ERR_WIFI_AMOUNT for a bad price", async () => {
    const h = await harness();
    for (const price of ["0", "-7", String(limits.priceMicrosPerGbMax + 1n)])
      await refused(h, { method: "POST", url: `/v1/wifi/routers/${router}/price`, headers: auth, payload: { priceMicrosPerGb: price } }, "JG_ERR_WIFI_AMOUNT");
    await refused(h, { method: "POST", url: `/v1/wifi/routers/${router}/price`, headers: auth, payload: {} }, "JG_ERR_HTTP_BODY");
    expect(h.backend.calls).toEqual([]);
    await refused(
      h,
      { method: "POST", url: `/v1/wifi/routers/${unknown}/price`, headers: auth, payload: { priceMicrosPerGb: "5" } },
      "JG_ERR_WIFI_ROUTER",
      404,
    );
    await refused(h, { method: "DELETE", url: `/v1/wifi/routers/${unknown}`, headers: auth }, "JG_ERR_WIFI_ROUTER", 404);
    const priced = await h.app.inject({ method: "POST", url: `/v1/wifi/routers/${router}/price`, headers: auth, payload: { priceMicrosPerGb: "750000" } });
    expect(priced.statusCode).toBe(202);
    expect(priced.json()).toMatchObject({ kind: "set-price", status: "pending" });
    const gone = await h.app.inject({ method: "DELETE", url: `/v1/wifi/routers/${router}`, headers: auth });
    expect(gone.json()).toMatchObject({ kind: "deregister", status: "pending" });
    expect(h.backend.calls.slice(-2)).toEqual([
      ["setPrice", router, 750_000n],
      ["deregister", router],
    ]);
  });

  it("reads: accounts and routers by id (any case), 404 with the Wi-Fi codes for unknown ones; the router list pages", async () => {
    const h = await harness();
    const account = await h.app.inject({ method: "GET", url: `/v1/wifi/accounts/${known.toUpperCase()}` });
    expect(account.json()).toEqual(accountView);
    await refused(h, { method: "GET", url: `/v1/wifi/accounts/${unknown}` }, "JG_ERR_WIFI_ACCOUNT", 404);
    await refused(h, { method: "GET", url: "/v1/wifi/accounts/zz" }, "JG_ERR_HTTP_QUERY");
    expect((await h.app.inject({ method: "GET", url: `/v1/wifi/routers/${router}` })).json()).toEqual(routerView);
    await refused(h, { method: "GET", url: `/v1/wifi/routers/${unknown}` }, "JG_ERR_WIFI_ROUTER", 404);
    const list = await h.app.inject({ method: "GET", url: `/v1/wifi/routers?after=${unknown}&limit=2` });
    expect(list.json()).toEqual({ items: [routerView], next: null });
    expect(h.backend.calls.at(-1)).toEqual(["routers", { after: unknown, limit: 2 }]);
    await h.app.inject({ method: "GET", url: "/v1/wifi/routers" });
    expect(h.backend.calls.at(-1)).toEqual(["routers", { limit: 50 }]);
    await refused(h, { method: "GET", url: "/v1/wifi/routers?limit=501" }, "JG_ERR_HTTP_QUERY");
    await refused(h, { method: "GET", url: "/v1/wifi/routers?owner=x" }, "JG_ERR_HTTP_QUERY");
  });

  it("stats: the service's counters as the backend read them, decimal strings exact past 2^53, refusals by code", async () => {
    const h = await harness();
    const res = await h.app.inject({ method: "GET", url: "/v1/wifi/stats" });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toEqual(statsView);
    expect(h.backend.calls).toEqual([["stats"]]);
  });

  it("are in the OpenAPI document with their views as components", async () => {
    const h = await harness();
    const doc = (await h.app.inject({ method: "GET", url: "/docs/json" })).json() as {
      paths: Record<string, Record<string, { security?: unknown; tags?: string[] }>>;
      components: { schemas: Record<string, unknown> };
    };
    for (const [path, method] of [
      ["/v1/wifi/accounts", "post"],
      ["/v1/wifi/accounts/{id}", "get"],
      ["/v1/wifi/routers", "post"],
      ["/v1/wifi/routers", "get"],
      ["/v1/wifi/routers/{id}", "get"],
      ["/v1/wifi/routers/{id}", "delete"],
      ["/v1/wifi/routers/{id}/price", "post"],
      ["/v1/wifi/topups", "post"],
      ["/v1/wifi/actions/{id}", "get"],
      ["/v1/wifi/stats", "get"],
    ] as const) {
      expect(doc.paths[path]?.[method]?.tags, `${method} ${path}`).toEqual(["wifi"]);
      if (method !== "get") expect(doc.paths[path]![method]!.security).toEqual([{ operatorToken: [] }]);
    }
    expect(Object.keys(doc.components.schemas)).toEqual(expect.arrayContaining(["WifiAccountView", "WifiRouterView", "WifiActionView", "WifiStatsView"]));
    const stats = doc.components.schemas.WifiStatsView as { required: string[]; properties: Record<string, unknown> };
    expect(stats.required).toEqual(Object.keys(statsView));
    expect(Object.keys(stats.properties)).toEqual(Object.keys(statsView));
  });
});
