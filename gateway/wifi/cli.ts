/**
 * `jamgate router …` and `jamgate wifi …`: onboarding Wi-Fi routers and their owners' accounts onto
 * the wifi-billing service through a running gateway's HTTP API (`/v1/wifi/*`, operator token),
 * and reading them back (docs/wifi.md).
 *
 * `router onboard` makes the router's Ed25519 key (a file of mode 0600), registers the router with
 * its owner account, price and stake, waits until the registration is accumulated (on the ledger),
 * and prints what a router is configured with: MQTT URL, username, password, topics, and with
 * `--radius` the RADIUS accounting server, port, shared secret and NAS-Identifier, as lines to
 * paste into hostapd or CoovaChilli. Without `--owner` it makes the owner's account too and tops it
 * up with exactly the stake.
 *
 * Every flag is checked before any request: a bad one is JG_ERR_CLI_ARGUMENT with exit code 2
 * (commander's own usage errors too); an error the gateway answers is its registry code with exit
 * code 1. Money is micro-units: bigint here, decimal strings on the wire, never a float. As the
 * other client commands, without `--gateway` the gateway is found through `<data-dir>/endpoints.json`
 * (gateway/endpoints.ts) and the operator token read from `<data-dir>/operator-token`.
 * `--json` prints exactly one JSON object on stdout; progress goes to stderr.
 */
import { existsSync, rmSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { type Command, CommanderError, InvalidArgumentError, Option } from "commander";
// Device keys (../../devices/keys.ts), the endpoints file (../endpoints.ts) and the operator token
// (../secrets.ts) are imported where they are used, not here: every `jamgate` command loads this
// module for its flags, and `jamgate --help` loads no package but commander (scripts/cli-startup.test.ts).
import { toHex } from "../../devices/protocol/hex.ts";
import { defaultKeyFile, writeKeyFile } from "../../devices/key-files.ts";
import type { DeviceKey } from "../../devices/keys.ts";
import { TOKEN_LIFETIME_MAX_MS } from "../../devices/protocol/mqtt-token.ts";
import { integerIn } from "../../devices/protocol/cli-args.ts";
import { EXIT_BAD_COMMAND_LINE, isBadCommandLine, readFlagFile } from "../../node/cli.ts";
import { JamgateError } from "../../devices/protocol/errors.ts";
import { DEFAULT_PORTS } from "../cli.ts";
import { errorCodeOf, type GatewayTarget, openRequest, readBody } from "../client-http.ts";
import { formatMicros } from "../ledger/cli.ts";
import {
  CAPACITY_BITS_PER_SECOND_DEFAULT,
  CAPACITY_BITS_PER_SECOND_MAX,
  PRICE_MICROS_PER_GB_MAX,
  ROUTER_NAME_BYTES_MAX,
  ROUTER_USAGE_KIND,
  STAKE_COOLDOWN_SLOTS,
  STAKE_MICROS_MAX,
  TOPUP_MICROS_MAX,
} from "../../services/wifi-billing/types.ts";

/** The service's limits the flags are checked against (services/wifi-billing/types.ts), for the tests and docs. */
export { CAPACITY_BITS_PER_SECOND_MAX, PRICE_MICROS_PER_GB_MAX, ROUTER_NAME_BYTES_MAX, STAKE_COOLDOWN_SLOTS, STAKE_MICROS_MAX, TOPUP_MICROS_MAX };

// ---- limits

/** Largest `--capacity-mbps`: the service's largest capacity (CAPACITY_BITS_PER_SECOND_MAX) in Mbit/s. */
export const CAPACITY_MBPS_MAX = Number(CAPACITY_BITS_PER_SECOND_MAX / 1_000_000n);
/** The capacity a router states unless told: the service's default (CAPACITY_BITS_PER_SECOND_DEFAULT, 1 Gbit/s) in Mbit/s. */
export const DEFAULT_CAPACITY_MBPS = Number(CAPACITY_BITS_PER_SECOND_DEFAULT / 1_000_000n);
/**
 * How long the printed MQTT password is valid unless told: 23 hours. The gateway refuses a token
 * valid for more than a day from its own clock (TOKEN_LIFETIME_MAX_MS), so an hour is left for
 * the clocks of this machine and the gateway to differ.
 */
export const DEFAULT_MQTT_TOKEN_TTL_MS = TOKEN_LIFETIME_MAX_MS - 3_600_000;
/** RADIUS accounting's port (RFC 2866 §1 as assigned by IANA), the gateway's `--radius-port` default. */
export const DEFAULT_RADIUS_PORT = 1813;

/** Largest HTTP answer read: a router or account view is under 1 KB; a list page of routers under a few hundred KB. */
const ANSWER_BYTES_MAX = 4 * 1024 * 1024;
/** One HTTP request; the gateway answers writes at once (202) and the waiting is by polling. */
const REQUEST_TIMEOUT_MS = 30_000;
/** Routers asked for per page (the API's largest, ledger/types.ts LIST_LIMIT_MAX). */
const ROUTER_PAGE_LIMIT = 500;
/** Pages `router list` reads at most (half a million routers); past them it says the list is incomplete. */
export const ROUTER_LIST_PAGES_MAX = 1_000;
/** How long a wait for the ledger polls unless told: registrations take a few blocks, 2 minutes leaves room for a busy node. */
const DEFAULT_WAIT_MS = 120_000;

export const DEFAULT_GATEWAY_DATA_DIR = ".jamgate";
/** The router key file `onboard` writes unless told: in the user's config dir (devices/key-files.ts), not the working directory. */
export const defaultRouterKeyFile = (): string => defaultKeyFile("router.json");
/** The account key file `wifi account new` writes unless told, beside the router keys. */
export const defaultAccountKeyFile = (): string => defaultKeyFile("account.json");

/** The topics a router publishes usage on and listens on (devices/messages.ts: `devices/{id}/up/{kind}`, `devices/{id}/down/…`). */
export function routerTopics(router: string): { readonly usage: string; readonly down: string; readonly control: string } {
  return { usage: `devices/${router}/up/${ROUTER_USAGE_KIND}`, down: `devices/${router}/down/#`, control: `devices/${router}/down/control` };
}

// ---- errors and flag parsing

/** Reports a coded error on stderr and ends the command: exit code 2 for a bad flag, 1 otherwise (scripts/cli.ts `main` exits with it). */
function fail(code: string, detail: string): never {
  process.stderr.write(`jamgate: ${code}: ${detail}\n`);
  throw new CommanderError(code === "JG_ERR_CLI_ARGUMENT" ? EXIT_BAD_COMMAND_LINE : 1, code, `${code}: ${detail}`);
}

const badFlag = (detail: string): never => fail("JG_ERR_CLI_ARGUMENT", detail);

function invalid(detail: string): InvalidArgumentError {
  return new InvalidArgumentError(`JG_ERR_CLI_ARGUMENT: ${detail}`);
}

/** commander parser for an amount of micro-units in [1, max]: decimal digits only, so "-5", "0", "1.5" and "1e6" are refused. */
export function positiveMicros(max: bigint): (value: string) => bigint {
  return (value) => {
    const v = value.trim();
    if (!/^\d{1,20}$/.test(v)) throw invalid(`expected a whole number of micro-units from 1 to ${max}, got "${value}"`);
    const n = BigInt(v);
    if (n < 1n) throw invalid(`expected a whole number of micro-units from 1 to ${max}, got "${value}" (zero moves nothing)`);
    if (n > max) throw invalid(`expected a whole number of micro-units from 1 to ${max}, got "${value}" (past the service's maximum)`);
    return n;
  };
}

/** commander parser for an account or router id: 32 hex digits (the device id of its key), lowercased. */
export function hexId(what: string): (value: string) => string {
  return (value) => {
    const v = value.trim();
    if (!/^[0-9a-fA-F]{32}$/.test(v)) throw invalid(`${what} is an id of 32 hex digits, got "${value}"`);
    return v.toLowerCase();
  };
}

/** A router's location: WGS 84 degrees, latitude in [-90, 90], longitude in [-180, 180]. */
export interface Location {
  readonly lat: number;
  readonly lon: number;
}

/** commander parser for `--location LAT,LON` (decimal degrees, at most 7 decimals: about a centimetre). */
export function parseLocation(value: string): Location {
  const m = /^\s*(-?\d{1,3}(?:\.\d{1,7})?)\s*,\s*(-?\d{1,3}(?:\.\d{1,7})?)\s*$/.exec(value);
  if (m === null) throw invalid(`--location takes LAT,LON in decimal degrees (e.g. 52.52,13.405), got "${value}"`);
  const [lat, lon] = [Number(m[1]), Number(m[2])];
  if (lat < -90 || lat > 90) throw invalid(`--location: latitude ${m[1]} is outside -90 to 90`);
  if (lon < -180 || lon > 180) throw invalid(`--location: longitude ${m[2]} is outside -180 to 180`);
  return { lat, lon };
}

/** commander parser for a router's name: 1 to ROUTER_NAME_BYTES_MAX bytes of UTF-8, no control characters. */
export function routerName(value: string): string {
  const bytes = Buffer.byteLength(value, "utf8");
  // biome-ignore lint/suspicious/noControlCharactersInRegex: a name with control characters is refused.
  if (bytes === 0 || bytes > ROUTER_NAME_BYTES_MAX || /[\u0000-\u001f\u007f]/.test(value)) {
    throw invalid(`--name takes 1 to ${ROUTER_NAME_BYTES_MAX} bytes of UTF-8 without control characters, got ${bytes} bytes: "${value}"`);
  }
  return value;
}

/** The usage errors of `group` and its subcommands leave with EXIT_BAD_COMMAND_LINE already when the commands run in-process (tests); help and everything else as commander gives them. */
function usageExitsWith2(group: Command): Command {
  return group.exitOverride((e) => {
    throw isBadCommandLine(e) ? new CommanderError(EXIT_BAD_COMMAND_LINE, e.code, e.message) : e;
  });
}

// ---- the gateway

/** Flags every command shares: where the gateway is and how to authenticate. */
interface GatewayOptions {
  gateway?: string;
  ca?: string;
  dataDir: string;
  token?: string;
  json?: boolean;
  timeoutMs: number;
  pollMs: number;
}

/** A gateway's HTTP API: its base URL, the headers to send, the CA to trust, and its MQTT URL where known. */
interface Target extends GatewayTarget {
  /** The broker's URL: endpoints.json's, else mqtt://<gateway host>:1883. */
  readonly mqtt: string;
  /** The host the gateway's HTTP API is on, where its RADIUS listener is too. */
  readonly host: string;
  /** The RADIUS listener endpoints.json names (`radius: "udp://host:port"`), when it names one. */
  readonly radius: { readonly host: string; readonly port: number } | null;
}

function withConnectionOptions(command: Command, json = true): Command {
  command
    .option("--gateway <url>", "the gateway's HTTP address, https:// when it serves TLS (default: the one running on --data-dir)")
    .option("--ca <file>", "PEM CA certificate to trust for an https:// gateway (default: the system's)")
    .option("--data-dir <dir>", "the gateway's data directory: its operator-token, and its endpoints.json without --gateway", DEFAULT_GATEWAY_DATA_DIR)
    .option("--token <token>", "the operator token (instead of reading --data-dir)")
    .option("--timeout-ms <ms>", "how long to wait for the ledger", integerIn(1, 24 * 3_600_000), DEFAULT_WAIT_MS)
    .addOption(new Option("--poll-ms <ms>", "poll period while waiting").argParser(integerIn(10, 60_000)).default(500).hideHelp());
  if (json) command.option("--json", "print one JSON object");
  return command;
}

/**
 * The gateway the flags name. `needToken`: writes send the operator token (from --token, else
 * <data-dir>/operator-token); reads send it when it is at hand. Reads files only: no request.
 */
async function targetOf(options: GatewayOptions, needToken: boolean): Promise<Target> {
  const ca = options.ca === undefined ? undefined : readCa(options.ca);
  let base: string;
  let mqtt: string | null = null;
  let radius: Target["radius"] = null;
  if (options.gateway !== undefined) base = options.gateway.replace(/\/+$/, "");
  else {
    const { readEndpoints } = await import("../endpoints.ts");
    try {
      const endpoints = readEndpoints(options.dataDir, "--gateway");
      base = endpoints.http.replace(/\/+$/, "");
      mqtt = endpoints.mqtt;
      radius = radiusOf(endpoints.radius ?? null);
    } catch (e) {
      if (e instanceof JamgateError) fail(e.code, e.detail);
      throw e;
    }
  }
  let url: URL;
  try {
    url = new URL(base);
  } catch {
    return badFlag(`--gateway must be http(s)://host:port, got ${base}`);
  }
  if (!/^https?:\/\/[^/\s]+$/.test(base)) badFlag(`--gateway must be http(s)://host:port, got ${base}`);
  const token = options.token ?? (await operatorTokenIn(options.dataDir, needToken));
  return {
    base,
    ca,
    headers: token === null ? {} : { authorization: `Bearer ${token}` },
    mqtt: mqtt ?? `mqtt://${url.host.replace(/:\d+$/, "")}:${DEFAULT_PORTS.mqtt}`,
    host: url.hostname,
    radius,
  };
}

/** The RADIUS listener a running `jamgate start` names in its endpoints.json (`udp://host:port`), or null. */
function radiusOf(url: string | null): Target["radius"] {
  const m = url === null ? null : /^udp:\/\/(\[[0-9a-fA-F:.]+\]|[^\s:/[\]]+):(\d{1,5})$/.exec(url);
  return m === null ? null : { host: m[1]!, port: Number(m[2]) };
}

/** Whether a host is this machine's loopback: a URL naming it works for a client here, not for a router elsewhere. */
export function isLoopback(host: string): boolean {
  return host === "localhost" || /^127\./.test(host) || host === "[::1]" || host === "::1";
}

function readCa(path: string): Buffer {
  try {
    return readFlagFile("--ca", path);
  } catch (e) {
    if (e instanceof JamgateError) return fail(e.code, e.detail);
    throw e;
  }
}

/** The data dir's operator token; when `needed`, its absence is JG_ERR_OPERATOR_TOKEN, else null. */
async function operatorTokenIn(dataDir: string, needed: boolean): Promise<string | null> {
  const { readOperatorToken } = await import("../secrets.ts");
  const read = readOperatorToken(dataDir);
  if ("token" in read) return read.token;
  return needed ? fail("JG_ERR_OPERATOR_TOKEN", `cannot read ${read.path} (${read.why}); give --data-dir of the gateway or --token`) : null;
}

/**
 * One request to the gateway: its JSON object back on 2xx; otherwise fails with the code the
 * gateway gave (`{error: {code}}`, the registry's) or JG_ERR_RPC_REMOTE, and JG_ERR_RPC_CLOSED
 * when it cannot be reached (gateway/client-http.ts, as `jamgate ledger`).
 */
async function call(target: Target, method: "GET" | "POST" | "DELETE", path: string, body?: unknown): Promise<Record<string, unknown>> {
  const url = `${target.base}${path}`;
  let status: number;
  let text: string;
  try {
    const response = await openRequest(target, path, { method, body, timeoutMs: REQUEST_TIMEOUT_MS });
    status = response.statusCode ?? 0;
    text = await readBody(response, ANSWER_BYTES_MAX);
  } catch (e) {
    return fail("JG_ERR_RPC_CLOSED", (e as Error).message);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  const isObject = typeof json === "object" && json !== null && !Array.isArray(json);
  if (status < 200 || status >= 300) {
    const error = isObject ? (json as { error?: { message?: unknown } }).error : undefined;
    const message = typeof error?.message === "string" ? error.message : text.slice(0, 300);
    return fail(errorCodeOf(text), `${method} ${url} answered ${status}: ${message}`);
  }
  if (!isObject) return fail("JG_ERR_RPC_REMOTE", `${method} ${url} answered ${status} with no JSON object: ${text.slice(0, 200)}`);
  return json as Record<string, unknown>;
}

/** What one poll saw: done, still going (with a status to show), or failed with a code. */
type Polled = { readonly done: true } | { readonly done: false; readonly status: string } | { readonly failed: string; readonly detail: string };

/**
 * Polls until done, printing each new status on stderr; failed is its code (exit 1), and the
 * deadline JG_ERR_RPC_TIMEOUT naming the status last seen.
 */
async function waitUntil(what: string, options: GatewayOptions, poll: () => Promise<Polled>): Promise<void> {
  const deadline = Date.now() + options.timeoutMs;
  let last = "";
  for (;;) {
    const seen = await poll();
    if ("failed" in seen) fail(seen.failed, `${what}: ${seen.detail}`);
    if (seen.done) {
      process.stderr.write(`${what}: done\n`);
      return;
    }
    if (seen.status !== last) process.stderr.write(`${what}: ${seen.status}\n`);
    last = seen.status;
    if (Date.now() >= deadline) fail("JG_ERR_RPC_TIMEOUT", `${what}: still ${last} after ${options.timeoutMs} ms (--timeout-ms)`);
    await sleep(Math.min(options.pollMs, Math.max(1, deadline - Date.now())));
  }
}

/** Waits until the device's registration is accumulated: `GET /v1/devices/{id}` (the gateway's registration view) says registered. */
function registered(target: Target, id: string, what: string, options: GatewayOptions): Promise<void> {
  return waitUntil(what, options, async () => {
    const view = await call(target, "GET", `/v1/devices/${id}`);
    if (view.status === "registered") return { done: true };
    if (view.status === "failed") {
      const code = typeof view.code === "string" && /^JG_ERR_[A-Z0-9_]+$/.test(view.code) ? view.code : "JG_ERR_DEVICE_UNREGISTERED";
      return { failed: code, detail: `the registration failed${typeof view.detail === "string" ? `: ${view.detail}` : ""}` };
    }
    return { done: false, status: String(view.status) };
  });
}

/**
 * Waits until the router's registration is accumulated: `GET /v1/wifi/routers/{id}` (the
 * service's state, or the pending registration) leaves pending. Active is done; failed is its
 * code. The view last read is returned.
 */
async function routerRegistered(target: Target, id: string, options: GatewayOptions): Promise<Record<string, unknown>> {
  let view: Record<string, unknown> = {};
  await waitUntil(`router ${id}`, options, async () => {
    view = await call(target, "GET", `/v1/wifi/routers/${id}`);
    if (view.status === "pending") return { done: false, status: "pending" };
    if (view.status === "active") return { done: true };
    const code = typeof view.code === "string" && /^JG_ERR_[A-Z0-9_]+$/.test(view.code) ? view.code : "JG_ERR_WIFI_ROUTER";
    return {
      failed: code,
      detail: `the registration ${view.status === "failed" ? "failed" : `ended ${str(view.status)}`}${typeof view.detail === "string" ? `: ${view.detail}` : ""}`,
    };
  });
  return view;
}

/** Waits until an operator action is applied: `GET /v1/wifi/actions/{id}`; refused is its code. */
function applied(target: Target, action: string, what: string, options: GatewayOptions): Promise<void> {
  return waitUntil(what, options, async () => {
    const view = await call(target, "GET", `/v1/wifi/actions/${action}`);
    if (view.status === "applied") return { done: true };
    if (view.status === "refused") {
      const code = typeof view.code === "string" && /^JG_ERR_[A-Z0-9_]+$/.test(view.code) ? view.code : "JG_ERR_RPC_REMOTE";
      return { failed: code, detail: `action ${action} refused by the service${typeof view.detail === "string" ? `: ${view.detail}` : ""}` };
    }
    return { done: false, status: String(view.status) };
  });
}

/** The action id a 202 answer names. */
function actionOf(answer: Record<string, unknown>, what: string): string {
  if (typeof answer.action !== "string" || !/^[0-9a-f]+$/.test(answer.action))
    fail("JG_ERR_RPC_REMOTE", `${what}: the gateway answered no action id: ${JSON.stringify(answer).slice(0, 200)}`);
  return answer.action as string;
}

// ---- key files

/** Fails unless `path` can be written: it does not exist, or --force. Checked before any request. */
function checkWritable(path: string, force: boolean | undefined, flag: string): void {
  if (!force && existsSync(path)) badFlag(`${flag} ${path} exists; --force overwrites it`);
}

/** Writes a key file (devices/key-files.ts: mode 0600, the keys dir 0700); an existing one only with `force`. */
async function writeRouterKeyFile(path: string, key: DeviceKey, force: boolean | undefined, extra: Record<string, unknown> = {}): Promise<void> {
  const { keyToJson } = await import("../../devices/keys.ts");
  try {
    writeKeyFile(path, { ...keyToJson(key), ...extra }, force === true);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "EEXIST") badFlag(`${path} exists; --force overwrites it`);
    fail("JG_ERR_CLI_ARGUMENT", `cannot write ${path}: ${(e as Error).message}`);
  }
}

/** The owner key file beside a router's: router.json → router.owner.json. */
export function ownerKeyFileBeside(routerKeyFile: string): string {
  const name = basename(routerKeyFile);
  return join(dirname(routerKeyFile), `${name.endsWith(".json") ? name.slice(0, -5) : name}.owner.json`);
}

// ---- output

/** Prints the one JSON object of --json, or the lines of text. */
function print(options: { json?: boolean }, object: Record<string, unknown>, text: () => string[]): void {
  if (options.json) console.log(JSON.stringify(object));
  else for (const line of text()) console.log(line);
}

const str = (v: unknown): string => (typeof v === "string" || typeof v === "number" || typeof v === "bigint" || typeof v === "boolean" ? String(v) : "-");
const micros = (v: unknown): string => formatMicros(str(v), undefined);

/**
 * The lines a router is configured with. MQTT: the broker, the router id as username and a token
 * as password (devices/keys.ts: the device SDK mints fresh ones from the key file). RADIUS:
 * hostapd's (hostapd.conf: acct_server_addr, acct_server_port, acct_server_shared_secret,
 * nas_identifier) and CoovaChilli's (/etc/chilli/config: HS_RADIUS, HS_RADACCT, HS_RADSECRET,
 * HS_NASID); the router id is the NAS-Identifier the gateway finds the router by.
 */
export function routerConfigLines(router: string, mqtt: OnboardedMqtt | null, radius: OnboardedRadius | null): string[] {
  const lines: string[] = [];
  if (mqtt !== null) {
    lines.push(
      "",
      "# MQTT (the router SDK): connect (client id and username: the router id), publish usage, listen for control messages",
      `mqtt_url=${mqtt.url}`,
      `mqtt_client_id=${mqtt.username}`,
      `mqtt_username=${mqtt.username}`,
      `mqtt_password=${mqtt.password}`,
      `# the password is valid until ${new Date(mqtt.passwordExpiresAtMs).toISOString()}; the SDK mints new ones from the key file (jamgate device token --key ${mqtt.keyFile})`,
      `mqtt_publish_topic=${mqtt.topics.usage}`,
      `mqtt_subscribe_topic=${mqtt.topics.down}`,
    );
  }
  if (radius !== null) {
    lines.push(
      "",
      "# RADIUS accounting, hostapd (hostapd.conf)",
      `acct_server_addr=${radius.server}`,
      `acct_server_port=${radius.port}`,
      `acct_server_shared_secret=${radius.sharedSecret}`,
      `nas_identifier=${radius.nasIdentifier}`,
      "radius_acct_interim_interval=60",
      "",
      "# RADIUS accounting, CoovaChilli (/etc/chilli/config)",
      `HS_RADIUS=${radius.server}`,
      `HS_RADACCT=${radius.port}`,
      `HS_RADSECRET=${radius.sharedSecret}`,
      `HS_NASID=${radius.nasIdentifier}`,
      "# User-Name must be the client's account id (32 hex digits): its balance pays",
    );
  }
  if (mqtt === null && radius === null) lines.push("", `# router ${router}: no connection lines`);
  return lines;
}

interface OnboardedMqtt {
  readonly url: string;
  readonly username: string;
  readonly password: string;
  readonly passwordExpiresAtMs: number;
  readonly keyFile: string;
  readonly topics: { readonly usage: string; readonly down: string; readonly control: string };
}

interface OnboardedRadius {
  readonly server: string;
  readonly port: number;
  readonly sharedSecret: string;
  readonly nasIdentifier: string;
}

// ---- commands

interface OnboardOptions extends GatewayOptions {
  name: string;
  priceMicrosPerGb: bigint;
  stake: bigint;
  owner?: string;
  capacityMbps: number;
  routerAttested?: boolean;
  radius?: boolean;
  radiusServer?: string;
  location?: Location;
  keyOut?: string;
  ownerKeyOut?: string;
  mqtt?: string;
  mqttTokenTtlMs: number;
  force?: boolean;
}

interface AccountNewOptions extends GatewayOptions {
  keyOut: string;
  force?: boolean;
}

interface TopupOptions extends GatewayOptions {
  account: string;
  amountMicros: bigint;
}

interface AccountOptions extends GatewayOptions {
  account: string;
}

interface SetPriceOptions extends GatewayOptions {
  priceMicrosPerGb: bigint;
}

/** Registers `jamgate router …` and `jamgate wifi …`. */
export function registerWifiCommands(program: Command): void {
  const router = usageExitsWith2(
    program.command("router").description("Wi-Fi routers on the wifi-billing service: onboard, list, show, set-price, deregister"),
  );

  withConnectionOptions(
    router
      .command("onboard")
      .description(
        "make a router's key, register it with its owner, price and stake, wait until it is on the ledger, print its MQTT (and RADIUS) configuration",
      )
      .requiredOption("--name <name>", `the router's name (1 to ${ROUTER_NAME_BYTES_MAX} bytes)`, routerName)
      .requiredOption(
        "--price-micros-per-gb <micros>",
        `price per GB (10^9 bytes) in micro-units, 1 to ${PRICE_MICROS_PER_GB_MAX}`,
        positiveMicros(PRICE_MICROS_PER_GB_MAX),
      )
      .requiredOption(
        "--stake <micros>",
        "stake in micro-units, locked from the owner's balance (returned after deregistration and a cool-down)",
        positiveMicros(STAKE_MICROS_MAX),
      )
      .option(
        "--owner <account>",
        "the owner's account id (registered, its balance at least the stake); default: a new account, topped up with the stake by the operator",
        hexId("--owner"),
      )
      .option(
        "--capacity-mbps <mbps>",
        `the router's link capacity in Mbit/s (1 to ${CAPACITY_MBPS_MAX}); usage beyond capacity × time is refused`,
        integerIn(1, CAPACITY_MBPS_MAX),
        DEFAULT_CAPACITY_MBPS,
      )
      .option("--router-attested", "the owner accepts usage the router alone attests (no client voucher, e.g. RADIUS), its stake behind it")
      .option("--radius", "a stock router speaking RADIUS accounting: the gateway makes and keeps its key and a shared secret")
      .option("--radius-server <host[:port]>", "the RADIUS server address the router is to use (default: the gateway's host, port 1813)")
      .option("--location <lat,lon>", "where the router is, decimal degrees (kept in the key file and printed)", parseLocation)
      .option("--key-out <file>", `the router's key file, written 0600 (default: ${defaultRouterKeyFile()}; none with --radius)`)
      .option("--owner-key-out <file>", "without --owner: the new owner's key file, written 0600 (default: beside the router's, NAME.owner.json)")
      .option("--mqtt <url>", "the broker URL to print (default: the running gateway's, or mqtt://<--gateway host>:1883)")
      .option(
        "--mqtt-token-ttl-ms <ms>",
        "how long the printed MQTT password is valid (at most 24 h by the gateway's clock)",
        integerIn(1_000, TOKEN_LIFETIME_MAX_MS),
        DEFAULT_MQTT_TOKEN_TTL_MS,
      )
      .option("--force", "overwrite existing key files"),
  ).action(async (options: OnboardOptions) => onboard(options));

  withConnectionOptions(router.command("list").description("the routers the gateway knows (GET /v1/wifi/routers)")).action(async (options: GatewayOptions) =>
    listRouters(options),
  );

  withConnectionOptions(
    router
      .command("show")
      .description("one router: owner, price, stake, capacity, attested billing, status, usage (GET /v1/wifi/routers/{id})")
      .argument("<id>", "the router id (32 hex digits)", hexId("the router")),
  ).action(async (id: string, options: GatewayOptions) => showRouter(id, options));

  withConnectionOptions(
    router
      .command("set-price")
      .description("set a router's price (operator); sessions already started keep the price they started with")
      .argument("<id>", "the router id (32 hex digits)", hexId("the router"))
      .requiredOption(
        "--price-micros-per-gb <micros>",
        `price per GB (10^9 bytes) in micro-units, 1 to ${PRICE_MICROS_PER_GB_MAX}`,
        positiveMicros(PRICE_MICROS_PER_GB_MAX),
      ),
  ).action(async (id: string, options: SetPriceOptions) => setPrice(id, options));

  withConnectionOptions(
    router
      .command("deregister")
      .description(`deregister a router (operator): its usage is refused from then on, its stake returns to the owner after ${STAKE_COOLDOWN_SLOTS} slots`)
      .argument("<id>", "the router id (32 hex digits)", hexId("the router")),
  ).action(async (id: string, options: GatewayOptions) => deregister(id, options));

  const wifi = usageExitsWith2(program.command("wifi").description("Wi-Fi billing accounts: new accounts, top-ups, balances"));
  const account = wifi.command("account").description("Wi-Fi billing accounts (clients and router owners)");
  withConnectionOptions(
    account
      .command("new")
      .description("make an account key, register it on wifi-billing, wait until it is on the ledger")
      .option("--key-out <file>", "the account's key file, written 0600", defaultAccountKeyFile())
      .option("--force", "overwrite an existing key file"),
  ).action(async (options: AccountNewOptions) => accountNew(options));

  withConnectionOptions(
    wifi
      .command("topup")
      .description("credit an account's prepaid balance (operator), waiting until it is applied")
      .requiredOption("--account <id>", "the account id (32 hex digits)", hexId("--account"))
      .requiredOption("--amount-micros <micros>", "the amount in micro-units", positiveMicros(TOPUP_MICROS_MAX)),
  ).action(async (options: TopupOptions) => topup(options));

  withConnectionOptions(
    wifi
      .command("balance")
      .description("an account's balance and locked stakes (GET /v1/wifi/accounts/{id})")
      .requiredOption("--account <id>", "the account id (32 hex digits)", hexId("--account")),
  ).action(async (options: AccountOptions) => balance(options));
}

/** Where the router sends RADIUS accounting: `--radius-server host[:port]`, else the listener endpoints.json names, else the gateway's host on 1813. */
function radiusServerOf(value: string | undefined, target: Target): { server: string; port: number } {
  const known = target.radius ?? { host: target.host, port: DEFAULT_RADIUS_PORT };
  if (value === undefined) return { server: known.host, port: known.port };
  const m = /^(\[[0-9a-fA-F:.]+\]|[^\s:[\]]+)(?::(\d{1,5}))?$/.exec(value.trim());
  const port = m?.[2] === undefined ? DEFAULT_RADIUS_PORT : Number(m[2]);
  if (m === null || port < 1 || port > 65_535) return badFlag(`--radius-server takes host or host:port, got "${value}"`);
  return { server: m[1]!, port };
}

/** Makes the router's key (unless --radius), registers the router and waits until it is on the ledger. */
async function registerRouter(
  target: Target,
  options: OnboardOptions,
  owner: string,
  keyFile: string | null,
  capacityBitsPerSecond: bigint,
): Promise<{ id: string; routerKey: DeviceKey | null; sharedSecret: unknown; view: Record<string, unknown> }> {
  const { generateDeviceKey } = await import("../../devices/keys.ts");
  const routerKey = options.radius ? null : generateDeviceKey();
  if (routerKey !== null)
    await writeRouterKeyFile(keyFile!, routerKey, options.force, {
      kind: "router",
      name: options.name,
      owner,
      ...(options.location === undefined ? {} : { location: options.location }),
    });
  const made = await call(target, "POST", "/v1/wifi/routers", {
    ...(routerKey === null ? {} : { publicKey: toHex(routerKey.publicKey) }),
    owner,
    name: options.name,
    priceMicrosPerGb: options.priceMicrosPerGb.toString(),
    stakeMicros: options.stake.toString(),
    capacityBitsPerSecond: capacityBitsPerSecond.toString(),
    attested: options.routerAttested === true,
    ...(options.radius ? { radius: true } : {}),
  });
  if (typeof made.router !== "string" || !/^[0-9a-f]{32}$/.test(made.router))
    fail("JG_ERR_RPC_REMOTE", `the gateway answered no router id: ${JSON.stringify(made).slice(0, 200)}`);
  const id = made.router as string;
  if (routerKey !== null && id !== routerKey.deviceId) fail("JG_ERR_RPC_REMOTE", `the gateway answered router ${id}, the key's is ${routerKey.deviceId}`);
  const sharedSecret = (made.radius as { sharedSecret?: unknown } | undefined)?.sharedSecret;
  if (options.radius && (typeof sharedSecret !== "string" || sharedSecret === ""))
    fail("JG_ERR_RPC_REMOTE", `the gateway answered no RADIUS shared secret for router ${id}`);
  const view = await routerRegistered(target, id, options);
  return { id, routerKey, sharedSecret, view };
}

async function onboard(options: OnboardOptions): Promise<void> {
  // Every flag first: nothing is written or sent for a command line that cannot work.
  if (options.radius && options.keyOut !== undefined)
    badFlag("--radius: the gateway makes and keeps the router's key (it signs the router's RADIUS usage), so there is no --key-out file");
  if (options.owner !== undefined && options.ownerKeyOut !== undefined)
    badFlag("--owner-key-out names the key of a new owner account; with --owner there is none");
  if (!options.radius && options.radiusServer !== undefined) badFlag("--radius-server goes with --radius");
  if (options.mqtt !== undefined && !/^(mqtts?|wss?):\/\/[^/\s]+/.test(options.mqtt))
    badFlag(`--mqtt must be mqtt://, mqtts://, ws:// or wss:// host:port, got ${options.mqtt}`);
  const keyFile = options.radius ? null : (options.keyOut ?? defaultRouterKeyFile());
  const ownerKeyFile = options.owner !== undefined ? null : (options.ownerKeyOut ?? ownerKeyFileBeside(options.keyOut ?? defaultRouterKeyFile()));
  if (keyFile !== null && keyFile === ownerKeyFile) badFlag("--key-out and --owner-key-out name the same file");
  if (keyFile !== null) checkWritable(keyFile, options.force, "--key-out");
  if (ownerKeyFile !== null) checkWritable(ownerKeyFile, options.force, "--owner-key-out");
  const target = await targetOf(options, true);
  const { generateDeviceKey, mqttPassword } = await import("../../devices/keys.ts");
  if (options.radius) radiusServerOf(options.radiusServer, target);
  const capacityBitsPerSecond = BigInt(options.capacityMbps) * 1_000_000n;

  // The owner: given (registered, funded), or a new account the operator funds with exactly the stake.
  let owner: string;
  let topupAction: string | null = null;
  if (options.owner !== undefined) {
    owner = options.owner;
    const account = await call(target, "GET", `/v1/wifi/accounts/${owner}`);
    if (account.registered === false) fail("JG_ERR_WIFI_ACCOUNT", `owner ${owner} is not registered on wifi-billing (yet): jamgate wifi account new makes one`);
    const balanceMicros = /^\d+$/.test(str(account.balanceMicros)) ? BigInt(str(account.balanceMicros)) : 0n;
    if (balanceMicros < options.stake)
      fail(
        "JG_ERR_WIFI_STAKE",
        `owner ${owner} has ${balanceMicros} µ, the stake is ${options.stake} µ: jamgate wifi topup --account ${owner} --amount-micros ${options.stake - balanceMicros}`,
      );
  } else {
    const ownerKey = generateDeviceKey();
    owner = ownerKey.deviceId;
    await writeRouterKeyFile(ownerKeyFile!, ownerKey, options.force, { kind: "client" });
    process.stderr.write(`owner account ${owner}: key in ${ownerKeyFile}\n`);
    const made = await call(target, "POST", "/v1/wifi/accounts", { publicKey: toHex(ownerKey.publicKey) });
    if (made.account !== owner) fail("JG_ERR_RPC_REMOTE", `the gateway answered account ${str(made.account)}, the key's is ${owner}`);
    await registered(target, owner, `owner account ${owner}`, options);
    const funded = await call(target, "POST", "/v1/wifi/topups", { account: owner, amountMicros: options.stake.toString() });
    topupAction = actionOf(funded, "top-up");
    await applied(target, topupAction, `top-up of ${options.stake} µ (the stake) to ${owner}`, options);
  }

  // The router. A new owner funded above keeps its balance if this fails: say how to use it again.
  let registeredRouter: { id: string; routerKey: DeviceKey | null; sharedSecret: unknown; view: Record<string, unknown> };
  try {
    registeredRouter = await registerRouter(target, options, owner, keyFile, capacityBitsPerSecond);
  } catch (e) {
    if (topupAction !== null)
      process.stderr.write(
        `the new owner account ${owner} keeps the ${options.stake} µ it was funded with: onboard again with --owner ${owner} (its key: ${ownerKeyFile})\n`,
      );
    throw e;
  }
  const { id, routerKey, sharedSecret, view } = registeredRouter;

  const expiresAtMs = Date.now() + options.mqttTokenTtlMs;
  const mqtt: OnboardedMqtt | null =
    routerKey === null
      ? null
      : {
          url: options.mqtt ?? target.mqtt,
          username: id,
          password: mqttPassword(routerKey, expiresAtMs),
          passwordExpiresAtMs: expiresAtMs,
          keyFile: keyFile!,
          topics: routerTopics(id),
        };
  const radiusAt = options.radius ? radiusServerOf(options.radiusServer, target) : null;
  const radius: OnboardedRadius | null = radiusAt === null ? null : { ...radiusAt, sharedSecret: sharedSecret as string, nasIdentifier: id };
  if (mqtt !== null && options.mqtt === undefined && isLoopback(new URL(mqtt.url).hostname))
    process.stderr.write(`note: ${mqtt.url} is this machine's loopback; a router elsewhere needs the address it reaches the gateway at (--mqtt)\n`);
  if (radius !== null && options.radiusServer === undefined && isLoopback(radius.server))
    process.stderr.write(
      `note: RADIUS server ${radius.server} is this machine's loopback; a router elsewhere needs the address it reaches the gateway at (--radius-server)\n`,
    );
  const result = {
    router: id,
    name: options.name,
    status: str(view.status),
    owner,
    ownerCreated: options.owner === undefined,
    ...(ownerKeyFile === null ? {} : { ownerKeyFile }),
    ...(topupAction === null ? {} : { ownerTopup: { action: topupAction, amountMicros: options.stake.toString() } }),
    priceMicrosPerGb: options.priceMicrosPerGb.toString(),
    stakeMicros: options.stake.toString(),
    capacityBitsPerSecond: capacityBitsPerSecond.toString(),
    attested: options.routerAttested === true,
    ...(options.location === undefined ? {} : { location: options.location }),
    ...(keyFile === null ? {} : { keyFile }),
    mqtt,
    radius,
    ledger: view,
  };
  print(options, result, () => [
    `router ${id} "${options.name}" is registered on wifi-billing (${str(view.status)})`,
    `owner ${owner}${options.owner === undefined ? ` (a new account, key in ${ownerKeyFile}; topped up with the stake, ${micros(options.stake)}, by the operator)` : ""}`,
    `price ${micros(options.priceMicrosPerGb)}/GB · stake ${micros(options.stake)} locked · capacity ${options.capacityMbps} Mbit/s · router-attested billing ${options.routerAttested ? "accepted" : "not accepted (usage needs client vouchers)"}`,
    ...(options.location === undefined ? [] : [`location ${options.location.lat},${options.location.lon}`]),
    ...(keyFile === null ? ["key: held by the gateway (RADIUS: it signs the router's usage)"] : [`key ${keyFile} (0600): keep it on the router`]),
    ...routerConfigLines(id, mqtt, radius),
  ]);
}

async function accountNew(options: AccountNewOptions): Promise<void> {
  checkWritable(options.keyOut, options.force, "--key-out");
  const target = await targetOf(options, true);
  const { generateDeviceKey } = await import("../../devices/keys.ts");
  const key = generateDeviceKey();
  await writeRouterKeyFile(options.keyOut, key, options.force, { kind: "client" });
  process.stderr.write(`account ${key.deviceId}: key in ${options.keyOut}\n`);
  const made = await call(target, "POST", "/v1/wifi/accounts", { publicKey: toHex(key.publicKey) });
  if (made.account !== key.deviceId) {
    rmSync(options.keyOut, { force: true });
    fail("JG_ERR_RPC_REMOTE", `the gateway answered account ${str(made.account)}, the key's is ${key.deviceId}`);
  }
  await registered(target, key.deviceId, `account ${key.deviceId}`, options);
  const result = { account: key.deviceId, publicKey: toHex(key.publicKey), keyFile: options.keyOut, status: "registered" };
  print(options, result, () => [
    `account ${key.deviceId} is registered on wifi-billing; key in ${options.keyOut} (0600)`,
    `top it up: jamgate wifi topup --account ${key.deviceId} --amount-micros AMOUNT`,
  ]);
}

async function topup(options: TopupOptions): Promise<void> {
  const target = await targetOf(options, true);
  const answer = await call(target, "POST", "/v1/wifi/topups", { account: options.account, amountMicros: options.amountMicros.toString() });
  const action = actionOf(answer, "top-up");
  await applied(target, action, `top-up of ${options.amountMicros} µ to ${options.account}`, options);
  const account = await call(target, "GET", `/v1/wifi/accounts/${options.account}`);
  const result = {
    action,
    status: "applied",
    account: options.account,
    amountMicros: options.amountMicros.toString(),
    balanceMicros: str(account.balanceMicros),
    lockedMicros: str(account.lockedMicros),
  };
  print(options, result, () => [
    `topped up ${options.account} with ${micros(options.amountMicros)} (action ${action}): balance ${micros(account.balanceMicros)}, locked ${micros(account.lockedMicros)}`,
  ]);
}

async function balance(options: AccountOptions): Promise<void> {
  const target = await targetOf(options, false);
  const account = await call(target, "GET", `/v1/wifi/accounts/${options.account}`);
  print(options, account, () => [
    `account ${options.account}${account.registered === false ? " (not registered yet)" : ""}: balance ${micros(account.balanceMicros)}, locked ${micros(account.lockedMicros)}`,
  ]);
}

async function listRouters(options: GatewayOptions): Promise<void> {
  const target = await targetOf(options, false);
  const routers: Record<string, unknown>[] = [];
  let cursor: string | null = null;
  let complete = false;
  for (let pages = 0; pages < ROUTER_LIST_PAGES_MAX; pages++) {
    const page = await call(target, "GET", `/v1/wifi/routers?limit=${ROUTER_PAGE_LIMIT}${cursor === null ? "" : `&after=${cursor}`}`);
    if (!Array.isArray(page.items)) fail("JG_ERR_RPC_REMOTE", `GET ${target.base}/v1/wifi/routers answered no page of routers (items)`);
    routers.push(...(page.items as Record<string, unknown>[]));
    if (page.next === null || page.next === undefined) {
      complete = true;
      break;
    }
    if (typeof page.next !== "string" || !/^[0-9a-f]{32}$/.test(page.next))
      fail("JG_ERR_RPC_REMOTE", `GET ${target.base}/v1/wifi/routers answered a next that is no router id: ${str(page.next)}`);
    cursor = page.next as string;
  }
  const result = { routers, count: routers.length, ...(complete ? {} : { incomplete: `stopped after ${ROUTER_LIST_PAGES_MAX} pages` }) };
  print(options, result, () => {
    if (routers.length === 0) return ["no routers"];
    const rows = routers.map((r) => [
      str(r.router),
      str(r.name),
      str(r.owner),
      `${micros(r.priceMicrosPerGb)}/GB`,
      micros(r.stakeMicros),
      r.attested === true ? "yes" : "no",
      str(r.status),
    ]);
    const header = ["ROUTER", "NAME", "OWNER", "PRICE", "STAKE", "ATTESTED", "STATUS"];
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
    const line = (cells: string[]) =>
      cells
        .map((c, i) => c.padEnd(widths[i]!))
        .join("  ")
        .trimEnd();
    return [line(header), ...rows.map(line), ...(complete ? [] : [`(incomplete: ${result.incomplete})`])];
  });
}

async function showRouter(id: string, options: GatewayOptions): Promise<void> {
  const target = await targetOf(options, false);
  const view = await call(target, "GET", `/v1/wifi/routers/${id}`);
  print(options, view, () => fieldLines(view));
}

/** A view as `field value` lines, nested objects as `parent.field`, money with its unit. */
export function fieldLines(view: Record<string, unknown>, prefix = ""): string[] {
  return Object.entries(view).flatMap(([field, value]) => {
    const name = `${prefix}${field}`;
    if (typeof value === "object" && value !== null && !Array.isArray(value)) return fieldLines(value as Record<string, unknown>, `${name}.`);
    const shown = /Micros/.test(field) ? micros(value) : Array.isArray(value) ? JSON.stringify(value) : str(value);
    return [`${name.padEnd(24)} ${shown}`];
  });
}

async function setPrice(id: string, options: SetPriceOptions): Promise<void> {
  const target = await targetOf(options, true);
  const answer = await call(target, "POST", `/v1/wifi/routers/${id}/price`, { priceMicrosPerGb: options.priceMicrosPerGb.toString() });
  const action = actionOf(answer, "price change");
  await applied(target, action, `price of router ${id} to ${options.priceMicrosPerGb} µ/GB`, options);
  const result = { action, status: "applied", router: id, priceMicrosPerGb: options.priceMicrosPerGb.toString() };
  print(options, result, () => [
    `router ${id}: price ${micros(options.priceMicrosPerGb)}/GB (action ${action}); sessions already started keep their start price`,
  ]);
}

async function deregister(id: string, options: GatewayOptions): Promise<void> {
  const target = await targetOf(options, true);
  const answer = await call(target, "DELETE", `/v1/wifi/routers/${id}`);
  const action = actionOf(answer, "deregistration");
  await applied(target, action, `deregistration of router ${id}`, options);
  const result = { action, status: "applied", router: id, stakeReturnedAfterSlots: STAKE_COOLDOWN_SLOTS };
  print(options, result, () => [
    `router ${id} is deregistered (action ${action}): its usage is refused from now on; its stake returns to the owner's balance after ${STAKE_COOLDOWN_SLOTS} slots`,
  ]);
}
