/**
 * Wi-Fi billing on a real `jamgate start` (its own process, every listener on a free port), as an
 * operator and a router drive it: accounts, top-ups and routers over `/v1/wifi/*` (each action
 * waited on until the service's verdict), a router's `router.usage` envelopes over real MQTT with
 * its receipts, refusals and control messages collected, and a session's update countersigned by
 * a client (devices/wifi.ts). Every wait polls a condition within a generous deadline: nothing
 * here depends on how fast the machine is.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import mqtt, { type MqttClient } from "mqtt";
import { expect } from "vitest";
import { type DeviceId, encodeEnvelope, ENVELOPE_VERSION, signEnvelope } from "../../devices/envelope.ts";
import { type DeviceKey, mqttPassword } from "../../devices/keys.ts";
import { decodeDeviceError, decodeReceipts, type DeviceError } from "../../devices/messages.ts";
import { type RouterSession, type SessionCounters, signVoucher, type UsageStatus } from "../../devices/wifi.ts";
import { tempDir } from "../../node/testing/fixtures.ts";
import { runCli, type RunningCli } from "../../scripts/testing/process.ts";
import type { ActionView, WifiAccountView, WifiRouterView } from "../wifi/backend.ts";

/** How long a router's MQTT password is good for: longer than any test runs. */
const ROUTER_TOKEN_LIFETIME_MS = 3_600_000;

export interface WifiGatewayOptions {
  readonly slotMs: number;
  /** How long a wait (`until`, an action's verdict, a receipt) may take before it fails. */
  readonly deadlineMs: number;
  /** How long the start may take (default: `deadlineMs`). */
  readonly startTimeoutMs?: number;
  /** `--radius-port` (0: a free port the process picks; its listener is then not known here). */
  readonly radiusPort?: number;
  /** More `jamgate start` flags (e.g. `--currency`). */
  readonly args?: readonly string[];
}

/** A router being onboarded; amounts are sent as decimal strings. */
export interface RouterOnboarding {
  /** The router's own key; without it (and with `radius`) the gateway makes one. */
  readonly key?: DeviceKey;
  readonly owner: string;
  readonly name: string;
  readonly priceMicrosPerGb: bigint;
  readonly stakeMicros: bigint;
  /** Sent only when given: the route's default is not router-attested billing. */
  readonly attested?: boolean;
  readonly radius?: boolean;
}

/** A router's MQTT connection, subscribed to `devices/{id}/down/#`. */
export interface RouterLink {
  readonly key: DeviceKey;
  readonly mqtt: MqttClient;
  /** Seqs receipted. */
  readonly receipts: Set<number>;
  /** Refusals on its error topic. */
  readonly errors: DeviceError[];
  /** Messages on its control topic, parsed JSON. */
  readonly controls: unknown[];
  /** Publishes the router's next `router.usage` envelope (QoS 1) with this body; its seq. */
  publish(body: Uint8Array): number;
  /** Resolves once `seq` is receipted. */
  settled(seq: number): Promise<boolean>;
}

export interface WifiGateway {
  /** The `jamgate start` process. */
  readonly cli: RunningCli;
  readonly dataDir: string;
  readonly http: string;
  readonly mqtt: string;
  /** The `jamgate started` log line, parsed. */
  readonly started: { readonly radius?: string | null };
  /** An operator request; the answer's status and JSON body. */
  api<T>(method: string, path: string, body?: unknown): Promise<{ status: number; json: T }>;
  /** Polls `read` until `done` holds of its result; fails naming `what` and the last result after `timeoutMs` (the gateway's deadline). */
  until<T>(what: string, read: () => Promise<T>, done: (value: T) => boolean, timeoutMs?: number): Promise<T>;
  /** Submits an action (202), waits for the service's verdict and expects it applied. */
  applied(action: Promise<{ status: number; json: ActionView }>): Promise<ActionView>;
  balanceOf(account: string): Promise<WifiAccountView>;
  /** Registers accounts of these keys (202, the account is the key's device id), then waits until each is registered on the service. */
  registerAccounts(...keys: DeviceKey[]): Promise<void>;
  /** Tops `account` up (a number is sent as a JSON number, a bigint as a string), applied. */
  topUp(account: string, amountMicros: bigint | number): Promise<ActionView>;
  /** Onboards a router (202) and waits until it is active. */
  onboardRouter(
    router: RouterOnboarding,
  ): Promise<{ readonly response: { readonly router: string; readonly radius?: { readonly sharedSecret: string } }; readonly view: WifiRouterView }>;
  /** Connects a router over MQTT with a token of its key and subscribes to its down topics. */
  connectRouter(key: DeviceKey): Promise<RouterLink>;
  /** Ends every router's connection, then the process with `signal` (SIGKILL unless given: its data dir is thrown away). */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/** Starts `jamgate start` in a new data dir and reads where it listens and its operator token. */
export async function startWifiGateway(options: WifiGatewayOptions): Promise<WifiGateway> {
  const dataDir = join(tempDir(), "gw");
  const cli = runCli([
    "start",
    "--data-dir",
    dataDir,
    "--mqtt-port",
    "0",
    "--ws-port",
    "0",
    "--http-port",
    "0",
    "--rpc-port",
    "0",
    "--radius-port",
    String(options.radiusPort ?? 0),
    "--slot-ms",
    String(options.slotMs),
    ...(options.args ?? []),
  ]);
  const links: RouterLink[] = [];
  const stop = async (signal: NodeJS.Signals = "SIGKILL") => {
    for (const link of links) link.mqtt.end(true);
    if (cli.child.exitCode === null && cli.child.signalCode === null) cli.child.kill(signal);
    await cli.exited;
  };
  let started: { readonly radius?: string | null };
  try {
    started = JSON.parse(await cli.waitFor(/"msg":"jamgate started"/, options.startTimeoutMs ?? options.deadlineMs)) as { radius?: string | null };
  } catch (error) {
    await stop();
    throw error;
  }
  const endpoints = JSON.parse(readFileSync(join(dataDir, "endpoints.json"), "utf8")) as { http: string; mqtt: string };
  const token = readFileSync(join(dataDir, "operator-token"), "utf8").trim();

  async function api<T>(method: string, path: string, body?: unknown): Promise<{ status: number; json: T }> {
    const res = await fetch(`${endpoints.http}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: res.status, json: (await res.json()) as T };
  }

  async function until<T>(what: string, read: () => Promise<T>, done: (value: T) => boolean, timeoutMs = options.deadlineMs): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    let last: T = await read();
    while (!done(last)) {
      if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms; last: ${JSON.stringify(last)}`);
      await new Promise((r) => setTimeout(r, 100));
      last = await read();
    }
    return last;
  }

  async function applied(action: Promise<{ status: number; json: ActionView }>): Promise<ActionView> {
    const submitted = await action;
    expect(submitted.status, JSON.stringify(submitted.json)).toBe(202);
    const done = await until(
      `action ${submitted.json.action}`,
      () => api<ActionView>("GET", `/v1/wifi/actions/${submitted.json.action}`),
      (r) => r.json.status !== "pending",
    );
    expect(done.json).toMatchObject({ status: "applied" });
    return done.json;
  }

  return {
    cli,
    dataDir,
    http: endpoints.http,
    mqtt: endpoints.mqtt,
    started,
    api,
    until,
    applied,
    balanceOf: async (account) => (await api<WifiAccountView>("GET", `/v1/wifi/accounts/${account}`)).json,
    async registerAccounts(...keys) {
      for (const key of keys) {
        const res = await api<{ account: string }>("POST", "/v1/wifi/accounts", { publicKey: Buffer.from(key.publicKey).toString("hex") });
        expect(res.status, JSON.stringify(res.json)).toBe(202);
        expect(res.json.account).toBe(key.deviceId);
      }
      for (const key of keys)
        await until(
          `account ${key.deviceId}`,
          () => api<WifiAccountView>("GET", `/v1/wifi/accounts/${key.deviceId}`),
          (r) => r.status === 200 && r.json.registered,
        );
    },
    topUp: (account, amountMicros) =>
      applied(api("POST", "/v1/wifi/topups", { account, amountMicros: typeof amountMicros === "bigint" ? String(amountMicros) : amountMicros })),
    async onboardRouter({ key, owner, name, priceMicrosPerGb, stakeMicros, attested, radius }) {
      const res = await api<{ router: string; radius?: { sharedSecret: string } }>("POST", "/v1/wifi/routers", {
        ...(key === undefined ? {} : { publicKey: Buffer.from(key.publicKey).toString("hex") }),
        owner,
        name,
        priceMicrosPerGb: String(priceMicrosPerGb),
        stakeMicros: String(stakeMicros),
        ...(attested === undefined ? {} : { attested }),
        ...(radius === undefined ? {} : { radius }),
      });
      expect(res.status, JSON.stringify(res.json)).toBe(202);
      const active = await until(
        `router ${name} active`,
        () => api<WifiRouterView>("GET", `/v1/wifi/routers/${res.json.router}`),
        (r) => r.status === 200 && r.json.status === "active",
      );
      return { response: res.json, view: active.json };
    },
    async connectRouter(key) {
      const client = mqtt.connect(endpoints.mqtt, {
        clientId: key.deviceId,
        username: key.deviceId,
        password: mqttPassword(key, Date.now() + ROUTER_TOKEN_LIFETIME_MS),
        protocolVersion: 4,
        clean: true,
        reconnectPeriod: 0,
      });
      let seq = 0;
      const link: RouterLink = {
        key,
        mqtt: client,
        receipts: new Set(),
        errors: [],
        controls: [],
        publish(body) {
          const s = seq++;
          const envelope = encodeEnvelope(
            signEnvelope(
              { version: ENVELOPE_VERSION, device: key.deviceId as DeviceId, seq: s, kind: "router.usage", timeMs: Date.now(), body },
              key.secretKey,
            ),
          );
          client.publish(`devices/${key.deviceId}/up/router.usage`, Buffer.from(envelope), { qos: 1 });
          return s;
        },
        settled: (s) =>
          until(
            `receipt of seq ${s}`,
            async () => link.receipts.has(s),
            (r) => r,
          ),
      };
      links.push(link);
      client.on("message", (topic, payload) => {
        if (topic.endsWith("/down/receipts")) for (const r of decodeReceipts(new Uint8Array(payload)) ?? []) link.receipts.add(r.seq);
        else if (topic.endsWith("/down/errors")) link.errors.push(decodeDeviceError(new Uint8Array(payload))!);
        else if (topic.endsWith("/down/control")) link.controls.push(JSON.parse(payload.toString("utf8")));
      });
      await new Promise<void>((resolve, reject) => {
        client.once("connect", () => resolve());
        client.once("error", reject);
      });
      await client.subscribeAsync(`devices/${key.deviceId}/down/#`, { qos: 1 });
      return link;
    },
    stop,
  };
}

/**
 * The body of a session's next update with a voucher over its counters signed by `signer`, sent
 * with `clientKey` (the signer's own public key unless given: a forgery signs with another key).
 */
export function countersigned(
  session: RouterSession,
  counters: SessionCounters,
  signer: DeviceKey,
  options: { readonly clientKey?: Uint8Array; readonly status?: UsageStatus } = {},
): Uint8Array {
  const voucher = signVoucher(session.voucherFields(counters), signer.secretKey);
  return session.update(counters, {
    voucher,
    clientKey: options.clientKey ?? signer.publicKey,
    ...(options.status === undefined ? {} : { status: options.status }),
  }).body;
}
