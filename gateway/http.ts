/**
 * The gateway's HTTP API (fastify): device registration for operators, registration status,
 * the settlement ledger's read routes, proofs and live events (ledger/routes.ts, ledger/events.ts),
 * Wi-Fi billing's accounts, routers and operator actions (wifi/routes.ts),
 * the OpenAPI document (`/docs/json`, @fastify/swagger) and its UI (`/docs`), Prometheus metrics,
 * health, and the dashboard when given. Inputs are validated by JSON schema and responses
 * serialized by theirs; every error answers `{error: {code, message}}` with the registry's HTTP
 * status and is counted.
 */
import fastifySwagger from "@fastify/swagger";
import fastifySwaggerUi from "@fastify/swagger-ui";
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from "fastify";
import { createBoundedServer, type ServerLimits, serverLimits, type TlsMaterial, tokensMatch } from "../node/net/servers.ts";
import { deviceIdOf, fromHex, tryAsDeviceId } from "../devices/envelope.ts";
import { type ErrorCode, errorRegistry } from "../devices/protocol/errors.ts";
import { BULK_BODY_BYTES_MAX, BULK_REGISTRATIONS_MAX } from "../devices/protocol/registration-rows.ts";
import type { EventStreamOptions } from "./ledger/events.ts";
import { SSE_HEARTBEAT_MS } from "./ledger/events.ts";
import { codedErrorHandler, ledgerRoutes, type ProofSource, sendError } from "./ledger/routes.ts";
import { ID_PATTERN, schemaRef, sharedSchemas } from "./ledger/schemas.ts";
import type { LedgerReader } from "./ledger/types.ts";
import { LineLimiter } from "./log-lines.ts";
import type { GatewayMetrics } from "./metrics.ts";
import { WIFI_SERVICE_NAME } from "../services/wifi-billing/types.ts";
import { BULK_BATCHES_KEPT_MAX, BULK_PROBLEMS_LISTED_MAX, BulkRowsError, RegistrationError, type Registrations } from "./registration.ts";
import type { WifiBackend } from "./wifi/backend.ts";
import { WifiControl } from "./wifi/control.ts";
import { wifiRoutes, wifiSchemas } from "./wifi/routes.ts";
import { type RadiusKeys, ServiceBackend } from "./wifi/service-backend.ts";
import { DEVICE_KINDS, type DeviceKind } from "../devices/protocol/device-kinds.ts";

/** Largest request body: a registration is ~100 bytes of JSON. */
const BODY_BYTES_MAX = 16 * 1024;
/** Sockets the HTTP API holds at once (operators, scrapers, dashboards); past it new ones are closed on accept. */
export const HTTP_CONNECTIONS_MAX = 1_024;

/** The Content-Security-Policy of API responses (JSON, metrics): they load nothing and are never framed. */
export const API_CSP = "default-src 'none'; frame-ancestors 'none'";
/**
 * The Content-Security-Policy of the OpenAPI UI (`/docs`): this origin only. Swagger UI loads its
 * scripts and styles from here, sets inline style attributes (hence style-src 'unsafe-inline',
 * styles only: Chromium blocks them otherwise) and draws its icons as data: images.
 */
export const DOCS_CSP =
  "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'";

export interface HttpDeps {
  readonly operatorToken: string;
  readonly registrations: Registrations;
  readonly metrics: GatewayMetrics;
  readonly count: (code: ErrorCode) => void;
  /**
   * The ledger index's read side (ledger/index.ts): the read routes, `/v1/events`, and the ledger's
   * fields of `GET /v1/devices/:id`. Absent: registration, metrics and health only.
   */
  readonly ledger?: LedgerReader | null;
  /** Proofs for `/v1/proofs/*` (ledger/prover.ts `Prover`); absent: those routes are not served. */
  readonly prover?: ProofSource | null;
  /**
   * The Wi-Fi routes' backend (`/v1/wifi/*`, wifi/routes.ts). Absent: made on `registrations`
   * (its node, its wifi-billing service, the ledger index) when the gateway settles on
   * wifi-billing; null: those routes are not served.
   */
  readonly wifi?: WifiBackend | null;
  /** What the Wi-Fi part takes from the stack besides: RADIUS routers' keys (in the data dir), and a way to publish on a router's control topic (balance-exhausted sessions, wifi/control.ts). */
  readonly wifiHost?: WifiHost;
  /** Registers the dashboard's files and routes (gateway/dashboard/serve.ts `registerDashboard`) after the API's. */
  readonly dashboard?: ((app: FastifyInstance) => Promise<void>) | null;
  /** Serve HTTPS with this certificate; null or absent: HTTP. */
  readonly tls?: TlsMaterial | null;
  /** Overrides of serverLimits and of HTTP_CONNECTIONS_MAX (tests). */
  readonly limits?: Partial<ServerLimits> & { readonly connectionsMax?: number };
  /** The event stream's clients gauge (`onClients`), and overrides of its bounds (tests); its heartbeat is otherwise kept under the idle-socket bound. */
  readonly events?: Pick<EventStreamOptions, "clientsMax" | "queueMax" | "heartbeatMs" | "onClients">;
  /** A warn line per registration refused (`POST /v1/devices` answered with an error), at most one per address and code a minute (log-lines.ts). Optional. */
  readonly logger?: { warn(o: object, m: string): void };
}

export interface WifiHost {
  readonly radius?: RadiusKeys | null;
  /** Publishes `payload` on `devices/{router}/down/control` (gateway.ts publishControl); absent: no control messages. */
  readonly publishControl?: ((routerId: string, payload: Uint8Array) => void) | null;
  readonly logger?: { info(o: object, m: string): void };
}

/** The Wi-Fi backend on the gateway's own registrations, and the control messages, when it settles on wifi-billing; null otherwise. */
function wifiOf(deps: HttpDeps): { readonly backend: WifiBackend; stop(): void } | null {
  const registrations = deps.registrations as Partial<Registrations>;
  const service = registrations.serviceFor?.("router", WIFI_SERVICE_NAME) ?? null;
  if (service === null || registrations.api === undefined) return null;
  const backend = new ServiceBackend({
    registrations: deps.registrations,
    service,
    api: registrations.api,
    ledger: deps.ledger ?? null,
    radius: deps.wifiHost?.radius ?? null,
  });
  const publish = deps.wifiHost?.publishControl;
  const control =
    publish == null || !deps.ledger
      ? null
      : new WifiControl({
          ledger: deps.ledger,
          serviceName: service.name,
          publish,
          ...(deps.wifiHost?.logger === undefined ? {} : { logger: deps.wifiHost.logger }),
        });
  control?.start();
  return {
    backend,
    stop() {
      control?.stop();
      backend.stop();
    },
  };
}

/** Route groups of the OpenAPI document, in the order the UI shows them. */
const TAGS = [
  { name: "chain", description: "Blocks as the gateway's ledger index saw them" },
  { name: "packages", description: "Work packages the gateway submitted" },
  { name: "services", description: "The JAM services the gateway settles on" },
  { name: "devices", description: "Registration (operator token) and registered devices" },
  { name: "ledger", description: "Settlement entries and balances" },
  { name: "energy", description: "The energy market's intervals" },
  { name: "wifi", description: "Wi-Fi billing: accounts, routers and operator actions (writes: operator token)" },
  { name: "proofs", description: "Proofs checked offline by `jamgate verify`" },
  { name: "events", description: "Live updates (Server-Sent Events)" },
  { name: "dashboard", description: "The dashboard's settings" },
  { name: "gateway", description: "Metrics and health" },
];

/**
 * The heartbeat of `/v1/events` under a given idle-socket bound: a third of it, so two heartbeats
 * can be late before the socket is cut, and at most SSE_HEARTBEAT_MS.
 */
export function heartbeatFor(idleSocketTimeoutMs: number): number {
  return idleSocketTimeoutMs > 0 ? Math.max(1, Math.min(SSE_HEARTBEAT_MS, Math.floor(idleSocketTimeoutMs / 3))) : SSE_HEARTBEAT_MS;
}

export function buildHttp(deps: HttpDeps): FastifyInstance {
  const app = Fastify({
    bodyLimit: BODY_BYTES_MAX,
    logger: false,
    // The server is made with serverLimits (header, request, idle and connection bounds) and TLS.
    serverFactory: (handler) =>
      createBoundedServer({
        tls: deps.tls ?? null,
        connectionsMax: deps.limits?.connectionsMax ?? HTTP_CONNECTIONS_MAX,
        listener: handler,
        ...(deps.limits === undefined ? {} : { limits: deps.limits }),
      }),
  });
  const fail = (reply: FastifyReply, code: ErrorCode, detail?: string) => sendError(reply, deps.count, code, detail);
  app.setErrorHandler(codedErrorHandler(deps.count, BODY_BYTES_MAX));
  app.setNotFoundHandler((request, reply) => fail(reply, "JG_ERR_NOT_FOUND", `no route ${request.method} ${request.url.split("?")[0]}`));
  // Security headers: no framework (helmet) for three headers. A response that set its own CSP (the dashboard's) keeps it.
  app.addHook("onSend", async (request, reply, payload) => {
    reply.header("x-content-type-options", "nosniff");
    reply.header("referrer-policy", "no-referrer");
    if (!reply.hasHeader("content-security-policy") && !reply.raw.hasHeader("content-security-policy")) {
      reply.header("content-security-policy", request.url === "/docs" || request.url.startsWith("/docs/") ? DOCS_CSP : API_CSP);
    }
    return payload;
  });
  for (const schema of [...sharedSchemas, ...wifiSchemas]) app.addSchema(schema);

  // The OpenAPI document is built from the routes registered after it (an onRoute hook).
  app.register(fastifySwagger, {
    openapi: {
      openapi: "3.0.3",
      info: {
        title: "jamgate gateway API",
        version: "1",
        description:
          "The settlement ledger of a jamgate gateway: blocks, work packages, devices, settlement entries, energy intervals, balances, proofs and live events. Errors are `{error: {code, message}}` with a code of docs/errors.md.",
      },
      tags: TAGS,
      components: {
        securitySchemes: { operatorToken: { type: "http", scheme: "bearer", description: "The gateway's operator token (<data-dir>/operator-token)" } },
      },
    },
    // Components are named by their $id (BlockView, EntryView, …) rather than def-0, def-1, …
    refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => (typeof json.$id === "string" ? json.$id : `def-${i}`) },
  });
  app.register(fastifySwaggerUi, { routePrefix: "/docs", uiConfig: { validatorUrl: null } as never });

  app.register(async (scope) => {
    const authorized = (header: string | undefined) => tokensMatch(header?.startsWith("Bearer ") ? header.slice(7) : "", deps.operatorToken);
    // A registration refused, whatever refused it (token, body schema, kind, already registered, queue full): its code is the answer's.
    const refusalLines = new LineLimiter();
    const logRefusal = async (request: FastifyRequest, reply: FastifyReply, payload: unknown) => {
      if (deps.logger === undefined || reply.statusCode < 400 || typeof payload !== "string") return payload;
      let error: { code?: unknown; message?: unknown } | undefined;
      try {
        error = (JSON.parse(payload) as { error?: { code?: unknown; message?: unknown } }).error;
      } catch {
        error = undefined;
      }
      const code = typeof error?.code === "string" ? error.code : `HTTP ${reply.statusCode}`;
      const suppressed = refusalLines.take(request.ip, code, Date.now());
      if (suppressed === null) return payload;
      const body = (request.body ?? {}) as { publicKey?: unknown; kind?: unknown };
      const deviceId = typeof body.publicKey === "string" && /^[0-9a-f]{64}$/.test(body.publicKey) ? deviceIdOf(fromHex(body.publicKey)) : undefined;
      deps.logger.warn(
        {
          ...(deviceId === undefined ? {} : { deviceId }),
          ...(typeof body.kind === "string" ? { kind: body.kind.slice(0, 32) } : {}),
          remoteAddress: request.ip,
          code,
          detail: typeof error?.message === "string" ? error.message : undefined,
          ...(suppressed > 0 ? { suppressed } : {}),
        },
        "device registration refused",
      );
      return payload;
    };

    scope.post<{ Body: { publicKey: string; kind: DeviceKind; service?: string; household?: string } }>(
      "/v1/devices",
      {
        schema: {
          tags: ["devices"],
          summary: "Register a device (operator token): a registration work item on the service's ledger",
          security: [{ operatorToken: [] }],
          body: {
            type: "object",
            additionalProperties: false,
            required: ["publicKey", "kind"],
            properties: {
              publicKey: { type: "string", pattern: "^[0-9a-f]{64}$" },
              kind: { type: "string", enum: [...DEVICE_KINDS] },
              service: { type: "string", pattern: "^[a-z][a-z0-9-]{0,31}$" },
              household: { type: "string", pattern: "^[0-9a-f]{32}$" },
            },
          },
          response: {
            202: { ...schemaRef("RegistrationView"), description: "Submitted (or already pending): poll GET /v1/devices/{id}" },
            400: { ...schemaRef("Error"), description: "JG_ERR_HTTP_BODY, JG_ERR_DEVICE_KIND" },
            401: { ...schemaRef("Error"), description: "JG_ERR_OPERATOR_TOKEN" },
            409: { ...schemaRef("Error"), description: "JG_ERR_DEVICE_EXISTS" },
            503: { ...schemaRef("Error"), description: "JG_ERR_QUEUE_FULL" },
          },
        },
        onSend: logRefusal,
      },
      async (request, reply) => {
        if (!authorized(request.headers.authorization)) return fail(reply, "JG_ERR_OPERATOR_TOKEN");
        const { publicKey, kind, service, household } = request.body;
        let result: Awaited<ReturnType<Registrations["register"]>>;
        try {
          result = await deps.registrations.register(fromHex(publicKey), kind, {
            ...(service === undefined ? {} : { service }),
            ...(household === undefined ? {} : { household }),
          });
        } catch (e) {
          if (e instanceof RegistrationError) return fail(reply, e.code, e.message);
          throw e;
        }
        if ("exists" in result) {
          if (result.exists.status === "registered") return fail(reply, "JG_ERR_DEVICE_EXISTS", `device ${result.exists.deviceId} is already registered`);
          return reply.code(202).send(result.exists);
        }
        return reply.code(202).send(result);
      },
    );

    // Registering a fleet: many rows a request, followed as a batch (registration.ts registerMany; docs/protocol.md, "Registering a fleet").
    const bulkRowErrorSchema = {
      type: "object",
      required: ["error"],
      properties: {
        error: {
          type: "object",
          required: ["code", "message"],
          properties: {
            code: { type: "string", pattern: "^JG_ERR_[A-Z0-9_]+$" },
            message: { type: "string" },
            rows: {
              type: "array",
              description: `JG_ERR_DEVICE_ROWS: the bad rows (at most ${BULK_PROBLEMS_LISTED_MAX}), by index in \`devices\``,
              items: {
                type: "object",
                required: ["index", "code", "message"],
                properties: { index: { type: "integer" }, code: { type: "string" }, message: { type: "string" } },
              },
            },
            rowsRefused: { type: "integer", description: "JG_ERR_DEVICE_ROWS: how many rows were bad" },
          },
        },
      },
    } as const;
    scope.post<{ Body: { devices: unknown[] } }>(
      "/v1/devices/bulk",
      {
        bodyLimit: BULK_BODY_BYTES_MAX,
        errorHandler: codedErrorHandler(deps.count, BULK_BODY_BYTES_MAX),
        schema: {
          tags: ["devices"],
          summary: `Register up to ${BULK_REGISTRATIONS_MAX} devices (operator token): every row checked first, then packed into registration work items; follow the batch at GET /v1/devices/bulk/{batch}`,
          description:
            "Each row is `{publicKey, kind, service?, household?, deviceId?}` (devices/protocol/registration-rows.ts; a `deviceId` is checked against its key). One bad row refuses the request: JG_ERR_DEVICE_ROWS lists the bad rows and nothing is registered. A device already registered or pending is no bad row; the batch counts it.",
          security: [{ operatorToken: [] }],
          body: {
            type: "object",
            additionalProperties: false,
            required: ["devices"],
            properties: {
              devices: {
                type: "array",
                minItems: 1,
                maxItems: BULK_REGISTRATIONS_MAX,
                // Rows are checked by the route, all of them, so the answer lists every bad one (a schema stops at the first).
                items: {},
              },
            },
          },
          response: {
            202: {
              description: "Queued (nothing is submitted yet): poll GET /v1/devices/bulk/{batch}",
              type: "object",
              required: ["batch", "rows", "queued", "alreadyRegistered", "alreadyPending"],
              properties: {
                batch: { type: "string", pattern: ID_PATTERN },
                rows: { type: "integer" },
                queued: { type: "integer" },
                alreadyRegistered: { type: "integer" },
                alreadyPending: { type: "integer" },
              },
            },
            400: { ...bulkRowErrorSchema, description: "JG_ERR_DEVICE_ROWS (with the bad rows), JG_ERR_HTTP_BODY" },
            401: { ...schemaRef("Error"), description: "JG_ERR_OPERATOR_TOKEN" },
            503: { ...schemaRef("Error"), description: "JG_ERR_QUEUE_FULL: more than REGISTRATIONS_IN_FLIGHT_MAX would be in flight; nothing was queued" },
          },
        },
        onSend: logRefusal,
      },
      async (request, reply) => {
        if (!authorized(request.headers.authorization)) return fail(reply, "JG_ERR_OPERATOR_TOKEN");
        try {
          return reply.code(202).send(await deps.registrations.registerMany(request.body.devices));
        } catch (e) {
          if (e instanceof RegistrationError) return fail(reply, e.code, e.message);
          if (e instanceof BulkRowsError) {
            deps.count(e.code);
            return reply.code(errorRegistry[e.code].httpStatus).send({ error: { code: e.code, message: e.message, rows: e.rows, rowsRefused: e.count } });
          }
          throw e;
        }
      },
    );

    scope.get<{ Params: { batch: string } }>(
      "/v1/devices/bulk/:batch",
      {
        schema: {
          tags: ["devices"],
          summary:
            "A bulk registration's progress: its rows registered, pending and failed, and the failures (no token, as GET /v1/devices/{id}: nothing secret, and a batch id is 128 random bits)",
          params: { type: "object", required: ["batch"], properties: { batch: { type: "string", pattern: ID_PATTERN } } },
          response: {
            200: {
              type: "object",
              required: ["batch", "rows", "registered", "alreadyRegistered", "pending", "failed", "packages", "failures", "startedAtMs", "finishedAtMs"],
              properties: {
                batch: { type: "string" },
                rows: { type: "integer" },
                registered: { type: "integer" },
                alreadyRegistered: { type: "integer" },
                pending: { type: "integer" },
                failed: { type: "integer" },
                packages: { type: "array", items: { type: "string" }, description: "hashes of the packages that carried its rows so far" },
                failures: {
                  type: "array",
                  description: `the first ${BULK_PROBLEMS_LISTED_MAX} failed registrations`,
                  items: {
                    type: "object",
                    required: ["deviceId", "code", "detail"],
                    properties: { deviceId: { type: "string" }, code: { type: "string" }, detail: { type: "string" } },
                  },
                },
                startedAtMs: { type: "integer" },
                finishedAtMs: { type: "integer", nullable: true },
              },
            },
            400: { ...schemaRef("Error"), description: "JG_ERR_HTTP_QUERY" },
            404: {
              ...schemaRef("Error"),
              description: "JG_ERR_NOT_FOUND: no such batch, or forgotten (the gateway keeps the last 64, and none over a restart): give its rows again",
            },
          },
        },
      },
      async (request, reply) => {
        const status = deps.registrations.bulkStatus(request.params.batch);
        if (status === null)
          return fail(
            reply,
            "JG_ERR_NOT_FOUND",
            `no bulk registration ${request.params.batch} (the gateway keeps the last ${BULK_BATCHES_KEPT_MAX}, none over a restart)`,
          );
        return status;
      },
    );

    scope.get<{ Params: { id: string } }>(
      "/v1/devices/:id",
      {
        schema: {
          tags: ["devices"],
          summary: "A device: its registration's status and, once the ledger index knows it, its settlement fields",
          params: { type: "object", required: ["id"], properties: { id: { type: "string", pattern: ID_PATTERN.replace("[0-9a-f]", "[0-9a-fA-F]") } } },
          response: {
            200: schemaRef("DeviceStatus"),
            400: { ...schemaRef("Error"), description: "JG_ERR_HTTP_QUERY" },
            403: { ...schemaRef("Error"), description: "JG_ERR_DEVICE_UNREGISTERED: the gateway does not know the id" },
          },
        },
      },
      async (request, reply) => {
        const id = tryAsDeviceId(request.params.id.toLowerCase());
        if (id === null) return fail(reply, "JG_ERR_HTTP_QUERY", "not a device id");
        const [view, device] = await Promise.all([deps.registrations.view(id), deps.ledger ? deps.ledger.device(id) : null]);
        if (view === null && device === null) return fail(reply, "JG_ERR_DEVICE_UNREGISTERED");
        // The registration's status wins where both speak (a re-registration pending); the index fills in the rest.
        return { ...(device ?? {}), ...(view ?? { deviceId: id, kind: device!.kind, service: device!.service, status: "registered" }) };
      },
    );

    scope.get(
      "/metrics",
      {
        schema: {
          tags: ["gateway"],
          summary: "Prometheus metrics",
          response: { 200: { description: "Prometheus text format", content: { "text/plain": { schema: { type: "string" } } } } },
        },
      },
      async (_request, reply) => {
        reply.header("content-type", deps.metrics.registry.contentType);
        return deps.metrics.registry.metrics();
      },
    );

    scope.get(
      "/healthz",
      { schema: { tags: ["gateway"], summary: "Liveness", response: { 200: { type: "object", required: ["ok"], properties: { ok: { type: "boolean" } } } } } },
      async () => ({ ok: true }),
    );
  });

  if (deps.ledger) {
    const idleMs = deps.limits?.idleSocketTimeoutMs ?? serverLimits.idleSocketTimeoutMs;
    app.register(ledgerRoutes, {
      reader: deps.ledger,
      prover: deps.prover ?? null,
      count: deps.count,
      events: { heartbeatMs: heartbeatFor(idleMs), ...deps.events },
    });
  }
  const made = deps.wifi === undefined ? wifiOf(deps) : null;
  if (made !== null) app.addHook("onClose", async () => made.stop());
  const wifi = deps.wifi ?? made?.backend ?? null;
  if (wifi !== null) app.register(wifiRoutes, { backend: wifi, operatorToken: deps.operatorToken, count: deps.count });
  const dashboard = deps.dashboard;
  if (dashboard) app.register(async (scope) => dashboard(scope));
  return app;
}
