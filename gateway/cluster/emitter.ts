/**
 * aedes' message bus across gateways: mqemitter-redis (aedes' own clustering: every gateway's
 * aedes publishes to Redis and hears what the others publish), with what crosses Redis chosen by
 * topic. mqemitter-redis by itself publishes every message on a Redis channel named after its
 * topic and subscribes a wildcard filter as a Redis pattern; two things in that do not fit a fleet:
 *
 * - A device's subscription `devices/{id}/down/#` would be one Redis pattern per connected device,
 *   and Redis matches every PUBLISH against every pattern of every subscriber: at 20,000 devices a
 *   gateway, each receipt would be matched against 20,000 × N patterns. Here a device's own down
 *   topics travel on one plain channel per device (`<prefix>down:<id>`), which Redis finds by hash.
 * - Every envelope a device publishes would be written to Redis (up to 64 KiB each, thousands a
 *   second) for no one: the gateway that takes an envelope is the only one that needs it. A
 *   device's up topics stay on the gateway that took them (an operator subscribed to them on
 *   another gateway does not see them; docs/cluster.md, Limits), which also keeps them out of what
 *   waits for Redis while it is away: devices publish on and get their PUBACKs from the gateway's
 *   own log, and what is held for Redis is only what must cross.
 *
 * aedes' own `$SYS/…` topics (a client connected elsewhere, so close it here; sessions' subscriptions
 * added or removed; brokers' heartbeats) cross on channels named after the topic, their wildcard
 * filters as patterns (a handful per gateway). Anything else stays local. What crosses Redis keeps
 * mqemitter-redis's wire form (msgpack of `{id, msg}`), with the MQTT topic carried in the message
 * beside the channel's name and put back on arrival.
 *
 * While the gateway's Redis connections are not all up, messages bound for Redis are held (at most
 * EMITS_HELD_MAX) and sent a grace period after they are (cluster/index.ts): the other gateways'
 * subscriber connections have then subscribed again, so what is sent is heard (pub/sub keeps
 * nothing for a subscriber that is not there; a receipt missed so stays in its session's queue in
 * Redis and is delivered at the device's next connect).
 */
import type { Redis } from "ioredis";
import MQEmitterRedis from "mqemitter-redis";

/** Messages held for Redis while it is unreachable: the gateway's receipts and errors in flight (gateway.ts DOWNLINK_IN_FLIGHT_MAX, 5,000) and aedes' notices of clients that disconnect meanwhile, with room to spare. Past it a message fails (its publisher logs it; a receipt stays in its session's queue). */
export const EMITS_HELD_MAX = 20_000;

/** The property of a message crossing Redis that carries its MQTT topic (its `topic` is then the channel's name). */
const TOPIC_FIELD = "jamgateTopic";

const DEVICES = "devices";
const SYS = "$SYS/";

/** A level that names one thing: no wildcard, not empty. */
const literal = (level: string | undefined): level is string => level !== undefined && level !== "" && !level.includes("+") && !level.includes("#");

/**
 * The Redis channel a message on `topic` crosses on, or null when it stays on this gateway: a
 * device's down topics (`devices/{id}/down/{channel}`) on the device's channel, aedes' `$SYS/…` on
 * one named after the topic, anything else (devices' up topics) nowhere.
 */
export function channelOf(topic: string, prefix: string): string | null {
  if (topic.startsWith(SYS)) return prefix + topic;
  const levels = topic.split("/");
  if (levels.length === 4 && levels[0] === DEVICES && levels[2] === "down" && literal(levels[1]) && literal(levels[3])) return `${prefix}down:${levels[1]}`;
  return null;
}

/** Redis glob's special characters, escaped so a topic's own `*`, `?` or `[` match only themselves. */
const globEscape = (s: string) => s.replace(/[\\*?[\]]/g, "\\$&");

/**
 * What a subscription to the MQTT filter `filter` subscribes to in Redis: a name, and whether it is
 * a pattern. A device's own down filters (`devices/{id}/down/#`, `…/down/receipts`, `devices/{id}/#`)
 * take its channel; `$SYS/…` filters their own channel or pattern; any other filter with a
 * wildcard (an operator's `devices/+/down/#`, `#`) every device's down channel, and the gateway's
 * own matching picks what it asked for. A filter that can match only topics that stay local
 * (a device's up topic) takes a channel nothing is published on.
 */
export function subscriptionOf(filter: string, prefix: string): { readonly name: string; readonly pattern: boolean } {
  if (filter.startsWith(SYS)) {
    const wildcard = filter.includes("+") || filter.includes("#");
    // `a/#` matches `a` too (matchEmptyLevels, [MQTT-4.7.1-2]): the separator before `#` is optional.
    const name = wildcard ? prefix + globEscape(filter).replace(/\+/g, "*").replace(/\/?#$/, "*") : prefix + filter;
    return { name, pattern: wildcard };
  }
  const levels = filter.split("/");
  if (levels[0] === DEVICES && literal(levels[1])) {
    const ownDown = levels.length === 4 && levels[2] === "down";
    const all = levels.length === 3 && levels[2] === "#";
    if (ownDown || all) return { name: `${prefix}down:${levels[1]}`, pattern: false };
  }
  if (!filter.includes("+") && !filter.includes("#")) return { name: channelOf(filter, prefix) ?? `${prefix}local:${filter}`, pattern: false };
  return { name: `${prefix}down:*`, pattern: true };
}

export interface RoutedEmitter {
  /** aedes' `mq` option. */
  readonly mq: object;
  /** Messages waiting for Redis. */
  readonly held: () => number;
  /** Sends the messages held while Redis was unreachable (the cluster calls it once its connections are up again). */
  release(): void;
}

/** The slice of mqemitter-redis's instance this module changes (its methods, as the library names them). */
interface Instance {
  closed: boolean;
  closing: boolean;
  _subTopic(topic: string): string;
  _containsWildcard(topic: string): boolean;
  _emit(msg: Record<string, unknown>, done?: (error?: Error) => void): void;
  _close(cb: () => void): void;
  emit(msg: Record<string, unknown>, done?: (error?: Error) => void): void;
  close(cb?: () => void): void;
  state: NodeJS.EventEmitter;
}

/**
 * mqemitter-redis on the connections given (the cluster owns them: it makes them, watches them and
 * closes them), routed as above. `canSend` says whether Redis is reachable now; while it is not,
 * messages for Redis are held until `release`.
 */
export function routedEmitter(options: {
  readonly pub: Redis;
  readonly sub: Redis;
  readonly prefix: string;
  /** aedes' concurrency (broker.ts brokerLimits.concurrency). */
  readonly concurrency: number;
  readonly canSend: () => boolean;
  readonly onError: (error: Error) => void;
}): RoutedEmitter {
  const { prefix } = options;
  // The package is CommonJS; its types describe a callable that `new` also builds.
  const Emitter = MQEmitterRedis as unknown as new (opts: object) => Instance;
  const e = new Emitter({ subConn: options.sub, pubConn: options.pub, concurrency: options.concurrency, matchEmptyLevels: true });
  // mqemitter-redis reports its connections' errors here; the cluster logs the connections' state itself.
  e.state.on("error", options.onError);
  e._subTopic = (topic) => subscriptionOf(topic, prefix).name;
  e._containsWildcard = (topic) => subscriptionOf(topic, prefix).pattern;
  const deliver = e._emit.bind(e);
  // Every message for this gateway's subscribers passes here: from Redis (its topic restored) and local ones.
  e._emit = (msg, done) => {
    const topic = msg[TOPIC_FIELD];
    if (typeof topic === "string") {
      msg.topic = topic;
      delete msg[TOPIC_FIELD];
    }
    deliver(msg, done);
  };
  const publish = e.emit.bind(e);
  const held: { readonly msg: Record<string, unknown>; readonly done: ((error?: Error) => void) | undefined }[] = [];
  const send = (msg: Record<string, unknown>, channel: string, done: ((error?: Error) => void) | undefined) =>
    publish({ ...msg, topic: channel, [TOPIC_FIELD]: msg.topic }, done);
  e.emit = (msg, done) => {
    const channel = channelOf(msg.topic as string, prefix);
    if (channel === null) return e._emit(msg, done);
    if (held.length > 0 || !options.canSend()) {
      if (held.length >= EMITS_HELD_MAX) return done?.(new Error(`${EMITS_HELD_MAX} messages already wait for the cluster's Redis`));
      held.push({ msg, done });
      return;
    }
    send(msg, channel, done);
  };
  // The connections are the cluster's: closing the emitter stops it; the cluster ends them (mqemitter-redis's own close waits for a QUIT that an unreachable Redis never answers).
  e.close = (cb) => {
    if (e.closed || e.closing) return cb?.();
    e.closing = true;
    for (const { done } of held.splice(0)) done?.(new Error("the gateway is stopping"));
    e._close(cb ?? (() => {}));
  };
  return {
    mq: e,
    held: () => held.length,
    release() {
      while (held.length > 0 && options.canSend()) {
        const { msg, done } = held.shift()!;
        send(msg, channelOf(msg.topic as string, prefix)!, done);
      }
    },
  };
}
