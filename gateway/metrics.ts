/**
 * Prometheus metrics of the gateway (prom-client), served on GET /metrics. What changes once per
 * envelope (acceptances by kind, the queue gauges) is kept in plain fields and handed to
 * prom-client when scraped (its `collect` hook), so the hot path does no label hashing.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { InfluxWriterStats } from "./influx/writer.ts";

/** The outcomes `jamgate_influx_points_total` counts, each a count of InfluxWriter.stats(). */
const INFLUX_POINT_OUTCOMES = ["written", "dropped", "invalid", "rejected"] as const;

/** The settlement queues the gauges read when scraped. */
export interface QueueSizes {
  readonly pendingCount: number;
  readonly inFlightCount: number;
}

export class GatewayMetrics {
  /** Envelopes accepted since start, by envelope kind (bounded: ENVELOPE_KINDS). */
  private readonly acceptedByKind = new Map<string, number>();
  private queues: QueueSizes | null = null;
  private influx: { stats(): InfluxWriterStats } | null = null;
  readonly registry = new Registry();
  readonly connections = new Gauge({ name: "jamgate_mqtt_connections", help: "MQTT clients connected now", registers: [this.registry] });
  readonly connectsRefused = new Counter({
    name: "jamgate_mqtt_connects_refused_total",
    help: "CONNECTs refused, by code",
    labelNames: ["code"],
    registers: [this.registry],
  });
  /** Topic filters refused in a SUBSCRIBE (SUBACK 0x80 [MQTT-3.9.3]): a device may subscribe to its own downlink topics only. */
  readonly subscriptionsRefused = new Counter({
    name: "jamgate_mqtt_subscriptions_refused_total",
    help: "SUBSCRIBE topic filters refused, by code",
    labelNames: ["code"],
    registers: [this.registry],
  });
  /** Receipts and errors for a persistent session not held because its queue is full (broker.ts brokerLimits.sessionQueueMax). */
  readonly messagesNotHeld = new Counter({
    name: "jamgate_mqtt_messages_not_held_total",
    help: "messages for a persistent session not held (its queue full), by code",
    labelNames: ["code"],
    registers: [this.registry],
  });
  readonly accepted: Counter = new Counter({
    name: "jamgate_envelopes_accepted_total",
    help: "envelopes written to the durable log and PUBACKed",
    labelNames: ["kind"],
    registers: [this.registry],
    collect: () => {
      this.accepted.reset();
      for (const [kind, n] of this.acceptedByKind) this.accepted.inc({ kind }, n);
    },
  });
  readonly rejected = new Counter({
    name: "jamgate_envelopes_rejected_total",
    help: "envelopes refused, by code",
    labelNames: ["code"],
    registers: [this.registry],
  });
  readonly settled = new Counter({
    name: "jamgate_envelopes_settled_total",
    help: "envelopes accumulated on the ledger (receipts sent)",
    registers: [this.registry],
  });
  readonly refusedOnChain = new Counter({
    name: "jamgate_envelopes_refused_on_chain_total",
    help: "envelopes a service refused in accumulate",
    registers: [this.registry],
  });
  readonly packages = new Counter({
    name: "jamgate_packages_submitted_total",
    help: "work packages submitted",
    labelNames: ["service"],
    registers: [this.registry],
  });
  readonly packagesFailed = new Counter({
    name: "jamgate_packages_failed_total",
    help: "work packages that failed (their envelopes are retried), by code",
    labelNames: ["code"],
    registers: [this.registry],
  });
  readonly batchEnvelopes = new Histogram({
    name: "jamgate_batch_envelopes",
    help: "envelopes per work package",
    buckets: [1, 10, 100, 500, 1000, 2500, 5000, 12000],
    registers: [this.registry],
  });
  readonly batchBytes = new Histogram({
    name: "jamgate_batch_bytes",
    help: "bytes per work package",
    buckets: [1e3, 1e4, 1e5, 1e6, 5e6, 1.4e7],
    registers: [this.registry],
  });
  readonly settlementSeconds = new Histogram({
    name: "jamgate_settlement_seconds",
    help: "PUBACK to receipt",
    buckets: [0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 30, 60],
    registers: [this.registry],
  });
  readonly pending: Gauge = new Gauge({
    name: "jamgate_queue_pending_envelopes",
    help: "envelopes logged and not yet in a submitted package",
    registers: [this.registry],
    collect: () => {
      this.pending.set(this.queues?.pendingCount ?? 0);
    },
  });
  readonly inFlight: Gauge = new Gauge({
    name: "jamgate_queue_packages_in_flight",
    help: "packages submitted and not yet settled",
    registers: [this.registry],
    collect: () => {
      this.inFlight.set(this.queues?.inFlightCount ?? 0);
    },
  });
  readonly influxBuffered: Gauge = new Gauge({
    name: "jamgate_influx_buffered_points",
    help: "points waiting for InfluxDB or in flight",
    registers: [this.registry],
    collect: () => {
      this.influxBuffered.set(this.influx?.stats().buffered ?? 0);
    },
  });
  readonly influxPoints: Counter = new Counter({
    name: "jamgate_influx_points_total",
    help: "points given to the InfluxDB writer, by outcome: written, dropped (buffer full), invalid (refused for their shape), rejected (refused by InfluxDB)",
    labelNames: ["outcome"],
    registers: [this.registry],
    collect: () => {
      this.influxPoints.reset();
      const stats = this.influx?.stats();
      if (stats !== undefined) for (const outcome of INFLUX_POINT_OUTCOMES) this.influxPoints.inc({ outcome }, stats[outcome]);
    },
  });
  readonly influxFailedBatches: Counter = new Counter({
    name: "jamgate_influx_failed_batches_total",
    help: "write and create-database requests to InfluxDB that failed",
    registers: [this.registry],
    collect: () => {
      this.influxFailedBatches.reset();
      this.influxFailedBatches.inc(this.influx?.stats().failedBatches ?? 0);
    },
  });
  /** HTTP requests answered with a coded error (bounded: the codes of devices/protocol/errors.ts). */
  readonly httpRefused = new Counter({
    name: "jamgate_http_refused_total",
    help: "HTTP requests refused, by code",
    labelNames: ["code"],
    registers: [this.registry],
  });
  readonly eventStreams = new Gauge({ name: "jamgate_http_event_streams", help: "GET /v1/events streams open now", registers: [this.registry] });

  constructor() {
    collectDefaultMetrics({ register: this.registry });
  }

  /** One envelope accepted (PUBACKed): the hot path, a map increment. */
  countAccepted(kind: string): void {
    this.acceptedByKind.set(kind, (this.acceptedByKind.get(kind) ?? 0) + 1);
  }

  /** The queues `pending` and `inFlight` report, read when scraped. */
  watchQueues(queues: QueueSizes): void {
    this.queues = queues;
  }

  /** The InfluxDB writer whose stats the `jamgate_influx_*` metrics report, read when scraped (none: zeros). */
  watchInflux(writer: { stats(): InfluxWriterStats } | null): void {
    this.influx = writer;
  }
}
