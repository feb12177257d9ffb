/**
 * aedes' sessions in Redis (aedes-persistence-redis): a persistent session's subscriptions and its
 * undelivered QoS 1 messages, shared by the cluster's gateways, so a device that connects to any
 * of them finds its session and the receipts and errors held for it.
 *
 * Bounded as the single gateway's memory persistence is (broker.ts boundedMemoryPersistence):
 * at most `max` messages held per session (brokerLimits.sessionQueueMax), past it not held and
 * counted (JG_ERR_MQTT_SESSION_QUEUE). The count is the session's queue in Redis (LLEN of the list
 * aedes-persistence-redis keeps per client), not one kept per gateway: a message queued by one
 * gateway is delivered, PUBACKed and removed by another. A gateway queues for one session one
 * message at a time (count, then push); two gateways queueing for one session at the same moment
 * may each see room for the last place, so a queue can pass the bound by one message for each
 * other gateway, and never grows past that.
 *
 * A message not held is still written to the session if it is online, once (not again after a
 * reconnect), and nothing of it is stored.
 *
 * Devices' up topics are never held for a session (an operator's persistent subscription to
 * them): they stay on the gateway that took them (emitter.ts), and holding them would write every
 * envelope to Redis, and make each wait for Redis while it is away.
 *
 * A write to Redis that fails (not one that waits for Redis to come back: the connection keeps
 * those) leaves the message not held, logged: aedes' own error path for it would never call the
 * publish back, and would end the process.
 */
import type { Redis } from "ioredis";
import aedesPersistenceRedis from "aedes-persistence-redis";

/** aedes-persistence-redis's key of a client's list of undelivered messages, and of a QoS 1 message in it (its `outgoingKey` and `packetKey`, asyncPersistence.js). */
const outgoingKey = (clientId: string) => `outgoing:${encodeURIComponent(clientId)}`;
const packetKey = (brokerId: string, brokerCounter: number | string) => `packet:${brokerId}:${brokerCounter}`;

/** A device's up topic: `devices/{id}/up/{kind}`. */
const isUpTopic = (topic: unknown) => typeof topic === "string" && /^devices\/[^/]+\/up\//.test(topic);

/** The slice of aedes-persistence's interface that queues a session's outgoing messages. */
interface OutgoingPersistence {
  outgoingEnqueue(sub: { clientId: string }, packet: { topic?: unknown }): Promise<void>;
  outgoingEnqueueCombi(subs: { clientId: string }[], packet: { topic?: unknown }): Promise<void>;
  outgoingUpdate(client: { id: string }, packet: { cmd?: string; qos?: number; brokerId?: string; brokerCounter?: number }): Promise<void>;
}

export function boundedRedisPersistence(options: {
  readonly db: Redis;
  /** brokerLimits.sessionQueueMax, or a test's. */
  readonly max: number;
  readonly onFull: (clientId: string) => void;
  readonly onError: (error: Error) => void;
}): object {
  const { db, max } = options;
  // `conn`: the cluster's connection (it watches and ends it); maxSessionDelivery: everything a
  // session may hold is delivered when it connects (the package's default is 1,000).
  const persistence = aedesPersistenceRedis({ conn: db, maxSessionDelivery: max });
  const p = persistence as unknown as OutgoingPersistence;
  const enqueueCombi = p.outgoingEnqueueCombi.bind(p);
  const admitted = async (subs: { clientId: string }[]) => {
    const lengths = await Promise.all(subs.map((sub) => db.llen(outgoingKey(sub.clientId))));
    return subs.filter((sub, i) => {
      if (lengths[i]! < max) return true;
      options.onFull(sub.clientId);
      return false;
    });
  };
  // A session's count and its push are two steps: enqueues for one session go one after the other
  // (a settled package yields a burst of messages for one device), each after the last one's push.
  const tails = new Map<string, Promise<void>>();
  const enqueue = (subs: { clientId: string }[], packet: { topic?: unknown }): Promise<void> => {
    if (subs.length === 0 || isUpTopic(packet.topic)) return Promise.resolve();
    const ids = [...new Set(subs.map((sub) => sub.clientId))];
    const run = Promise.all(ids.map((id) => tails.get(id))).then(async () => {
      try {
        const room = await admitted(subs);
        if (room.length > 0) await enqueueCombi(room, packet);
      } catch (error) {
        options.onError(error as Error);
      }
    });
    for (const id of ids) tails.set(id, run);
    // Bounded by the sessions with an enqueue under way: each entry goes once its last enqueue is done.
    void run.then(() => {
      for (const id of ids) if (tails.get(id) === run) tails.delete(id);
    });
    return run;
  };
  p.outgoingEnqueue = (sub, packet) => enqueue([sub], packet);
  p.outgoingEnqueueCombi = (subs, packet) => enqueue(subs, packet);
  // A QoS 1 message about to be written to an online session that did not hold it (its queue was
  // full, or Redis refused the write): written once as it is, nothing stored. aedes-persistence-redis
  // would store it anew and, once it is PUBACKed, leave its keys in Redis for good (its count of
  // sessions holding it goes below zero); its PUBACK then finds nothing to clear, which aedes takes.
  const update = p.outgoingUpdate.bind(p);
  p.outgoingUpdate = async (client, packet) => {
    if (packet.cmd === "publish" && packet.qos === 1 && packet.brokerId !== undefined && packet.brokerCounter !== undefined) {
      const at = await db.lpos(outgoingKey(client.id), packetKey(packet.brokerId, packet.brokerCounter));
      if (at === null) return;
    }
    return update(client, packet);
  };
  return persistence;
}
