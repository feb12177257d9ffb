/**
 * `jamgate sim wifi`: Wi-Fi routers and their clients run end to end. Accounts (clients and
 * routers' owners) and routers are registered and topped up through the gateway's HTTP API
 * (`/v1/wifi/*`); native routers are real MQTT devices publishing signed `router.usage` envelopes
 * built with the router SDK (devices/wifi.ts), their clients countersigning every update; RADIUS
 * routers send real Accounting-Requests over UDP to the gateway's listener, which signs their
 * usage with keys it holds. The gateway batches everything into work packages for the wifi-billing
 * service on the embedded JAM node (or a running `jamgate start`).
 *
 * The clock is the chain's: `secondsPerSlot` simulated seconds pass per slot, and a session's
 * step is sent once the slot's simulated time reaches it. Each session sends its next step only
 * when the one before is settled (a native router waits for its receipt or coded refusal; a RADIUS
 * router for its Accounting-Response, then for the session's record on the chain to show the
 * counters), so every update is billed alone and a fraud attempt is judged against the state
 * the honest updates before it left: the results are the plan's whatever the machine's speed.
 * At the end balances, routers and the ledger are read back and set beside the independent count
 * (expected.ts).
 */
import { createSocket, type Socket } from "node:dgram";
import { EventEmitter, once } from "node:events";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { blake2b } from "@noble/hashes/blake2.js";
import type { Logger } from "pino";
import radius from "radius";
import { decodeCbor, encodeCbor } from "../../devices/cbor.ts";
import { DeviceClient } from "../../devices/client.ts";
import { type DeviceKey, deviceKeyFromSecret } from "../../devices/keys.ts";
import type { GenesisService } from "../../node/chain/genesis.ts";
import { JamgateError } from "../../devices/protocol/errors.ts";
import { wifiService } from "../../gateway/services/wifi.ts";
import type { StackWiring } from "../../gateway/stack.ts";
import { builtinServices } from "../../gateway/genesis.ts";
import {
  decodeFees,
  decodeLedgerEntries,
  decodeSession,
  feesKey,
  type LedgerEntry,
  ledgerKey,
  LEDGER_SLOTS_KEPT,
  sessionKey,
  WIFI_SERVICE_NAME,
} from "../../services/wifi-billing/types.ts";
import { progressBars } from "../common/progress.ts";
import { openRunDir } from "../common/run-dir.ts";
import { connectRemote, type RemoteJamgate, type SimTarget, startOwnStack } from "../common/target.ts";
import { accountingRequest, nativeFraudBody, nativeSession, type NativeSession } from "./bodies.ts";
import { FRAUD_KINDS, type FraudKind, type SessionSteps, type Step } from "./fraud.ts";
import type { WifiPlan } from "./plan.ts";
import { type WifiReportData, writeWifiReport } from "./report.ts";
import { compareWithExpected, type Observed, type WifiSummary } from "./summary.ts";

/** How long registrations, top-ups and the RADIUS listener's answers may take: minutes on a busy machine, never forever. */
export const SETUP_DEADLINE_MS = 180_000;
/** A session waits this long (wall time) for one step's verdict before the run fails saying which. */
export const STEP_DEADLINE_MS = 120_000;
/** Slots beside the run's own in the ledger read back: registration before it, settling after it. */
const LEDGER_SLOTS_MARGIN = 1_000;
/** RADIUS identifiers are one byte (RFC 2865 §3): at most 256 requests of one router in flight. */
const RADIUS_IDENTIFIERS = 256;
/** Concurrent HTTP requests while registering: the gateway's body limit and rate limits are per request; 32 keeps setup quick without a burst of thousands. */
const HTTP_CONCURRENCY = 32;

export interface WifiSimOptions {
  readonly plan: WifiPlan;
  /** Slot period of the embedded node. */
  readonly slotMs: number;
  /** Simulated seconds per slot. */
  readonly secondsPerSlot: number;
  /** Report directory; null: none. */
  readonly out: string | null;
  /** Where the node, gateway and devices keep their files; default a temp dir, removed after. */
  readonly dataDir?: string;
  readonly progress: boolean;
  /** Genesis of the embedded node; default the built-in one (`jamgate start`'s). */
  readonly genesis?: (gatewayKey: { readonly publicKey: Uint8Array }) => GenesisService[];
  /** A running jamgate instead of an embedded one. */
  readonly remote?: RemoteJamgate & { readonly radius: { readonly host: string; readonly port: number } | null };
}

interface Env extends SimTarget {
  readonly serviceId: number;
  readonly radius: { readonly host: string; readonly port: number } | null;
}

async function embeddedEnv(dataDir: string, slotMs: number, logger: Logger, genesis: NonNullable<WifiSimOptions["genesis"]>): Promise<Env> {
  let serviceId: number | null = null;
  const wiring: StackWiring = {
    genesis(gatewayKey) {
      const services = genesis(gatewayKey);
      serviceId = services.find((s) => s.name === WIFI_SERVICE_NAME)?.id ?? null;
      if (serviceId === null) throw new JamgateError("JG_ERR_GENESIS", `the built-in genesis has no ${WIFI_SERVICE_NAME} service`);
      return services;
    },
    async services() {
      return [wifiService(serviceId!)];
    },
    defaultServiceOf: () => WIFI_SERVICE_NAME,
  };
  const own = await startOwnStack(dataDir, slotMs, logger, wiring, true);
  const radiusPort = own.stack.radius?.port ?? null;
  return { ...own, serviceId: serviceId!, radius: radiusPort === null ? null : { host: "127.0.0.1", port: radiusPort } };
}

async function remoteEnv(remote: NonNullable<WifiSimOptions["remote"]>): Promise<Env> {
  const target = await connectRemote(remote);
  // `jamgate start`'s genesis is the built-in one: the service's id is the one it gives (the key does not change ids).
  const serviceId = builtinServices([new Uint8Array(32)]).find((s) => s.name === WIFI_SERVICE_NAME)?.id;
  if (serviceId === undefined) {
    await target.close();
    throw new JamgateError("JG_ERR_GENESIS", `the built-in genesis has no ${WIFI_SERVICE_NAME} service`);
  }
  return { ...target, serviceId, radius: remote.radius };
}

/** Keys from the plan's seed (and a salt, so a run against a running jamgate makes new ones each time). */
function keyOf(seed: number, salt: string, role: string, index: number): DeviceKey {
  return deviceKeyFromSecret(createHash("sha256").update(`jamgate-sim-wifi/${seed}/${salt}/${role}/${index}`).digest());
}

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex");

/** The usage session id of a RADIUS session (contract §2): blake2b-256(router id ⌢ Acct-Session-Id)[0..16]. */
function radiusSessionId(routerId: string, acctSessionId: string): Uint8Array {
  return blake2b(Buffer.concat([Buffer.from(routerId, "hex"), Buffer.from(acctSessionId, "utf8")]), { dkLen: 32 }).subarray(0, 16);
}

/** The service's protocol fees collected, at the block `at`. */
async function readFees(env: Env, at: Uint8Array): Promise<bigint> {
  const raw = await env.api.serviceValue(at, env.serviceId, feesKey);
  if (raw === null) return 0n;
  const decoded = decodeFees(raw);
  if (!decoded.ok) throw new Error(`fees: ${decoded.error}`);
  return decoded.value;
}

/** RADIUS requests the gateway's listener refused so far, by code (its Prometheus counter on /metrics). */
async function readRadiusRefused(env: Env): Promise<Record<string, number>> {
  const metrics = await (await fetch(`${env.httpUrl}/metrics`)).text();
  const refused: Record<string, number> = {};
  for (const m of metrics.matchAll(/^jamgate_radius_refused_total\{code="(\w+)"\} (\d+)/gm)) refused[m[1]!] = Number(m[2]);
  return refused;
}

interface RouterRun {
  readonly index: number;
  id: string;
  key?: DeviceKey;
  sharedSecret?: string;
  client?: DeviceClient;
  socket?: Socket;
  /** In-flight Accounting-Requests by identifier: the request (to check its response's authenticator) and what to do with the answer. */
  readonly pendingRadius: Map<number, { readonly request: Buffer; readonly answered: () => void }>;
  nextIdentifier: number;
}

interface SessionRun {
  readonly plan: SessionSteps;
  readonly router: RouterRun;
  readonly sessionId: Uint8Array;
  /** Simulated second each step is due at: its own update's, for a fraud the honest update it precedes. */
  readonly dueSeconds: readonly number[];
  native?: NativeSession;
  next: number;
  waiting: null | { readonly what: string; readonly sinceMs: number };
  /** A RADIUS update answered, to be seen in the session's record on the chain (`waiting` says so meanwhile). */
  settle: null | { readonly update: number };
}

export interface WifiSimResult {
  readonly summary: WifiSummary;
  readonly reportFiles: readonly string[];
}

export async function runWifiSim(options: WifiSimOptions): Promise<WifiSimResult> {
  const started = Date.now();
  const { plan } = options;
  // The ledger is read back at the end, and the service keeps the last LEDGER_SLOTS_KEPT slots of it.
  const runSlots = Math.ceil(plan.durationSeconds / options.secondsPerSlot);
  if (runSlots + LEDGER_SLOTS_MARGIN > LEDGER_SLOTS_KEPT)
    throw new JamgateError(
      "JG_ERR_CLI_ARGUMENT",
      `${plan.durationSeconds / 3600} hours at ${options.secondsPerSlot} s a slot are ${runSlots} slots: the service keeps the ledger of the last ${LEDGER_SLOTS_KEPT} (LEDGER_SLOTS_KEPT), and the run reads it back at the end; more seconds per slot`,
    );
  const dir = await openRunDir(options.dataDir, "jamgate-sim-wifi-");
  let env: Env;
  try {
    env =
      options.remote === undefined
        ? await embeddedEnv(join(dir.path, "stack"), options.slotMs, dir.logger, options.genesis ?? ((key) => builtinServices([key.publicKey])))
        : await remoteEnv(options.remote);
  } catch (e) {
    dir.close();
    throw e;
  }
  const salt = options.remote === undefined ? "" : String(Date.now());
  const seed = plan.population.seed;
  const clientKeys = plan.population.clients.map((c) => keyOf(seed, salt, "client", c.index));
  const ownerKeys = plan.population.owners.map((o) => keyOf(seed, salt, "owner", o.index));
  const routers: RouterRun[] = plan.population.routers.map((r) => ({ index: r.index, id: "", pendingRadius: new Map(), nextIdentifier: 0 }));
  const totalSteps = plan.steps.reduce((n, s) => n + s.steps.length, 0);

  const bars = progressBars(options.progress, "{phase} [{bar}] {value}/{total} steps | slot {slot} | {time} | receipts {receipts} | refused {refused}");
  const bar = bars?.create(totalSteps, 0, { phase: "setup   ", slot: 0, time: "", receipts: 0, refused: 0 });
  let sentSteps = 0;
  let receipts = 0;
  let refusedCount = 0;
  /** What each fraud attempt got: its kind, and the code (or "settled" when it was taken). */
  const fraudVerdicts = Object.fromEntries(FRAUD_KINDS.map((k) => [k, {} as Record<string, number>])) as Record<FraudKind, Record<string, number>>;
  /** Refusals of honest updates (none expected), by code. */
  const honestRefused: Record<string, number> = {};
  /** Native refusals by code, as devices were told. */
  const refusedNative: Record<string, number> = {};
  const bump = (into: Record<string, number>, key: string) => {
    into[key] = (into[key] ?? 0) + 1;
  };

  const http = async (method: string, path: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> => {
    const response = await fetch(`${env.httpUrl}${path}`, {
      method,
      headers: { authorization: `Bearer ${env.token}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await response.text();
    let json: Record<string, unknown> = {};
    try {
      json = JSON.parse(text) as Record<string, unknown>;
    } catch {
      json = { text };
    }
    return { status: response.status, json };
  };
  const expectStatus = (what: string, r: { status: number; json: Record<string, unknown> }, status: number) => {
    if (r.status !== status) throw new Error(`${what}: HTTP ${r.status} ${JSON.stringify(r.json).slice(0, 300)}`);
    return r.json;
  };
  const pollUntil = async <T>(what: string, read: () => Promise<T | null>): Promise<T> => {
    const deadline = Date.now() + SETUP_DEADLINE_MS;
    for (;;) {
      const value = await read();
      if (value !== null) return value;
      if (Date.now() > deadline) throw new Error(`${what}: not done within ${SETUP_DEADLINE_MS / 1000} s; see ${dir.logPath}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  const inBatches = async <T>(items: readonly T[], each: (item: T) => Promise<void>) => {
    for (let i = 0; i < items.length; i += HTTP_CONCURRENCY) await Promise.all(items.slice(i, i + HTTP_CONCURRENCY).map(each));
  };

  const sessions: SessionRun[] = [];
  const closing: (() => Promise<void>)[] = [];
  try {
    const firstSlot = (await env.api.bestBlock()).slot;
    // A running jamgate may have collected fees and counted RADIUS refusals before: the run's are what it adds.
    const feesBefore = await readFees(env, (await env.api.bestBlock()).headerHash);
    const radiusRefusedBefore = await readRadiusRefused(env);
    // Accounts: every owner and client, then their top-ups, then the routers (a stake is locked from its owner's balance).
    const registerAccount = async (key: DeviceKey) => {
      const r = expectStatus(`account ${key.deviceId}`, await http("POST", "/v1/wifi/accounts", { publicKey: hex(key.publicKey) }), 202);
      if (r.account !== key.deviceId) throw new Error(`account ${key.deviceId}: the gateway answered ${String(r.account)}`);
    };
    const accountRegistered = async (key: DeviceKey) =>
      pollUntil(`registration of account ${key.deviceId}`, async () => {
        const r = await http("GET", `/v1/wifi/accounts/${key.deviceId}`);
        return r.status === 200 && r.json.registered === true ? true : null;
      });
    const allAccounts = [...ownerKeys, ...clientKeys];
    await inBatches(allAccounts, registerAccount);
    await inBatches(allAccounts, async (k) => void (await accountRegistered(k)));
    const topups: [DeviceKey, bigint][] = [
      ...plan.population.owners.map((o) => [ownerKeys[o.index]!, BigInt(o.topupMicros)] as [DeviceKey, bigint]),
      ...plan.clientTopupsMicros.map((m, i) => [clientKeys[i]!, m] as [DeviceKey, bigint]),
    ];
    await inBatches(topups, async ([key, amount]) => {
      const r = expectStatus(
        `top-up of ${key.deviceId}`,
        await http("POST", "/v1/wifi/topups", { account: key.deviceId, amountMicros: amount.toString() }),
        202,
      );
      const action = String(r.action);
      await pollUntil(`top-up ${action}`, async () => {
        const v = await http("GET", `/v1/wifi/actions/${action}`);
        if (v.json.status === "refused") throw new Error(`top-up ${action} of ${key.deviceId} refused: ${String(v.json.code)} ${String(v.json.detail ?? "")}`);
        return v.json.status === "applied" ? true : null;
      });
    });
    await inBatches(routers, async (run) => {
      const spec = plan.population.routers[run.index]!;
      const terms = {
        owner: ownerKeys[spec.owner]!.deviceId,
        name: spec.name,
        priceMicrosPerGb: String(spec.priceMicrosPerGb),
        stakeMicros: String(spec.stakeMicros),
        capacityBitsPerSecond: String(spec.capacityBitsPerSecond),
        attested: spec.attested,
      };
      if (spec.transport === "radius") {
        if (env.radius === null)
          throw new JamgateError(
            "JG_ERR_CLI_ARGUMENT",
            "the gateway has no RADIUS listener (jamgate start --radius-port N), and the simulation has RADIUS routers",
          );
        const r = expectStatus(`router ${spec.name}`, await http("POST", "/v1/wifi/routers", { ...terms, radius: true }), 202);
        run.id = String(r.router);
        run.sharedSecret = String((r.radius as { sharedSecret?: unknown } | undefined)?.sharedSecret);
      } else {
        run.key = keyOf(seed, salt, "router", run.index);
        const r = expectStatus(`router ${spec.name}`, await http("POST", "/v1/wifi/routers", { ...terms, publicKey: hex(run.key.publicKey) }), 202);
        run.id = run.key.deviceId;
        if (r.router !== run.id) throw new Error(`router ${spec.name}: the gateway answered ${String(r.router)}`);
      }
      await pollUntil(`registration of router ${spec.name} (${run.id})`, async () => {
        const v = await http("GET", `/v1/wifi/routers/${run.id}`);
        if (v.json.status === "failed") throw new Error(`router ${spec.name}: registration failed: ${String(v.json.code)} ${String(v.json.detail ?? "")}`);
        return v.json.status === "active" ? true : null;
      });
    });

    // Devices: native routers on MQTT, RADIUS routers each with a UDP socket.
    const pendingSeqs = new Map<string, Map<number, (verdict: string) => void>>();
    for (const run of routers) {
      if (run.key !== undefined) {
        const client = await DeviceClient.connect({ url: env.mqttUrl, key: run.key, dataDir: join(dir.path, "devices") });
        run.client = client;
        const pending = new Map<number, (verdict: string) => void>();
        pendingSeqs.set(run.id, pending);
        client.on("receipt", (r) => {
          receipts++;
          pending.get(r.seq)?.("settled");
          pending.delete(r.seq);
        });
        client.on("deviceError", (e) => {
          if (e.seq === null) return;
          refusedCount++;
          bump(refusedNative, e.code);
          pending.get(e.seq)?.(e.code);
          pending.delete(e.seq);
        });
        closing.push(() => client.close());
      } else {
        const socket = createSocket("udp4");
        await new Promise<void>((resolve) => socket.bind(0, "127.0.0.1", resolve));
        socket.on("message", (message) => {
          let decoded: { code: string; identifier: number };
          try {
            decoded = radius.decode({ packet: message, secret: run.sharedSecret! }) as { code: string; identifier: number };
          } catch {
            return;
          }
          const pending = run.pendingRadius.get(decoded.identifier);
          // RFC 2866 §3: the Response Authenticator is MD5 over the response, the request's authenticator and the secret.
          if (
            decoded.code !== "Accounting-Response" ||
            pending === undefined ||
            !radius.verify_response({ request: pending.request, response: message, secret: run.sharedSecret! })
          )
            return;
          run.pendingRadius.delete(decoded.identifier);
          pending.answered();
        });
        run.socket = socket;
        closing.push(() => new Promise<void>((resolve) => socket.close(() => resolve())));
      }
    }

    for (const s of plan.steps) {
      const run = routers[s.session.router]!;
      const sessionId = run.key !== undefined ? Uint8Array.from(Buffer.from(s.session.acctSessionId, "hex")) : radiusSessionId(run.id, s.session.acctSessionId);
      const dueSeconds: number[] = [];
      for (let i = s.steps.length - 1, due = Infinity; i >= 0; i--) {
        const step = s.steps[i]!;
        if (step.kind === "honest") due = s.session.updates[step.update]!.atSeconds;
        dueSeconds[i] = due;
      }
      sessions.push({ plan: s, router: run, sessionId, dueSeconds, next: 0, waiting: null, settle: null });
    }

    // The run: follow the chain's best block.
    const api = env.api;
    const startSlot = (await api.bestBlock()).slot + 1;
    let slot = startSlot;
    let nowSeconds = 0;
    let failure: Error | null = null;
    // One "block" per best block; a block that comes while the loop works is seen at the next (a slot later at most).
    const blocks = new EventEmitter();
    const unsubscribe = await api.subscribeBestBlock((block) => {
      slot = block.slot;
      blocks.emit("block");
    });
    /** Steps sent from a device's event (a verdict) rather than the loop: a throw there is the run's failure, seen at the next block. */
    const advanceSafely = (s: SessionRun) => {
      try {
        advance(s);
      } catch (e) {
        failure ??= e as Error;
      }
    };

    const sendRadius = (run: RouterRun, packet: (identifier: number, secret: string) => Buffer, secret: string, answered: (() => void) | null): boolean => {
      if (run.pendingRadius.size >= RADIUS_IDENTIFIERS) return false;
      while (run.pendingRadius.has(run.nextIdentifier)) run.nextIdentifier = (run.nextIdentifier + 1) % RADIUS_IDENTIFIERS;
      const identifier = run.nextIdentifier;
      run.nextIdentifier = (identifier + 1) % RADIUS_IDENTIFIERS;
      const request = packet(identifier, secret);
      if (answered !== null) run.pendingRadius.set(identifier, { request, answered });
      run.socket!.send(request, env.radius!.port, env.radius!.host);
      return true;
    };

    /** Sends every due step of `s` that need not wait; returns when one waits or none is due. */
    const advance = (s: SessionRun): void => {
      while (s.waiting === null && s.settle === null && s.next < s.plan.steps.length && s.dueSeconds[s.next]! <= nowSeconds) {
        const step = s.plan.steps[s.next]!;
        const run = s.router;
        const spec = s.plan.session;
        if (run.client !== undefined) {
          s.native ??= nativeSession(run.id, spec, s.sessionId, clientKeys[spec.client]!, s.plan.strip);
          const body =
            step.kind === "honest"
              ? s.native.bodies[step.update]!
              : nativeFraudBody(step as Parameters<typeof nativeFraudBody>[0], run.id, spec, s.sessionId, s.native, clientKeys[spec.client]!);
          // DeviceClient encodes a value: the body's value, which encodes back to the very bytes.
          const value = decodeCbor(body);
          if (Buffer.compare(encodeCbor(value), body) !== 0) throw new Error("a usage body does not encode back to itself through the device's CBOR");
          const sent = run.client.send("router.usage", value);
          if (!sent.ok) throw new Error(`router ${run.id}: ${sent.error.code} ${sent.error.detail}`);
          s.waiting = { what: `${step.kind} step of session ${spec.index} (router ${run.id}, seq ${sent.seq})`, sinceMs: Date.now() };
          pendingSeqs.get(run.id)!.set(sent.seq, (verdict) => {
            if (step.kind === "honest") {
              if (verdict !== "settled") bump(honestRefused, verdict);
            } else bump(fraudVerdicts[step.kind], verdict);
            s.waiting = null;
            s.next++;
            sentSteps++;
            advanceSafely(s);
          });
          return;
        }
        const clientId = clientKeys[spec.client]!.deviceId;
        const request = (update: number, inputOctets?: number) => (identifier: number, secret: string) =>
          accountingRequest({
            secret,
            identifier,
            routerId: run.id,
            clientId,
            acctSessionId: spec.acctSessionId,
            update: spec.updates[update]!,
            ...(inputOctets === undefined ? {} : { inputOctets }),
          });
        const done = (kind: Step["kind"], verdict: string | null) => () => {
          if (verdict !== null && kind !== "honest") bump(fraudVerdicts[kind], verdict);
          if (kind === "honest") {
            const update = (step as { update: number }).update;
            s.settle = { update };
            s.waiting = {
              what: `update ${update} of session ${spec.index} (RADIUS router ${run.id}) on the chain after its Accounting-Response`,
              sinceMs: Date.now(),
            };
            return;
          }
          s.waiting = null;
          s.next++;
          sentSteps++;
          advanceSafely(s);
        };
        let ok: boolean;
        if (step.kind === "honest") ok = sendRadius(run, request(step.update), run.sharedSecret!, done("honest", null));
        else if (step.kind === "radius-duplicate") ok = sendRadius(run, request(step.of), run.sharedSecret!, done(step.kind, "answered"));
        else if (step.kind === "radius-backwards")
          ok = sendRadius(
            run,
            request(step.after, spec.updates[step.after]!.inputOctets - step.minusInputOctets),
            run.sharedSecret!,
            done(step.kind, "answered"),
          );
        else if (step.kind === "radius-forged") {
          // A wrong shared secret: dropped without an answer (RFC 2866 §3), so nothing to wait for.
          ok = sendRadius(run, request(step.update), `${run.sharedSecret!}-not-it`, null);
          if (ok) {
            bump(fraudVerdicts[step.kind], "sent");
            s.next++;
            sentSteps++;
            continue;
          }
        } else throw new Error(`a ${step.kind} step on a RADIUS router`);
        if (!ok) return; // every identifier in flight: tried again next block
        s.waiting = { what: `${step.kind} step of session ${spec.index} (RADIUS router ${run.id})`, sinceMs: Date.now() };
        return;
      }
    };

    /** RADIUS sessions whose last answered update should now be on the chain. */
    const checkSettled = async (at: Uint8Array) => {
      for (const s of sessions) {
        if (s.settle === null) continue;
        const u = s.plan.session.updates[s.settle.update]!;
        const raw = await api.serviceValue(at, env.serviceId, sessionKey(s.router.id, s.sessionId));
        const record = raw === null ? null : decodeSession(raw);
        const seen =
          record?.ok &&
          record.value.inputOctets === BigInt(u.inputOctets) &&
          record.value.outputOctets === BigInt(u.outputOctets) &&
          record.value.seconds === u.seconds &&
          (u.status !== 2 || record.value.stopped);
        if (!seen) continue;
        receipts++;
        s.settle = null;
        s.waiting = null;
        s.next++;
        sentSteps++;
        advance(s);
      }
    };

    try {
      while (sessions.some((s) => s.next < s.plan.steps.length)) {
        try {
          await once(blocks, "block", { signal: AbortSignal.timeout(STEP_DEADLINE_MS) });
        } catch {
          throw new Error(`no block for ${STEP_DEADLINE_MS / 1000} s: the node stopped making blocks; see ${dir.logPath}`);
        }
        if (failure !== null) throw failure;
        nowSeconds = (slot - startSlot) * options.secondsPerSlot;
        const best = await api.bestBlock();
        await checkSettled(best.headerHash);
        for (const s of sessions) advance(s);
        const now = Date.now();
        const stuck = sessions.find((s) => s.waiting !== null && now - s.waiting.sinceMs > STEP_DEADLINE_MS);
        if (stuck !== undefined) throw new Error(`no verdict within ${STEP_DEADLINE_MS / 1000} s for the ${stuck.waiting!.what}; see ${dir.logPath}`);
        bar?.update(sentSteps, {
          phase: nowSeconds < plan.durationSeconds ? "running " : "settling",
          slot,
          time: new Date(Date.parse(plan.startIso) + Math.min(nowSeconds, plan.durationSeconds) * 1000).toISOString().slice(0, 16).replace("T", " "),
          receipts,
          refused: refusedCount,
        });
      }
    } finally {
      unsubscribe();
    }

    // Read back: accounts, routers, fees, the ledger of every slot since the run began, RADIUS refusals.
    const best = await api.bestBlock();
    const entries: { slot: number; entry: LedgerEntry }[] = [];
    for (let s = firstSlot; s <= best.slot; s++) {
      const raw = await api.serviceValue(best.headerHash, env.serviceId, ledgerKey(s));
      if (raw === null) continue;
      const decoded = decodeLedgerEntries(raw);
      if (!decoded.ok) throw new Error(`ledger of slot ${s}: ${decoded.error}`);
      for (const entry of decoded.value) entries.push({ slot: s, entry });
    }
    const fees = (await readFees(env, best.headerHash)) - feesBefore;
    const account = async (key: DeviceKey) => {
      const r = expectStatus(`account ${key.deviceId}`, await http("GET", `/v1/wifi/accounts/${key.deviceId}`), 200);
      return { balanceMicros: BigInt(String(r.balanceMicros)), lockedMicros: BigInt(String(r.lockedMicros)) };
    };
    const routerViews = [];
    for (const run of routers) routerViews.push(expectStatus(`router ${run.id}`, await http("GET", `/v1/wifi/routers/${run.id}`), 200));
    const refusedRadius: Record<string, number> = {};
    for (const [code, n] of Object.entries(await readRadiusRefused(env)))
      if (n > (radiusRefusedBefore[code] ?? 0)) refusedRadius[code] = n - (radiusRefusedBefore[code] ?? 0);

    const observed: Observed = {
      entries,
      clients: await Promise.all(clientKeys.map(account)),
      owners: await Promise.all(ownerKeys.map(account)),
      routers: routerViews.map((v) => v.usage as Record<string, string>),
      feesMicros: fees,
      refusedNative,
      refusedRadius,
      fraudVerdicts,
      honestRefused,
      ids: { clients: clientKeys.map((k) => k.deviceId), owners: ownerKeys.map((k) => k.deviceId), routers: routers.map((r) => r.id) },
      blocks: best.slot - startSlot + 1,
      startSlot,
      wallSeconds: (Date.now() - started) / 1000,
    };
    const summary = compareWithExpected(plan, observed);
    let reportFiles: readonly string[] = [];
    if (options.out !== null) {
      const data: WifiReportData = { plan, observed, summary, secondsPerSlot: options.secondsPerSlot };
      reportFiles = (await writeWifiReport(options.out, data)).files;
    }
    bar?.update(sentSteps, { phase: "done    " });
    return { summary, reportFiles };
  } finally {
    bars?.stop();
    for (const close of closing) await close().catch(() => undefined);
    await env.close();
    dir.close();
  }
}
