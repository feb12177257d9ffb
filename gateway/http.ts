/**
 * The gateway's HTTP API (fastify): device registration for operators, registration status,
 * Prometheus metrics, health. Bodies are validated by JSON schema (fastify's ajv); every error
 * answers `{error: {code, message}}` with the registry's HTTP status.
 */
import Fastify, { type FastifyInstance, type FastifyReply } from "fastify";
import { createBoundedServer, type ServerLimits, type TlsMaterial, tokensMatch } from "../node/net/servers.ts";
import { fromHex, tryAsDeviceId } from "../devices/envelope.ts";
import { errorRegistry, type ErrorCode } from "../node/errors.ts";
import { DEVICE_KINDS, type DeviceKind } from "./ingest-service.ts";
import type { GatewayMetrics } from "./metrics.ts";
import { RegistrationError, type Registrations } from "./registration.ts";

/** Largest request body: a registration is ~100 bytes of JSON. */
const BODY_BYTES_MAX = 16 * 1024;
/** Sockets the HTTP API holds at once (operators, scrapers, dashboards); past it new ones are closed on accept. */
export const HTTP_CONNECTIONS_MAX = 1_024;

export interface HttpDeps {
  readonly operatorToken: string;
  readonly registrations: Registrations;
  readonly metrics: GatewayMetrics;
  readonly count: (code: ErrorCode) => void;
  /** Serve HTTPS with this certificate; null or absent: HTTP. */
  readonly tls?: TlsMaterial | null;
  /** Overrides of serverLimits and of HTTP_CONNECTIONS_MAX (tests). */
  readonly limits?: Partial<ServerLimits> & { readonly connectionsMax?: number };
}

function fail(reply: FastifyReply, deps: HttpDeps, code: ErrorCode, detail?: string) {
  deps.count(code);
  return reply.code(errorRegistry[code].httpStatus).send({ error: { code, message: detail ?? errorRegistry[code].message } });
}

export function buildHttp(deps: HttpDeps): FastifyInstance {
  const app = Fastify({
    bodyLimit: BODY_BYTES_MAX,
    logger: false,
    // The server is made with serverLimits (header, request, idle and connection bounds) and TLS.
    serverFactory: (handler) => createBoundedServer({ tls: deps.tls ?? null, connectionsMax: deps.limits?.connectionsMax ?? HTTP_CONNECTIONS_MAX, listener: handler, ...(deps.limits === undefined ? {} : { limits: deps.limits }) }),
  });
  app.setErrorHandler((raw, _request, reply) => {
    const error = raw as { validation?: unknown; statusCode?: number; message: string };
    if (error.validation !== undefined || error.statusCode === 400 || error.statusCode === 415) return fail(reply, deps, "JG_ERR_HTTP_BODY", error.message);
    if (error.statusCode === 413) return fail(reply, deps, "JG_ERR_HTTP_BODY", `body over ${BODY_BYTES_MAX} bytes`);
    return reply.code(500).send({ error: { code: "JG_ERR_RPC_INTERNAL", message: error.message } });
  });

  const authorized = (header: string | undefined) => tokensMatch(header?.startsWith("Bearer ") ? header.slice(7) : "", deps.operatorToken);

  app.post<{ Body: { publicKey: string; kind: DeviceKind; service?: string; household?: string } }>(
    "/v1/devices",
    {
      schema: {
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
      },
    },
    async (request, reply) => {
      if (!authorized(request.headers.authorization)) return fail(reply, deps, "JG_ERR_OPERATOR_TOKEN");
      const { publicKey, kind, service, household } = request.body;
      let result;
      try {
        result = await deps.registrations.register(fromHex(publicKey), kind, { ...(service === undefined ? {} : { service }), ...(household === undefined ? {} : { household }) });
      } catch (e) {
        if (e instanceof RegistrationError) return fail(reply, deps, e.code, e.message);
        throw e;
      }
      if ("exists" in result) {
        if (result.exists.status === "registered") return fail(reply, deps, "JG_ERR_DEVICE_EXISTS", `device ${result.exists.deviceId} is already registered`);
        return reply.code(202).send(result.exists);
      }
      return reply.code(202).send(result);
    },
  );

  app.get<{ Params: { id: string } }>("/v1/devices/:id", async (request, reply) => {
    const id = tryAsDeviceId(request.params.id);
    if (id === null) return fail(reply, deps, "JG_ERR_HTTP_BODY", "not a device id");
    const view = await deps.registrations.view(id);
    if (view === null) return fail(reply, deps, "JG_ERR_DEVICE_UNREGISTERED");
    return view;
  });

  app.get("/metrics", async (_request, reply) => {
    reply.header("content-type", deps.metrics.registry.contentType);
    return deps.metrics.registry.metrics();
  });

  app.get("/healthz", async () => ({ ok: true }));
  return app;
}
