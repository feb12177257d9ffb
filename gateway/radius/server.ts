/**
 * The RADIUS accounting listener (UDP, `jamgate start --radius-port`, 1813 by default: RFC 2866
 * §1): stock routers (hostapd, CoovaChilli, OpenWrt) send Accounting-Requests (RFC 2866 §4.1);
 * each authentic Start, Interim-Update or Stop of a router onboarded for RADIUS (routers.ts)
 * becomes a `router.usage` envelope without voucher (router-attested usage: services/wifi-billing/README.md),
 * signed with the key the gateway holds for that router, and goes into the gateway's accept path
 * as an MQTT publish of the router would. The Accounting-Response is sent only once that envelope
 * is in the gateway's durable log and the session's new state on disk: RFC 2866 §4.1 "MUST NOT
 * send any Accounting-Response reply" unless the request was recorded.
 *
 * What is not answered (RFC 2866 §3, RFC 2865 §3: silently discarded, counted): a datagram that is
 * not an Accounting-Request or lacks what usage needs (JG_ERR_RADIUS_PACKET), a NAS-Identifier that
 * is not a router onboarded for RADIUS (JG_ERR_RADIUS_ROUTER), a Request Authenticator that the
 * router's shared secret does not make (JG_ERR_RADIUS_AUTHENTICATOR), an update the accept path
 * refused (its code), and requests past the in-flight bound. Answered and not taken: duplicates
 * and counters going backwards (sessions.ts), Accounting-On and Accounting-Off.
 *
 * A router is not tied to a source address: routers sit behind NAT on addresses that change, and
 * the shared secret, checked on every request, is what authenticates them (as it is for the
 * responses a NAS checks).
 */
import { createSocket, type Socket } from "node:dgram";
import { isIPv6 } from "node:net";
import { Counter, Registry } from "prom-client";
import type { DeviceId } from "../../devices/envelope.ts";
import type { ErrorCode } from "../../devices/protocol/errors.ts";
import {
  ACCT_STATUS,
  type AccountingRequest,
  type AccountingUsage,
  accountingResponse,
  authenticatorMatches,
  readAccountingContent,
  readAccountingRequest,
  type RadiusRefusal,
} from "./packet.ts";
import { loadRadiusRouter, type RadiusRouter, radiusRouterExists } from "./routers.ts";
import { judgeUsage, NO_PREVIOUS, nextState, type SessionState, usageSessionId } from "./sessions.ts";
import { RadiusState, type RadiusStateLimits, sessionKey } from "./state.ts";
import { usageEnvelope } from "./usage.ts";

/** RADIUS accounting's registered port (RFC 2866 §1); above 1023, so binding it needs no privilege. */
export const RADIUS_ACCOUNTING_PORT = 1813;

export interface RadiusServerLimits extends RadiusStateLimits {
  /**
   * Requests being taken at once (each waits for the gateway's log and a disk sync, a few ms).
   * 10,000 routers with ten sessions each, an Interim-Update every 5 minutes, send ~330 a second;
   * 1,024 is three seconds of that waiting on a stalled disk. Past it a request is dropped
   * unanswered (counted `busy`): the NAS retransmits it (RFC 2866 §2).
   */
  readonly requestsInFlightMax: number;
  /** Routers' files kept in memory once read: the gateway's target of 10,000 devices, ten times. */
  readonly routersCachedMax: number;
}

export const radiusServerLimits: RadiusServerLimits = { requestsInFlightMax: 1_024, routersCachedMax: 100_000, sessionsMax: 100_000 };

/** What the gateway's accept path says of an envelope it was handed (gateway.ts `acceptOwn`). */
export type OwnAcceptance = { readonly ok: true } | { readonly ok: false; readonly code: ErrorCode; readonly detail: string };

/**
 * The gateway's accept path for an envelope it built itself: resolves once the envelope is in the
 * durable log (ok) or refused; rejects if the log could not be written.
 */
export type AcceptOwn = (deviceId: DeviceId, kind: "router.usage", envelope: Uint8Array) => Promise<OwnAcceptance>;

/** What became of a datagram: the `status` label of jamgate_radius_requests_total. */
export type RequestStatus = "taken" | "answered" | "dropped" | "busy" | "failed";

export interface RadiusServerOptions {
  readonly dataDir: string;
  readonly accept: AcceptOwn;
  /** Where the Prometheus counters are registered (the gateway's /metrics); a registry of their own by default. */
  readonly registry?: Registry;
  readonly limits?: Partial<RadiusServerLimits>;
  readonly now?: () => number;
  readonly logger?: { info(o: object, m: string): void; warn(o: object, m: string): void; error(o: object, m: string): void };
}

/** Turns Accounting-Requests into usage; `handle` is the whole of it, `listen` puts it on a UDP socket. */
export class RadiusAccounting {
  private readonly state: RadiusState;
  private readonly limits: RadiusServerLimits;
  private readonly now: () => number;
  private readonly routers = new Map<string, RadiusRouter>();
  /** Per session, the request being taken: a session's requests are judged one after the other, each against the state the one before left. */
  private readonly sessionTails = new Map<string, Promise<unknown>>();
  private inFlight = 0;
  private socket: Socket | null = null;
  private readonly requests: Counter;
  private readonly refused: Counter;
  private readonly requestCounts = new Map<RequestStatus, number>();
  private readonly refusalCounts = new Map<string, number>();

  constructor(private readonly options: RadiusServerOptions) {
    this.limits = { ...radiusServerLimits, ...options.limits };
    this.now = options.now ?? Date.now;
    this.state = new RadiusState(options.dataDir, { sessionsMax: this.limits.sessionsMax }, options.logger);
    const registers = [options.registry ?? new Registry()];
    this.requests = new Counter({
      name: "jamgate_radius_requests_total",
      help: "RADIUS datagrams by what became of them: taken (usage logged, answered), answered (nothing taken: duplicate, counter, Accounting-On/Off), dropped (refused, not answered), busy (past the in-flight bound), failed (the log could not be written)",
      labelNames: ["status"],
      registers,
    });
    this.refused = new Counter({ name: "jamgate_radius_refused_total", help: "RADIUS requests not taken, by code", labelNames: ["code"], registers });
  }

  /** The UDP port it listens on, once listening. */
  get port(): number | null {
    return this.socket === null ? null : this.socket.address().port;
  }

  /** Counts since start: datagrams by status, and refusals by code. */
  stats(): { readonly requests: Readonly<Record<string, number>>; readonly refused: Readonly<Record<string, number>> } {
    return { requests: Object.fromEntries(this.requestCounts), refused: Object.fromEntries(this.refusalCounts) };
  }

  /** Listens on UDP `host`:`port` (0: a free port); rejects if the port cannot be bound. */
  async listen(port: number, host: string): Promise<void> {
    const socket = createSocket({ type: isIPv6(host) ? "udp6" : "udp4" });
    await new Promise<void>((resolve, reject) => {
      socket.once("error", reject);
      socket.bind(port, host, () => {
        socket.off("error", reject);
        resolve();
      });
    });
    socket.on("error", (error) => this.options.logger?.error({ err: String(error) }, "RADIUS socket error"));
    socket.on("message", (datagram, from) => {
      void this.handle(datagram).then(
        (answer) => {
          if (answer !== null)
            socket.send(
              answer,
              from.port,
              from.address,
              (error) =>
                error && this.options.logger?.warn({ to: `${from.address}:${from.port}`, err: String(error) }, "could not send an Accounting-Response"),
            );
        },
        // A bug if it happens (handle answers every failure it knows with null): logged, not answered.
        (error: unknown) => this.options.logger?.error({ from: `${from.address}:${from.port}`, err: String(error) }, "a RADIUS datagram could not be handled"),
      );
    });
    this.socket = socket;
  }

  /** Drops a router's file from memory (its file was removed: removeRadiusRouter), so its requests are no longer taken. */
  forgetRouter(routerId: string): void {
    this.routers.delete(routerId);
  }

  /** Stops listening, waits for the requests being taken, closes the state. */
  async close(): Promise<void> {
    const socket = this.socket;
    this.socket = null;
    if (socket !== null) await new Promise<void>((resolve) => socket.close(() => resolve()));
    await Promise.allSettled([...this.sessionTails.values()]);
    await this.state.close();
  }

  /** One datagram: its Accounting-Response, or null for none. Never throws. */
  async handle(datagram: Buffer): Promise<Buffer | null> {
    const read = readAccountingRequest(datagram);
    if (!read.ok) return this.drop(read.refusal);
    const request = read.value;
    const router = this.routerOf(request.routerId);
    if (router === null) return this.drop({ code: "JG_ERR_RADIUS_ROUTER", detail: `router ${request.routerId} is not onboarded for RADIUS` });
    if (!authenticatorMatches(request.bytes, router.sharedSecret))
      return this.drop({ code: "JG_ERR_RADIUS_AUTHENTICATOR", detail: `Request Authenticator of router ${router.routerId} does not verify` });
    const content = readAccountingContent(request);
    if (!content.ok) return this.drop(content.refusal);
    if (content.value.kind === "on-off") {
      this.count("answered");
      return accountingResponse(request, router.sharedSecret);
    }
    if (this.inFlight >= this.limits.requestsInFlightMax) {
      this.count("busy");
      return null;
    }
    const usage = content.value.usage;
    const key = sessionKey(router.routerId, usageSessionId(router.routerId, usage.acctSessionId));
    this.inFlight++;
    const before = this.sessionTails.get(key);
    const taking = (async () => {
      if (before !== undefined) await before;
      return this.take(router, request, usage, key);
    })();
    const tail = taking.catch(() => undefined);
    this.sessionTails.set(key, tail);
    try {
      return await taking;
    } catch (error) {
      this.options.logger?.error(
        { router: router.routerId, err: String(error) },
        "a RADIUS request could not be taken: not answered, the NAS will retransmit it",
      );
      this.count("failed");
      return null;
    } finally {
      this.inFlight--;
      if (this.sessionTails.get(key) === tail) this.sessionTails.delete(key);
    }
  }

  private async take(router: RadiusRouter, request: AccountingRequest, usage: AccountingUsage, key: string): Promise<Buffer | null> {
    let state = this.state.session(key);
    const verdict = judgeUsage(state, usage);
    if (!verdict.take) {
      this.countRefusal(verdict.refusal);
      if (!verdict.answer) return this.drop(verdict.refusal, false);
      this.count("answered");
      return accountingResponse(request, router.sharedSecret);
    }
    // The service opens a session only with a Start (else JG_ERR_WIFI_SESSION): a session first heard
    // of by an Interim-Update or a Stop (its Start lost after the NAS's retransmissions, or sent while
    // the gateway was down) is opened with a Start of zero counters, signed for the router like the
    // rest; the NAS's counters are cumulative from the session's start, so nothing is lost.
    if (state === null && usage.status !== ACCT_STATUS.start) {
      const opened = await this.record(router, key, null, {
        ...usage,
        status: ACCT_STATUS.start,
        inOctets: 0,
        inGigawords: 0,
        outOctets: 0,
        outGigawords: 0,
        seconds: 0,
        cause: 0,
      });
      if (!opened.ok) return this.drop(opened.refusal);
      state = opened.state;
    }
    const recorded = await this.record(router, key, state, usage);
    if (!recorded.ok) return this.drop(recorded.refusal);
    this.count("taken");
    return accountingResponse(request, router.sharedSecret);
  }

  /**
   * Signs `usage` as the router's next envelope, chained on the session's `state`, hands it to the
   * accept path, and records the session's new state once the envelope is logged.
   */
  private async record(
    router: RadiusRouter,
    key: string,
    state: SessionState | null,
    usage: AccountingUsage,
  ): Promise<{ readonly ok: true; readonly state: SessionState } | { readonly ok: false; readonly refusal: RadiusRefusal }> {
    const seq = await this.state.takeSeq(router.routerId);
    const nowMs = this.now();
    const sessionId = usageSessionId(router.routerId, usage.acctSessionId);
    const { envelope, hash } = usageEnvelope(router, seq, nowMs, sessionId, usage, state?.lastHash ?? NO_PREVIOUS);
    const accepted = await this.options.accept(router.routerId, "router.usage", envelope);
    if (!accepted.ok) return { ok: false, refusal: { code: accepted.code, detail: accepted.detail } };
    const next = nextState(state, usage, hash, nowMs);
    await this.state.putSession(key, next);
    return { ok: true, state: next };
  }

  /**
   * The router's file, read once; null when there is none. A router onboarded while running is
   * found on its first request; one whose file was removed is forgotten on its next (a stat each
   * request, so whoever removes a file need not tell the listener).
   */
  private routerOf(routerId: string): RadiusRouter | null {
    const cached = this.routers.get(routerId);
    if (cached !== undefined) {
      if (radiusRouterExists(this.options.dataDir, routerId)) return cached;
      this.routers.delete(routerId);
      return null;
    }
    let router: RadiusRouter | null;
    try {
      router = loadRadiusRouter(this.options.dataDir, routerId);
    } catch (error) {
      this.options.logger?.error({ router: routerId, err: String(error) }, "a RADIUS router's file does not read");
      return null;
    }
    if (router === null) return null;
    if (this.routers.size >= this.limits.routersCachedMax) this.routers.delete(this.routers.keys().next().value!);
    this.routers.set(routerId, router);
    return router;
  }

  private drop(refusal: RadiusRefusal, countRefusal = true): null {
    if (countRefusal) this.countRefusal(refusal);
    this.count("dropped");
    return null;
  }

  private count(status: RequestStatus): void {
    this.requestCounts.set(status, (this.requestCounts.get(status) ?? 0) + 1);
    this.requests.inc({ status });
  }

  private countRefusal(refusal: RadiusRefusal): void {
    this.refusalCounts.set(refusal.code, (this.refusalCounts.get(refusal.code) ?? 0) + 1);
    this.refused.inc({ code: refusal.code });
  }
}
