/**
 * `jamgate router …` and `jamgate wifi …` run in-process through commander: every bad flag is
 * refused before any request (JG_ERR_CLI_ARGUMENT, exit code 2, nothing written), and the commands
 * drive the gateway's real Wi-Fi routes (routes.ts) over an in-memory backend whose registrations
 * and actions stay pending for a few polls, as the ledger's do. A real `jamgate start` is driven
 * in cli.integration.test.ts.
 */
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Command, type CommanderError } from "commander";
import Fastify, { type FastifyInstance } from "fastify";
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { deviceIdOf, fromHex, toHex } from "../../devices/envelope.ts";
import { keyFromJson, parseMqttPassword } from "../../devices/keys.ts";
import { verifyEd25519 } from "../../node/crypto/ed25519.ts";
import { JamgateError } from "../../devices/protocol/errors.ts";
import type { RegistrationView } from "../registration.ts";
import type { ActionView, RouterRequest, WifiAccountView, WifiBackend, WifiRouterView, WifiStatsView } from "./backend.ts";
import { CAPACITY_BITS_PER_SECOND_MAX, PRICE_MICROS_PER_GB_MAX, registerWifiCommands, STAKE_MICROS_MAX, TOPUP_MICROS_MAX } from "./cli.ts";
import { wifiRoutes } from "./routes.ts";

const TOKEN = "operator-token-of-the-test";
/** Status reads a registration or action stays pending for, so the commands' waits are exercised. */
const PENDING_READS = 2;

interface Pending {
  reads: number;
  /** What it becomes when it settles: registered/applied, or failed/refused with a code. */
  readonly outcome: () => { ok: true } | { ok: false; code: string; detail: string };
}

/** The wifi-billing state behind the routes, in memory: a registration or action settles after PENDING_READS reads of its status. */
class MemoryBackend implements WifiBackend {
  readonly limits = {
    priceMicrosPerGbMax: PRICE_MICROS_PER_GB_MAX,
    topupMicrosMax: TOPUP_MICROS_MAX,
    stakeMicrosMax: STAKE_MICROS_MAX,
    capacityBitsPerSecondMax: CAPACITY_BITS_PER_SECOND_MAX,
    capacityBitsPerSecondDefault: 1_000_000_000n,
  };
  readonly accounts = new Map<string, { balance: bigint; locked: bigint; pending: Pending | null; failed: string | null }>();
  readonly routerViews = new Map<string, { view: WifiRouterView; pending: Pending | null; request: RouterRequest }>();
  readonly actions = new Map<string, { view: ActionView; pending: Pending; apply: () => void }>();
  readonly sharedSecrets = new Map<string, string>();
  /** Routers per page at most, whatever the request's limit: a server may answer fewer. */
  pageSize = 500;
  /** The next router registration fails with this code. */
  failNextRouter: string | null = null;
  /** Registrations and actions never settle. */
  stuck = false;

  private settle(pending: Pending | null): ReturnType<Pending["outcome"]> | null {
    if (pending === null) return { ok: true };
    if (this.stuck || pending.reads++ < PENDING_READS) return null;
    return pending.outcome();
  }

  registration(id: string): RegistrationView | null {
    const account = this.accounts.get(id);
    if (account !== undefined) {
      if (account.pending !== null) {
        const settled = this.settle(account.pending);
        if (settled === null) return { deviceId: id as never, kind: "client", service: "wifi-billing", status: "pending" };
        account.pending = null;
      }
      return { deviceId: id as never, kind: "client", service: "wifi-billing", status: "registered" };
    }
    const router = this.routerViews.get(id);
    if (router === undefined) return null;
    this.router(id);
    const status = router.view.status === "pending" || router.view.status === "failed" ? router.view.status : "registered";
    return {
      deviceId: id as never,
      kind: "router",
      service: "wifi-billing",
      status,
      ...(router.view.code === undefined ? {} : { code: router.view.code, detail: router.view.detail }),
    } as RegistrationView;
  }

  async registerAccount(publicKey: Uint8Array): Promise<RegistrationView> {
    const id = deviceIdOf(publicKey);
    if (!this.accounts.has(id)) this.accounts.set(id, { balance: 0n, locked: 0n, pending: { reads: 0, outcome: () => ({ ok: true }) }, failed: null });
    return { deviceId: id, kind: "client", service: "wifi-billing", status: "pending" };
  }

  async registerRouter(request: RouterRequest): Promise<{ view: RegistrationView; radius?: { sharedSecret: string } }> {
    const owner = this.accounts.get(request.owner);
    if (owner === undefined || owner.pending !== null) throw new JamgateError("JG_ERR_WIFI_ACCOUNT", `no account ${request.owner}`);
    const publicKey = request.publicKey ?? randomBytes(32);
    const id = deviceIdOf(publicKey);
    const failing = this.failNextRouter;
    this.failNextRouter = null;
    const view: WifiRouterView = {
      router: id,
      owner: request.owner,
      name: request.name,
      priceMicrosPerGb: request.priceMicrosPerGb.toString(),
      stakeMicros: request.stakeMicros.toString(),
      capacityBitsPerSecond: request.capacityBitsPerSecond.toString(),
      attested: request.attested,
      status: "pending",
      usage: { sessionsStarted: "0", openSessions: 0, billedOctets: "0", billedMicros: "0", earnedMicros: "0", disputedOctets: "0" },
    };
    const outcome = () => {
      if (failing !== null) return { ok: false as const, code: failing, detail: "refused by service wifi-billing" };
      if (owner.balance < request.stakeMicros) return { ok: false as const, code: "JG_ERR_WIFI_STAKE", detail: "the owner's balance is below the stake" };
      owner.balance -= request.stakeMicros;
      owner.locked += request.stakeMicros;
      return { ok: true as const };
    };
    this.routerViews.set(id, { view, pending: { reads: 0, outcome }, request });
    const sharedSecret = request.radius ? randomBytes(16).toString("hex") : undefined;
    if (sharedSecret !== undefined) this.sharedSecrets.set(id, sharedSecret);
    return {
      view: { deviceId: id, kind: "router", service: "wifi-billing", status: "pending" },
      ...(sharedSecret === undefined ? {} : { radius: { sharedSecret } }),
    };
  }

  async account(id: string): Promise<WifiAccountView | null> {
    const a = this.accounts.get(id);
    return a === undefined ? null : { account: id, balanceMicros: a.balance.toString(), lockedMicros: a.locked.toString(), registered: a.pending === null };
  }

  async router(id: string): Promise<WifiRouterView | null> {
    const r = this.routerViews.get(id);
    if (r === undefined) return null;
    if (r.pending !== null) {
      const settled = this.settle(r.pending);
      if (settled !== null) {
        r.pending = null;
        r.view = settled.ok ? { ...r.view, status: "active" } : { ...r.view, status: "failed", code: settled.code, detail: settled.detail };
      }
    }
    return r.view;
  }

  async routers(page: { after?: string; limit: number }): Promise<{ items: WifiRouterView[]; next: string | null }> {
    const ids = [...this.routerViews.keys()].sort().filter((id) => page.after === undefined || id > page.after);
    const taken = ids.slice(0, Math.min(page.limit, this.pageSize));
    return { items: taken.map((id) => this.routerViews.get(id)!.view), next: taken.length < ids.length ? taken.at(-1)! : null };
  }

  /** The service's counters: its routers' usage summed (no CLI command reads them yet). */
  async stats(): Promise<WifiStatsView> {
    const sum = (field: "sessionsStarted" | "billedOctets" | "billedMicros" | "disputedOctets") =>
      String([...this.routerViews.values()].reduce((n, r) => n + BigInt(r.view.usage[field]), 0n));
    return {
      slot: 7,
      sessionsStarted: sum("sessionsStarted"),
      sessionsStopped: "0",
      billedOctets: sum("billedOctets"),
      billedMicros: sum("billedMicros"),
      feesMicros: "0",
      disputedOctets: sum("disputedOctets"),
      exhaustedUpdates: "0",
      envelopesRejected: "0",
      refusedByCode: {},
    };
  }

  private newAction(kind: ActionView["kind"], apply: () => void): ActionView {
    const id = randomBytes(16).toString("hex");
    const view: ActionView = { action: id, kind, status: "pending" };
    this.actions.set(id, { view, pending: { reads: 0, outcome: () => ({ ok: true }) }, apply });
    return view;
  }

  private known(router: string): { view: WifiRouterView } {
    const r = this.routerViews.get(router);
    if (r === undefined || r.view.status !== "active") throw new JamgateError("JG_ERR_WIFI_ROUTER", `no router ${router} on wifi-billing`);
    return r;
  }

  async setPrice(router: string, priceMicrosPerGb: bigint): Promise<ActionView> {
    const r = this.known(router);
    return this.newAction("set-price", () => (r.view = { ...r.view, priceMicrosPerGb: priceMicrosPerGb.toString() }));
  }

  async deregister(router: string): Promise<ActionView> {
    const r = this.known(router);
    return this.newAction("deregister", () => (r.view = { ...r.view, status: "deregistered" }));
  }

  async topup(account: string, amountMicros: bigint): Promise<ActionView> {
    const a = this.accounts.get(account);
    if (a === undefined || a.pending !== null) throw new JamgateError("JG_ERR_WIFI_ACCOUNT", `no account ${account} on wifi-billing`);
    return this.newAction("topup", () => (a.balance += amountMicros));
  }

  /** An action's view; the read that settles it applies it. */
  action(id: string): ActionView | null {
    const a = this.actions.get(id);
    if (a === undefined) return null;
    if (a.view.status === "pending" && this.settle(a.pending) !== null) {
      a.apply();
      a.view = { ...a.view, status: "applied", slot: 7 };
    }
    return a.view;
  }
}

/** The routes over the backend, plus `GET /v1/devices/:id` (gateway/http.ts: the registration view the commands poll). */
async function startGateway(backend: MemoryBackend): Promise<{ app: FastifyInstance; url: string; requests: string[] }> {
  const requests: string[] = [];
  const app = Fastify();
  app.addHook("onRequest", async (request) => void requests.push(`${request.method} ${request.url}`));
  await app.register(wifiRoutes, { backend, operatorToken: TOKEN, count: () => {} });
  app.get<{ Params: { id: string } }>("/v1/devices/:id", async (request, reply) => {
    const view = backend.registration(request.params.id);
    return view === null ? reply.code(403).send({ error: { code: "JG_ERR_DEVICE_UNREGISTERED", message: "unknown" } }) : view;
  });
  await app.listen({ host: "127.0.0.1", port: 0 });
  return { app, url: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`, requests };
}

let backend: MemoryBackend;
let gateway: { app: FastifyInstance; url: string; requests: string[] };
let stdout: string[];
let stderr: string[];

beforeAll(async () => {
  backend = new MemoryBackend();
  gateway = await startGateway(backend);
});
afterAll(async () => {
  await gateway?.app.close();
});
beforeEach(() => {
  stdout = [];
  stderr = [];
  vi.restoreAllMocks();
  vi.spyOn(console, "log").mockImplementation((line: string) => void stdout.push(line));
  vi.spyOn(process.stderr, "write").mockImplementation((chunk: string | Uint8Array) => {
    stderr.push(String(chunk));
    return true;
  });
});

const tempDir = () => mkdtempSync(join(tmpdir(), "jg-wifi-cli-"));

/** Runs `jamgate …` in-process; resolves, or rejects with the CommanderError that would set the exit code. */
async function jamgate(...args: string[]): Promise<void> {
  const program = new Command("jamgate").exitOverride();
  registerWifiCommands(program);
  await program.parseAsync(args, { from: "user" });
}

/** The exit code and error code of a command that fails. */
async function failure(...args: string[]): Promise<{ exitCode: number; code: string; message: string }> {
  try {
    await jamgate(...args);
  } catch (e) {
    const error = e as CommanderError;
    return { exitCode: error.exitCode, code: error.code, message: `${error.message}\n${stderr.join("")}` };
  }
  throw new Error(`jamgate ${args.join(" ")} succeeded`);
}

const at = () => ["--gateway", gateway.url, "--token", TOKEN, "--poll-ms", "10"];
const json = () => {
  expect(stdout, "exactly one line on stdout").toHaveLength(1);
  return JSON.parse(stdout[0]!) as Record<string, unknown>;
};

/** A registered account with `balance` micro-units, made through the commands. */
async function fundedAccount(dir: string, balance: bigint): Promise<string> {
  await jamgate("wifi", "account", "new", "--key-out", join(dir, `account-${randomBytes(4).toString("hex")}.json`), "--json", ...at());
  const account = String(json().account);
  stdout.length = 0;
  if (balance > 0n) {
    await jamgate("wifi", "topup", "--account", account, "--amount-micros", balance.toString(), "--json", ...at());
    stdout.length = 0;
  }
  return account;
}

describe("bad flags: JG_ERR_CLI_ARGUMENT, exit code 2, before any request and any file", () => {
  const id = "ab".repeat(16);
  /** Key files in a fresh directory: a flag let through by mistake writes there, not in the working directory. */
  const dir = tempDir();
  const keys = () => ["--key-out", join(dir, "router.json")];
  const onboard = (...flags: string[]) => [
    "router",
    "onboard",
    "--name",
    "cafe",
    "--price-micros-per-gb",
    "250000",
    "--stake",
    "5000000",
    ...(flags.includes("--radius") || flags.includes("--owner") ? [] : keys()),
    ...flags,
  ];
  const cases: [string, string[]][] = [
    ["zero price", onboard("--price-micros-per-gb", "0")],
    ["negative price", onboard("--price-micros-per-gb", "-1")],
    ["negative price as --flag=value", onboard("--price-micros-per-gb=-250000")],
    ["fractional price", onboard("--price-micros-per-gb", "1.5")],
    ["price in exponent form", onboard("--price-micros-per-gb", "1e6")],
    ["price past the service's maximum", onboard("--price-micros-per-gb", (PRICE_MICROS_PER_GB_MAX + 1n).toString())],
    ["price not a number", onboard("--price-micros-per-gb", "cheap")],
    ["zero stake", onboard("--stake", "0")],
    ["negative stake", onboard("--stake", "-5")],
    ["stake past the service's maximum", onboard("--stake", (STAKE_MICROS_MAX + 1n).toString())],
    ["zero capacity", onboard("--capacity-mbps", "0")],
    ["capacity past the service's maximum", onboard("--capacity-mbps", String(Number(CAPACITY_BITS_PER_SECOND_MAX / 1_000_000n) + 1))],
    ["owner not hex", onboard("--owner", "z".repeat(32))],
    ["owner too short", onboard("--owner", "ab".repeat(15))],
    ["latitude past 90", onboard("--location", "90.5,13.4")],
    ["longitude past 180", onboard("--location", "52.5,-180.1")],
    ["location without longitude", onboard("--location", "52.5")],
    ["location not numbers", onboard("--location", "berlin")],
    ["location with three parts", onboard("--location", "52.5,13.4,7")],
    ["empty name", ["router", "onboard", "--name", "", "--price-micros-per-gb", "1", "--stake", "1", ...keys()]],
    ["name past 32 bytes of UTF-8", ["router", "onboard", "--name", "é".repeat(17), "--price-micros-per-gb", "1", "--stake", "1", ...keys()]],
    ["missing --stake", ["router", "onboard", "--name", "cafe", "--price-micros-per-gb", "1", ...keys()]],
    ["--key-out with --radius", onboard("--radius", "--key-out", "r.json")],
    ["--radius-server without --radius", onboard("--radius-server", "10.0.0.1")],
    ["--owner-key-out with --owner", onboard("--owner", id, "--owner-key-out", "o.json")],
    ["an unknown flag", onboard("--price", "5")],
    ["zero top-up", ["wifi", "topup", "--account", id, "--amount-micros", "0"]],
    ["negative top-up", ["wifi", "topup", "--account", id, "--amount-micros", "-100"]],
    ["top-up past the service's maximum", ["wifi", "topup", "--account", id, "--amount-micros", (TOPUP_MICROS_MAX + 1n).toString()]],
    ["top-up of a bad account id", ["wifi", "topup", "--account", "nope", "--amount-micros", "100"]],
    ["top-up without --account", ["wifi", "topup", "--amount-micros", "100"]],
    ["balance of a bad account id", ["wifi", "balance", "--account", `${id}00`]],
    ["show of a bad router id", ["router", "show", "xyz"]],
    ["set-price of a bad router id", ["router", "set-price", "xyz", "--price-micros-per-gb", "5"]],
    ["set-price to zero", ["router", "set-price", id, "--price-micros-per-gb", "0"]],
    ["set-price negative", ["router", "set-price", id, "--price-micros-per-gb", "-5"]],
    ["deregister of a bad router id", ["router", "deregister", "12345"]],
    ["deregister without an id", ["router", "deregister"]],
  ];
  it.each(cases)("%s", async (_name, args) => {
    const before = gateway.requests.length;
    const refused = await failure(...args, "--gateway", gateway.url, "--token", TOKEN);
    expect(refused.exitCode).toBe(2);
    expect(refused.message).toMatch(/JG_ERR_CLI_ARGUMENT|error: (required option|unknown option|missing required argument)/);
    expect(gateway.requests.length, "no request for a bad flag").toBe(before);
    expect(stdout).toEqual([]);
    expect(readdirSync(dir)).toEqual([]);
  });

  it("an existing key file without --force", async () => {
    const dir = tempDir();
    writeFileSync(join(dir, "router.json"), "keep me");
    const before = gateway.requests.length;
    const refused = await failure(...onboard("--key-out", join(dir, "router.json")), ...at());
    expect(refused).toMatchObject({ exitCode: 2, code: "JG_ERR_CLI_ARGUMENT" });
    expect(refused.message).toContain("--force overwrites it");
    expect(readFileSync(join(dir, "router.json"), "utf8")).toBe("keep me");
    writeFileSync(join(dir, "owner.json"), "keep me too");
    expect(await failure(...onboard("--key-out", join(dir, "r2.json"), "--owner-key-out", join(dir, "owner.json")), ...at())).toMatchObject({ exitCode: 2 });
    expect(existsSync(join(dir, "r2.json"))).toBe(false);
    expect(await failure("wifi", "account", "new", "--key-out", join(dir, "owner.json"), ...at())).toMatchObject({ exitCode: 2 });
    expect(gateway.requests.length).toBe(before);
  });
});

describe("ids the gateway does not know: its 404 code, exit code 1", () => {
  const unknown = "cd".repeat(16);
  it.each([
    ["router show", ["router", "show", unknown], "JG_ERR_WIFI_ROUTER"],
    ["router set-price", ["router", "set-price", unknown, "--price-micros-per-gb", "5"], "JG_ERR_WIFI_ROUTER"],
    ["router deregister", ["router", "deregister", unknown], "JG_ERR_WIFI_ROUTER"],
    ["wifi topup", ["wifi", "topup", "--account", unknown, "--amount-micros", "5"], "JG_ERR_WIFI_ACCOUNT"],
    ["wifi balance", ["wifi", "balance", "--account", unknown], "JG_ERR_WIFI_ACCOUNT"],
  ])("%s", async (_name, args, code) => {
    const refused = await failure(...args, ...at());
    expect(refused).toMatchObject({ exitCode: 1, code });
    expect(refused.message).toContain("answered 404");
    expect(stdout).toEqual([]);
  });

  it("router onboard --owner of an unknown account writes no key", async () => {
    const dir = tempDir();
    const refused = await failure(
      "router",
      "onboard",
      "--name",
      "cafe",
      "--price-micros-per-gb",
      "1",
      "--stake",
      "1",
      "--owner",
      unknown,
      "--key-out",
      join(dir, "router.json"),
      ...at(),
    );
    expect(refused).toMatchObject({ exitCode: 1, code: "JG_ERR_WIFI_ACCOUNT" });
    expect(existsSync(join(dir, "router.json"))).toBe(false);
  });
});

describe("router onboard", () => {
  it("without --owner: makes and funds the owner with exactly the stake, registers the router, waits for the ledger, prints its MQTT lines as one JSON object", async () => {
    const dir = tempDir();
    const keyFile = join(dir, "cafe.json");
    const from = gateway.requests.length;
    await jamgate(
      "router",
      "onboard",
      "--name",
      "café-1",
      "--price-micros-per-gb",
      "250000",
      "--stake",
      "5000000",
      "--location",
      "52.52,-13.405",
      "--key-out",
      keyFile,
      "--mqtt",
      "mqtts://gw.example:8883",
      "--json",
      ...at(),
    );
    const out = json();
    const key = keyFromJson(JSON.parse(readFileSync(keyFile, "utf8")));
    const ownerFile = join(dir, "cafe.owner.json");
    const ownerKey = keyFromJson(JSON.parse(readFileSync(ownerFile, "utf8")));
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    expect(statSync(ownerFile).mode & 0o777).toBe(0o600);
    expect(out).toMatchObject({
      router: key.deviceId,
      name: "café-1",
      status: "active",
      owner: ownerKey.deviceId,
      ownerCreated: true,
      ownerKeyFile: ownerFile,
      priceMicrosPerGb: "250000",
      stakeMicros: "5000000",
      capacityBitsPerSecond: "1000000000",
      attested: false,
      location: { lat: 52.52, lon: -13.405 },
      keyFile,
      radius: null,
    });
    const mqtt = out.mqtt as { url: string; username: string; password: string; passwordExpiresAtMs: number; topics: Record<string, string> };
    expect(mqtt).toMatchObject({ url: "mqtts://gw.example:8883", username: key.deviceId });
    expect(mqtt.topics).toEqual({
      usage: `devices/${key.deviceId}/up/router.usage`,
      down: `devices/${key.deviceId}/down/#`,
      control: `devices/${key.deviceId}/down/control`,
    });
    // The password is the router key's token for its id (devices/keys.ts), 23 hours long.
    const token = parseMqttPassword(key.deviceId, mqtt.password)!;
    expect(token.expiresAtMs).toBe(mqtt.passwordExpiresAtMs);
    expect(verifyEd25519(key.publicKey, token.message, token.signature)).toBe(true);
    expect(mqtt.passwordExpiresAtMs - Date.now()).toBeGreaterThan(22 * 3_600_000);
    expect(mqtt.passwordExpiresAtMs - Date.now()).toBeLessThanOrEqual(23 * 3_600_000);
    // The owner holds the stake, locked; its balance is what is left of the top-up: nothing.
    expect(await backend.account(ownerKey.deviceId)).toMatchObject({ balanceMicros: "0", lockedMicros: "5000000", registered: true });
    // In order: the owner registered and waited for, funded and waited for, then the router.
    const requests = gateway.requests.slice(from).map((r) => r.replace(/[0-9a-f]{32}/g, "ID"));
    expect(requests.filter((r, i) => r !== requests[i - 1])).toEqual([
      "POST /v1/wifi/accounts",
      "GET /v1/devices/ID",
      "POST /v1/wifi/topups",
      "GET /v1/wifi/actions/ID",
      "POST /v1/wifi/routers",
      "GET /v1/wifi/routers/ID",
    ]);
    expect(requests.filter((r) => r === "GET /v1/devices/ID").length).toBe(PENDING_READS + 1);
    const sent = backend.routerViews.get(key.deviceId)!.request;
    expect(sent).toMatchObject({
      owner: ownerKey.deviceId,
      name: "café-1",
      priceMicrosPerGb: 250_000n,
      stakeMicros: 5_000_000n,
      capacityBitsPerSecond: 1_000_000_000n,
      attested: false,
      radius: false,
    });
    expect(toHex(sent.publicKey!)).toBe(toHex(key.publicKey));
    // Progress went to stderr.
    expect(stderr.join("")).toContain(`router ${key.deviceId}: pending`);
    expect(stderr.join("")).toContain(`router ${key.deviceId}: done`);
  });

  it("with --owner, --radius and --router-attested: no router key here; prints the RADIUS server, port, shared secret and NAS-Identifier as hostapd and CoovaChilli lines", async () => {
    const dir = tempDir();
    const owner = await fundedAccount(dir, 9_000_000n);
    await jamgate(
      "router",
      "onboard",
      "--name",
      "lobby",
      "--price-micros-per-gb",
      "100",
      "--stake",
      "9000000",
      "--owner",
      owner.toUpperCase(),
      "--radius",
      "--router-attested",
      "--capacity-mbps",
      "300",
      ...at(),
    );
    const text = stdout.join("\n");
    const id = /^router ([0-9a-f]{32}) "lobby" is registered on wifi-billing \(active\)$/m.exec(text)?.[1];
    expect(id, text).toBeDefined();
    const secret = backend.sharedSecrets.get(id!)!;
    expect(backend.routerViews.get(id!)!.request).toMatchObject({
      publicKey: null,
      owner,
      attested: true,
      radius: true,
      capacityBitsPerSecond: 300_000_000n,
      stakeMicros: 9_000_000n,
    });
    for (const line of [
      "acct_server_addr=127.0.0.1",
      "acct_server_port=1813",
      `acct_server_shared_secret=${secret}`,
      `nas_identifier=${id}`,
      "HS_RADIUS=127.0.0.1",
      "HS_RADACCT=1813",
      `HS_RADSECRET=${secret}`,
      `HS_NASID=${id}`,
    ]) {
      expect(text.split("\n"), line).toContain(line);
    }
    expect(text).not.toContain("mqtt_password=");
    expect(text).toContain("router-attested billing accepted");
    expect(existsSync("router.json"), "no router key file in the working directory").toBe(false);
    expect(await backend.account(owner)).toMatchObject({ balanceMicros: "0", lockedMicros: "9000000" });
  });

  it("--radius --json: the RADIUS block in the one object, --radius-server as given", async () => {
    const dir = tempDir();
    const owner = await fundedAccount(dir, 10n);
    await jamgate(
      "router",
      "onboard",
      "--name",
      "r",
      "--price-micros-per-gb",
      "1",
      "--stake",
      "10",
      "--owner",
      owner,
      "--radius",
      "--radius-server",
      "radius.example:11812",
      "--json",
      ...at(),
    );
    const out = json();
    expect(out.mqtt).toBeNull();
    expect(out.radius).toEqual({
      server: "radius.example",
      port: 11812,
      sharedSecret: backend.sharedSecrets.get(String(out.router)),
      nasIdentifier: out.router,
    });
    expect(out).not.toHaveProperty("keyFile");
    expect(out).not.toHaveProperty("ownerKeyFile");
  });

  it("with an --owner whose balance is below the stake: JG_ERR_WIFI_STAKE naming the top-up it needs, before registering anything", async () => {
    const dir = tempDir();
    const owner = await fundedAccount(dir, 400n);
    const before = backend.routerViews.size;
    const refused = await failure(
      "router",
      "onboard",
      "--name",
      "x",
      "--price-micros-per-gb",
      "1",
      "--stake",
      "1000",
      "--owner",
      owner,
      "--key-out",
      join(dir, "r.json"),
      ...at(),
    );
    expect(refused).toMatchObject({ exitCode: 1, code: "JG_ERR_WIFI_STAKE" });
    expect(refused.message).toContain(`jamgate wifi topup --account ${owner} --amount-micros 600`);
    expect(backend.routerViews.size).toBe(before);
    expect(existsSync(join(dir, "r.json"))).toBe(false);
  });

  it("a registration the service refuses: its code, exit code 1", async () => {
    const dir = tempDir();
    const owner = await fundedAccount(dir, 10n);
    backend.failNextRouter = "JG_ERR_WIFI_BODY";
    const refused = await failure(
      "router",
      "onboard",
      "--name",
      "x",
      "--price-micros-per-gb",
      "1",
      "--stake",
      "10",
      "--owner",
      owner,
      "--key-out",
      join(dir, "r.json"),
      ...at(),
    );
    expect(refused).toMatchObject({ exitCode: 1, code: "JG_ERR_WIFI_BODY" });
    expect(refused.message).toContain("the registration failed: refused by service wifi-billing");
    // A new owner funded for it keeps its balance: the command says how to use it again.
    backend.failNextRouter = "JG_ERR_WIFI_BODY";
    const again = await failure("router", "onboard", "--name", "x", "--price-micros-per-gb", "1", "--stake", "10", "--key-out", join(dir, "r2.json"), ...at());
    expect(again).toMatchObject({ exitCode: 1, code: "JG_ERR_WIFI_BODY" });
    const newOwner = keyFromJson(JSON.parse(readFileSync(join(dir, "r2.owner.json"), "utf8"))).deviceId;
    expect(again.message).toContain(`the new owner account ${newOwner} keeps the 10 µ it was funded with: onboard again with --owner ${newOwner}`);
    expect(await backend.account(newOwner)).toMatchObject({ balanceMicros: "10", lockedMicros: "0" });
  });

  it("a registration still pending at --timeout-ms: JG_ERR_RPC_TIMEOUT with the status last seen", async () => {
    const dir = tempDir();
    const owner = await fundedAccount(dir, 10n);
    backend.stuck = true;
    try {
      const refused = await failure(
        "router",
        "onboard",
        "--name",
        "x",
        "--price-micros-per-gb",
        "1",
        "--stake",
        "10",
        "--owner",
        owner,
        "--key-out",
        join(dir, "r.json"),
        ...at(),
        "--timeout-ms",
        "30",
      );
      expect(refused).toMatchObject({ exitCode: 1, code: "JG_ERR_RPC_TIMEOUT" });
      expect(refused.message).toMatch(/still pending after 30 ms/);
    } finally {
      backend.stuck = false;
    }
  });

  it("finds the gateway, its broker and its operator token through --data-dir's endpoints.json", async () => {
    const dir = tempDir();
    const dataDir = join(dir, "gw");
    mkdirSync(dataDir);
    writeFileSync(
      join(dataDir, "endpoints.json"),
      JSON.stringify({ mqtt: "mqtt://127.0.0.1:18830", mqtts: null, ws: null, http: gateway.url, rpc: null, pid: process.pid }),
    );
    writeFileSync(join(dataDir, "operator-token"), `${TOKEN}\n`);
    await jamgate(
      "router",
      "onboard",
      "--name",
      "x",
      "--price-micros-per-gb",
      "1",
      "--stake",
      "10",
      "--key-out",
      join(dir, "r.json"),
      "--data-dir",
      dataDir,
      "--poll-ms",
      "10",
      "--json",
    );
    expect(json()).toMatchObject({ status: "active", mqtt: { url: "mqtt://127.0.0.1:18830" } });
    expect(stderr.join("")).toContain("mqtt://127.0.0.1:18830 is this machine's loopback");
    stdout.length = 0;
    // The RADIUS listener endpoints.json names, when it names one.
    writeFileSync(
      join(dataDir, "endpoints.json"),
      JSON.stringify({
        mqtt: "mqtt://127.0.0.1:18830",
        mqtts: null,
        ws: null,
        http: gateway.url,
        rpc: null,
        radius: "udp://127.0.0.1:18130",
        pid: process.pid,
      }),
    );
    const owner = await fundedAccount(dir, 10n);
    await jamgate(
      "router",
      "onboard",
      "--name",
      "y",
      "--price-micros-per-gb",
      "1",
      "--stake",
      "10",
      "--owner",
      owner,
      "--radius",
      "--data-dir",
      dataDir,
      "--poll-ms",
      "10",
      "--json",
    );
    expect(json()).toMatchObject({ mqtt: null, radius: { server: "127.0.0.1", port: 18130 } });
    stdout.length = 0;
    // Without a running gateway there: JG_ERR_NO_GATEWAY; without a token: JG_ERR_OPERATOR_TOKEN.
    expect(await failure("wifi", "balance", "--account", "ab".repeat(16), "--data-dir", dir)).toMatchObject({ exitCode: 1, code: "JG_ERR_NO_GATEWAY" });
    expect(await failure("wifi", "topup", "--account", "ab".repeat(16), "--amount-micros", "1", "--gateway", gateway.url, "--data-dir", dir)).toMatchObject({
      exitCode: 1,
      code: "JG_ERR_OPERATOR_TOKEN",
    });
    // A wrong token: the gateway's 401.
    expect(await failure("wifi", "topup", "--account", "ab".repeat(16), "--amount-micros", "1", "--gateway", gateway.url, "--token", "wrong")).toMatchObject({
      exitCode: 1,
      code: "JG_ERR_OPERATOR_TOKEN",
    });
  });
});

describe("router list, show, set-price, deregister; wifi account new, topup, balance", () => {
  it("account new writes a 0600 key and waits until registered; topup waits until applied and prints the balance; balance reads it", async () => {
    const dir = tempDir();
    await jamgate("wifi", "account", "new", "--key-out", join(dir, "me.json"), "--json", ...at());
    const made = json();
    const key = keyFromJson(JSON.parse(readFileSync(join(dir, "me.json"), "utf8")));
    expect(statSync(join(dir, "me.json")).mode & 0o777).toBe(0o600);
    expect(made).toEqual({ account: key.deviceId, publicKey: toHex(key.publicKey), keyFile: join(dir, "me.json"), status: "registered" });
    stdout.length = 0;
    await jamgate("wifi", "topup", "--account", key.deviceId, "--amount-micros", "1000000000000", "--json", ...at());
    expect(json()).toMatchObject({
      status: "applied",
      account: key.deviceId,
      amountMicros: "1000000000000",
      balanceMicros: "1000000000000",
      lockedMicros: "0",
    });
    expect(String(JSON.parse(stdout[0]!).action)).toMatch(/^[0-9a-f]{32}$/);
    stdout.length = 0;
    await jamgate("wifi", "topup", "--account", key.deviceId, "--amount-micros", "5", ...at());
    expect(stdout).toEqual([
      expect.stringMatching(new RegExp(`^topped up ${key.deviceId} with 5 µ \\(action [0-9a-f]{32}\\): balance 1000000000005 µ, locked 0 µ$`)),
    ]);
    stdout.length = 0;
    await jamgate("wifi", "balance", "--account", key.deviceId, "--json", "--gateway", gateway.url);
    expect(json()).toMatchObject({ account: key.deviceId, balanceMicros: "1000000000005", lockedMicros: "0", registered: true });
  });

  it("list pages through every router; show prints one; set-price and deregister wait until applied", async () => {
    const dir = tempDir();
    const owner = await fundedAccount(dir, 100n);
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      await jamgate(
        "router",
        "onboard",
        "--name",
        `r${i}`,
        "--price-micros-per-gb",
        "7",
        "--stake",
        "10",
        "--owner",
        owner,
        "--key-out",
        join(dir, `r${i}.json`),
        "--json",
        ...at(),
      );
      ids.push(String(json().router));
      stdout.length = 0;
    }
    backend.pageSize = 2;
    try {
      await jamgate("router", "list", "--json", "--gateway", gateway.url);
    } finally {
      backend.pageSize = 500;
    }
    const list = json() as { routers: WifiRouterView[]; count: number };
    expect(list.count).toBe(backend.routerViews.size);
    expect(list.routers.map((r) => r.router)).toEqual([...backend.routerViews.keys()].sort());
    expect(
      list.routers
        .filter((r) => ids.includes(r.router))
        .map((r) => r.name)
        .sort(),
    ).toEqual(["r0", "r1", "r2"]);
    stdout.length = 0;
    await jamgate("router", "list", "--gateway", gateway.url);
    expect(stdout[0]).toMatch(/^ROUTER\s+NAME\s+OWNER\s+PRICE\s+STAKE\s+ATTESTED\s+STATUS$/);
    expect(stdout.find((l) => l.startsWith(ids[0]!))).toMatch(new RegExp(`^${ids[0]}\\s+r0\\s+${owner}\\s+7 µ/GB\\s+10 µ\\s+no\\s+active$`));

    stdout.length = 0;
    await jamgate("router", "set-price", ids[0]!, "--price-micros-per-gb", "9", "--json", ...at());
    expect(json()).toMatchObject({ status: "applied", router: ids[0], priceMicrosPerGb: "9" });
    stdout.length = 0;
    await jamgate("router", "show", ids[0]!.toUpperCase(), "--json", "--gateway", gateway.url);
    expect(json()).toMatchObject({ router: ids[0], owner, name: "r0", priceMicrosPerGb: "9", stakeMicros: "10", status: "active" });
    stdout.length = 0;
    await jamgate("router", "deregister", ids[1]!, "--json", ...at());
    expect(json()).toMatchObject({ status: "applied", router: ids[1], stakeReturnedAfterSlots: 600 });
    stdout.length = 0;
    await jamgate("router", "show", ids[1]!, "--gateway", gateway.url);
    expect(stdout).toContain(`${"status".padEnd(24)} deregistered`);
    expect(stdout).toContain(`${"priceMicrosPerGb".padEnd(24)} 7 µ`);
    expect(stdout).toContain(`${"usage.billedMicros".padEnd(24)} 0 µ`);
    expect(stdout).toContain(`${"usage.openSessions".padEnd(24)} 0`);
    // A deregistered router takes no more changes: the gateway's 404.
    expect(await failure("router", "set-price", ids[1]!, "--price-micros-per-gb", "9", ...at())).toMatchObject({ exitCode: 1, code: "JG_ERR_WIFI_ROUTER" });
  });

  it("an action the service refuses: its code, exit code 1", async () => {
    const dir = tempDir();
    const account = await fundedAccount(dir, 0n);
    const original = backend.topup.bind(backend);
    vi.spyOn(backend, "topup").mockImplementationOnce(async (a, amount) => {
      const view = await original(a, amount);
      const entry = backend.actions.get(view.action)!;
      backend.actions.set(view.action, { ...entry, apply: () => {}, pending: { reads: 0, outcome: () => ({ ok: true }) } });
      const settle = backend.action.bind(backend);
      vi.spyOn(backend, "action").mockImplementation((id) => {
        const seen = settle(id);
        return id === view.action && seen?.status === "applied" ? { ...seen, status: "refused", code: "JG_ERR_WIFI_REPLAY", detail: "already applied" } : seen;
      });
      return view;
    });
    const refused = await failure("wifi", "topup", "--account", account, "--amount-micros", "3", ...at());
    expect(refused).toMatchObject({ exitCode: 1, code: "JG_ERR_WIFI_REPLAY" });
    expect(refused.message).toContain("refused by the service: already applied");
    expect(fromHex(account).length).toBe(16);
  });
});

describe("key files without --key-out", () => {
  it("router onboard and wifi account new write theirs in $XDG_CONFIG_HOME/jamgate/keys (0700, files 0600), not the working directory", async () => {
    const configHome = tempDir();
    const keys = join(configHome, "jamgate", "keys");
    vi.stubEnv("XDG_CONFIG_HOME", configHome);
    try {
      const names = ["router.json", "router.owner.json", "account.json"];
      const before = names.filter((name) => existsSync(name));
      await jamgate("router", "onboard", "--name", "home", "--price-micros-per-gb", "1", "--stake", "10", "--json", ...at());
      const out = json();
      expect(out).toMatchObject({ keyFile: join(keys, "router.json"), ownerKeyFile: join(keys, "router.owner.json") });
      expect(keyFromJson(JSON.parse(readFileSync(join(keys, "router.json"), "utf8"))).deviceId).toBe(out.router);
      expect(keyFromJson(JSON.parse(readFileSync(join(keys, "router.owner.json"), "utf8"))).deviceId).toBe(out.owner);
      stdout.length = 0;
      await jamgate("wifi", "account", "new", "--json", ...at());
      expect(json()).toMatchObject({ keyFile: join(keys, "account.json") });
      expect(readdirSync(keys).sort()).toEqual(["account.json", "router.json", "router.owner.json"]);
      for (const name of readdirSync(keys)) expect(statSync(join(keys, name)).mode & 0o777).toBe(0o600);
      expect(statSync(keys).mode & 0o777).toBe(0o700);
      expect(names.filter((name) => existsSync(name))).toEqual(before);
    } finally {
      vi.unstubAllEnvs();
    }
  });
});
