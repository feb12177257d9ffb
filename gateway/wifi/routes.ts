/**
 * The Wi-Fi billing routes (`/v1/wifi/*`; docs/wifi.md): accounts and routers
 * registered on the wifi-billing service, their state and the service's counters read back from it, and the operator's
 * actions on them (top-ups, price changes, deregistrations), each a work item on the service's
 * ledger (actions.ts). A fastify plugin over a WifiBackend (backend.ts), with body, params and
 * response schemas published in the OpenAPI document beside the ledger's.
 *
 * Writes take the operator token (401 JG_ERR_OPERATOR_TOKEN before the body is looked at), as
 * `POST /v1/devices` does; reads are open, as the ledger's are. Money crosses as decimal strings
 * of integer micro-units (a JSON integer is taken too, when exact: below 2^53). A body of the
 * wrong shape is 400 JG_ERR_HTTP_BODY; an amount, price, stake or capacity of zero, below zero
 * or past its maximum 400 JG_ERR_WIFI_AMOUNT; an unknown account or router 404
 * JG_ERR_WIFI_ACCOUNT / JG_ERR_WIFI_ROUTER. Every refusal is counted and changes nothing.
 */
import { Ajv } from "ajv";
import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from "fastify";
import { fromHex } from "../../devices/envelope.ts";
import { type ErrorCode, JamgateError } from "../../devices/protocol/errors.ts";
import { tokensMatch } from "../../node/net/servers.ts";
import { codedErrorHandler } from "../ledger/routes.ts";
import { DECIMAL_PATTERN, ID_PATTERN, schemaRef, sharedSchemas } from "../ledger/schemas.ts";
import { LIST_LIMIT_MAX } from "../ledger/types.ts";
import { RegistrationError } from "../registration.ts";
import {
  ACTION_KINDS,
  ACTION_STATUSES,
  type ActionView,
  type RouterRequest,
  ROUTER_NAME_BYTES_MAX,
  ROUTER_STATUSES,
  type WifiAccountView,
  type WifiBackend,
  type WifiRouterView,
  type WifiStatsView,
} from "./backend.ts";

/** A page of routers when the request names none. */
export const ROUTERS_LIMIT_DEFAULT = 50;
/** Digits of an amount in a body: u64's 20 and a sign; more is not an amount of any kind (JG_ERR_HTTP_BODY). */
const AMOUNT_DIGITS_MAX = 40;

const id = { type: "string", pattern: ID_PATTERN } as const;
const idInput = { type: "string", pattern: ID_PATTERN.replace("[0-9a-f]", "[0-9a-fA-F]") } as const;
const decimal = { type: "string", pattern: DECIMAL_PATTERN } as const;
const publicKey = { type: "string", pattern: "^[0-9a-fA-F]{64}$", description: "Ed25519 public key, 64 hex digits." } as const;
/** An amount as the body gives it: a decimal string (any sign, checked by the handler for JG_ERR_WIFI_AMOUNT) or a JSON integer. */
const amountInput = (description: string) => ({ anyOf: [{ type: "string", pattern: `^-?[0-9]{1,${AMOUNT_DIGITS_MAX}}$` }, { type: "integer" }], description });

export const wifiAccountViewSchema = {
  $id: "WifiAccountView",
  type: "object",
  description: "A wifi-billing account (a client, or a router's owner) at the best block.",
  required: ["account", "balanceMicros", "lockedMicros", "registered"],
  properties: {
    account: id,
    balanceMicros: { ...decimal, description: "Spendable micro-units." },
    lockedMicros: { ...decimal, description: "Micro-units locked as its routers' stakes." },
    registered: { type: "boolean", description: "On the service's state; false while its registration is pending." },
    slot: { type: "integer", minimum: 0, description: "The block read." },
  },
} as const;

export const wifiRouterViewSchema = {
  $id: "WifiRouterView",
  type: "object",
  description: "A router on the wifi-billing service, at the best block.",
  required: ["router", "owner", "name", "priceMicrosPerGb", "stakeMicros", "capacityBitsPerSecond", "attested", "status", "usage"],
  properties: {
    router: id,
    owner: id,
    name: { type: "string" },
    priceMicrosPerGb: { ...decimal, description: "Micro-units per 10^9 octets, for sessions started from now." },
    stakeMicros: decimal,
    capacityBitsPerSecond: decimal,
    attested: { type: "boolean", description: "The owner takes router-attested (RADIUS) usage as billable; its stake stands behind it." },
    status: { type: "string", enum: [...ROUTER_STATUSES] },
    registeredSlot: { type: ["integer", "null"], minimum: 0 },
    deregisteredSlot: { type: ["integer", "null"], minimum: 0 },
    stakeReturnSlot: { type: ["integer", "null"], minimum: 0, description: "When the stake goes back to the owner (deregistered routers)." },
    usage: {
      type: "object",
      description:
        "Totals the service keeps: sessions, octets (input + output) billed, what clients paid (fees included), what the owner got, router-attested octets disputed.",
      required: ["sessionsStarted", "openSessions", "billedOctets", "billedMicros", "earnedMicros", "disputedOctets"],
      properties: {
        sessionsStarted: decimal,
        openSessions: { type: "integer", minimum: 0 },
        billedOctets: decimal,
        billedMicros: decimal,
        earnedMicros: decimal,
        disputedOctets: decimal,
      },
    },
    slot: { type: "integer", minimum: 0 },
    code: { type: "string", description: "Why its registration failed (a JG_ERR_ code)." },
    detail: { type: "string" },
  },
} as const;

export const wifiActionViewSchema = {
  $id: "WifiActionView",
  type: "object",
  description: "An operator action: pending until the package carrying it is accumulated, then applied or refused (with the service's code).",
  required: ["action", "kind", "status"],
  properties: {
    action: id,
    kind: { type: "string", enum: [...ACTION_KINDS] },
    status: { type: "string", enum: [...ACTION_STATUSES] },
    packageHash: { type: "string", pattern: "^[0-9a-f]{64}$" },
    slot: { type: "integer", minimum: 0, description: "The block that accumulated it." },
    code: { type: "string" },
    detail: { type: "string" },
  },
} as const;

export const wifiStatsViewSchema = {
  $id: "WifiStatsView",
  type: "object",
  description: "The wifi-billing service's counters since it started, at the best block (counters, octets and micro-units as decimal strings).",
  required: [
    "slot",
    "sessionsStarted",
    "sessionsStopped",
    "billedOctets",
    "billedMicros",
    "feesMicros",
    "disputedOctets",
    "exhaustedUpdates",
    "envelopesRejected",
    "refusedByCode",
  ],
  properties: {
    slot: { type: "integer", minimum: 0, description: "The block read." },
    sessionsStarted: decimal,
    sessionsStopped: { ...decimal, description: "Sessions ended by their router's Stop update." },
    billedOctets: { ...decimal, description: "Octets (input + output) billed to clients." },
    billedMicros: { ...decimal, description: "What clients paid for them, fees included." },
    feesMicros: { ...decimal, description: "The protocol's fees collected." },
    disputedOctets: { ...decimal, description: "Router-attested octets of routers without attested billing: written as disputed, not billed." },
    exhaustedUpdates: { ...decimal, description: "Usage updates a client's balance could not pay in full (a balance-exhausted entry each)." },
    envelopesRejected: { ...decimal, description: "Envelopes refused (in refine or accumulate)." },
    refusedByCode: {
      type: "object",
      description: "Every refusal (envelopes, registrations, operator actions) by its code (docs/errors.md); codes never refused are left out.",
      propertyNames: { pattern: "^JG_ERR_[A-Z0-9_]+$" },
      additionalProperties: decimal,
    },
  },
} as const;

/** The Wi-Fi views' schemas, added beside the ledger's (ledger/schemas.ts sharedSchemas). */
export const wifiSchemas = [wifiAccountViewSchema, wifiRouterViewSchema, wifiActionViewSchema, wifiStatsViewSchema] as const;

const errors = (described: Record<number, string>) =>
  Object.fromEntries(Object.entries(described).map(([status, codes]) => [status, { ...schemaRef("Error"), description: codes }]));

export interface WifiRoutesOptions {
  readonly backend: WifiBackend;
  readonly operatorToken: string;
  readonly count: (code: ErrorCode) => void;
}

/** Body and path validation: nothing coerced in a body (a number is not a string), nothing unknown dropped silently. */
function validators(): { body: Ajv; other: Ajv } {
  return {
    body: new Ajv({ coerceTypes: false, useDefaults: true, removeAdditional: false, allErrors: false, strict: false }),
    other: new Ajv({ coerceTypes: true, useDefaults: true, removeAdditional: false, allErrors: false, strict: false }),
  };
}

const amountRefused = (detail: string) => new JamgateError("JG_ERR_WIFI_AMOUNT", detail);

/**
 * An amount of the body as a bigint in 1..max: a decimal string or an exact JSON integer; zero,
 * below zero or past `max` is JG_ERR_WIFI_AMOUNT, an inexact number JG_ERR_HTTP_BODY.
 */
export function amountOf(value: string | number, name: string, max: bigint): bigint {
  if (typeof value === "number" && !Number.isSafeInteger(value))
    throw new JamgateError("JG_ERR_HTTP_BODY", `${name}: ${value} is past 2^53 as a JSON number; give it as a decimal string`);
  const amount = BigInt(value);
  if (amount <= 0n) throw amountRefused(`${name}: ${amount} is not above zero`);
  if (amount > max) throw amountRefused(`${name}: ${amount} is past its maximum ${max}`);
  return amount;
}

const lower = (hex: string) => hex.toLowerCase();

/** The plugin: `app.register(wifiRoutes, { backend, operatorToken, count })`. */
export const wifiRoutes: FastifyPluginAsync<WifiRoutesOptions> = async (app: FastifyInstance, options) => {
  const { backend, count } = options;
  const ajv = validators();
  app.setValidatorCompiler(({ schema, httpPart }) => (httpPart === "body" ? ajv.body : ajv.other).compile(schema));
  app.setErrorHandler(codedErrorHandler(count));
  for (const schema of [...sharedSchemas, ...wifiSchemas]) if (app.getSchema(schema.$id) === undefined) app.addSchema(schema);
  const limits = backend.limits;

  /** Writes: the operator token, checked before the body (an unauthenticated caller learns nothing of the body's rules). */
  const operator = async (request: FastifyRequest, _reply: FastifyReply) => {
    const header = request.headers.authorization;
    if (!tokensMatch(header?.startsWith("Bearer ") ? header.slice(7) : "", options.operatorToken)) throw new JamgateError("JG_ERR_OPERATOR_TOKEN");
  };
  const asRegistrationRefusal = (e: unknown): never => {
    if (e instanceof RegistrationError) throw new JamgateError(e.code, e.message);
    throw e;
  };
  const writeSecurity = [{ operatorToken: [] }];

  // ---- accounts
  app.post<{ Body: { publicKey: string } }>(
    "/v1/wifi/accounts",
    {
      preValidation: operator,
      schema: {
        tags: ["wifi"],
        summary: "Register an account (operator token): a client, or a router's owner, as a device of kind client on wifi-billing",
        security: writeSecurity,
        body: { type: "object", additionalProperties: false, required: ["publicKey"], properties: { publicKey } },
        response: {
          202: {
            type: "object",
            required: ["account", "status"],
            properties: {
              account: id,
              status: { type: "string", enum: ["pending", "registered", "failed"] },
              packageHash: { type: "string" },
              code: { type: "string" },
              detail: { type: "string" },
            },
            description: "Submitted (or already pending or registered): poll GET /v1/wifi/accounts/{id}",
          },
          ...errors({ 400: "JG_ERR_HTTP_BODY", 401: "JG_ERR_OPERATOR_TOKEN", 503: "JG_ERR_QUEUE_FULL" }),
        },
      },
    },
    async (request, reply) => {
      const view = await backend.registerAccount(fromHex(lower(request.body.publicKey))).catch(asRegistrationRefusal);
      return reply.code(202).send({ account: view.deviceId, status: view.status, ...pick(view, ["packageHash", "code", "detail"]) });
    },
  );

  app.get<{ Params: { id: string } }>(
    "/v1/wifi/accounts/:id",
    {
      schema: {
        tags: ["wifi"],
        summary: "An account's balance and locked stake at the best block",
        params: { type: "object", additionalProperties: false, required: ["id"], properties: { id: idInput } },
        response: {
          200: schemaRef("WifiAccountView"),
          ...errors({ 400: "JG_ERR_HTTP_QUERY", 404: "JG_ERR_WIFI_ACCOUNT: neither on the service nor pending" }),
        },
      },
    },
    async (request) => {
      const account = await backend.account(lower(request.params.id));
      if (account === null) throw new JamgateError("JG_ERR_WIFI_ACCOUNT", `no account ${lower(request.params.id)} on wifi-billing`);
      return account satisfies WifiAccountView;
    },
  );

  // ---- routers
  app.post<{
    Body: {
      publicKey?: string;
      owner: string;
      name: string;
      priceMicrosPerGb: string | number;
      stakeMicros: string | number;
      capacityBitsPerSecond?: string | number;
      attested?: boolean;
      radius?: boolean;
    };
  }>(
    "/v1/wifi/routers",
    {
      preValidation: operator,
      schema: {
        tags: ["wifi"],
        summary: "Onboard a router (operator token): registered on wifi-billing with its owner, price and stake (locked from the owner's balance)",
        description:
          "With `radius: true` and no `publicKey`, the gateway makes the router's key and a RADIUS shared secret and keeps both in `<data-dir>/radius/<router>.json` (0600): its RADIUS accounting is signed with that key. The answer carries the secret once.",
        security: writeSecurity,
        body: {
          type: "object",
          additionalProperties: false,
          required: ["owner", "name", "priceMicrosPerGb", "stakeMicros"],
          properties: {
            publicKey,
            owner: { ...idInput, description: "The owner's account id." },
            name: { type: "string", minLength: 1, maxLength: ROUTER_NAME_BYTES_MAX, description: `UTF-8, at most ${ROUTER_NAME_BYTES_MAX} bytes.` },
            priceMicrosPerGb: amountInput(`Micro-units per 10^9 octets, 1..${limits.priceMicrosPerGbMax}.`),
            stakeMicros: amountInput(`Locked from the owner's balance, 1..${limits.stakeMicrosMax}.`),
            capacityBitsPerSecond: amountInput(`The link's capacity, 1..${limits.capacityBitsPerSecondMax} (default ${limits.capacityBitsPerSecondDefault}).`),
            attested: { type: "boolean", default: false, description: "Bill router-attested usage (no client voucher), backed by the stake." },
            radius: { type: "boolean", default: false, description: "The router speaks RADIUS accounting: the gateway holds its key and shared secret." },
          },
        },
        response: {
          202: {
            type: "object",
            required: ["router", "status"],
            properties: {
              router: id,
              status: { type: "string", enum: ["pending", "registered", "failed"] },
              packageHash: { type: "string" },
              code: { type: "string" },
              detail: { type: "string" },
              radius: { type: "object", required: ["sharedSecret"], properties: { sharedSecret: { type: "string" } } },
            },
          },
          ...errors({
            400: "JG_ERR_HTTP_BODY, JG_ERR_WIFI_AMOUNT",
            401: "JG_ERR_OPERATOR_TOKEN",
            402: "JG_ERR_WIFI_STAKE: the owner's balance is below the stake",
            404: "JG_ERR_WIFI_ACCOUNT: the owner is not on the service",
            409: "JG_ERR_DEVICE_EXISTS",
            503: "JG_ERR_QUEUE_FULL",
          }),
        },
      },
    },
    async (request, reply) => {
      const b = request.body;
      if (new TextEncoder().encode(b.name).length > ROUTER_NAME_BYTES_MAX)
        throw new JamgateError("JG_ERR_HTTP_BODY", `name: more than ${ROUTER_NAME_BYTES_MAX} bytes of UTF-8`);
      if (b.radius === true && b.publicKey !== undefined)
        throw new JamgateError("JG_ERR_HTTP_BODY", "radius: the gateway signs a RADIUS router's usage with a key it makes and holds; give no publicKey");
      if (b.radius !== true && b.publicKey === undefined)
        throw new JamgateError("JG_ERR_HTTP_BODY", "publicKey: required unless radius is true (then the gateway makes the router's key)");
      const req: RouterRequest = {
        publicKey: b.publicKey === undefined ? null : fromHex(lower(b.publicKey)),
        owner: lower(b.owner),
        name: b.name,
        priceMicrosPerGb: amountOf(b.priceMicrosPerGb, "priceMicrosPerGb", limits.priceMicrosPerGbMax),
        stakeMicros: amountOf(b.stakeMicros, "stakeMicros", limits.stakeMicrosMax),
        capacityBitsPerSecond:
          b.capacityBitsPerSecond === undefined
            ? limits.capacityBitsPerSecondDefault
            : amountOf(b.capacityBitsPerSecond, "capacityBitsPerSecond", limits.capacityBitsPerSecondMax),
        attested: b.attested === true,
        radius: b.radius === true,
      };
      const result = await backend.registerRouter(req).catch(asRegistrationRefusal);
      const v = result.view;
      return reply.code(202).send({
        router: v.deviceId,
        status: v.status,
        ...pick(v, ["packageHash", "code", "detail"]),
        ...(result.radius === undefined ? {} : { radius: result.radius }),
      });
    },
  );

  app.get<{ Querystring: { after?: string; limit: number } }>(
    "/v1/wifi/routers",
    {
      schema: {
        tags: ["wifi"],
        summary: "Routers onboarded through this gateway, by id, with their state at the best block",
        querystring: {
          type: "object",
          additionalProperties: false,
          properties: {
            after: { ...idInput, description: "A router id (exclusive): a page's `next`." },
            limit: { type: "integer", minimum: 1, maximum: LIST_LIMIT_MAX, default: ROUTERS_LIMIT_DEFAULT },
          },
        },
        response: {
          200: {
            type: "object",
            required: ["items", "next"],
            properties: { items: { type: "array", items: schemaRef("WifiRouterView") }, next: { type: ["string", "null"], pattern: ID_PATTERN } },
          },
          ...errors({ 400: "JG_ERR_HTTP_QUERY" }),
        },
      },
    },
    async (request) => backend.routers({ ...(request.query.after === undefined ? {} : { after: lower(request.query.after) }), limit: request.query.limit }),
  );

  app.get<{ Params: { id: string } }>(
    "/v1/wifi/routers/:id",
    {
      schema: {
        tags: ["wifi"],
        summary: "A router: owner, price, stake, capacity, attested, status, name and usage totals",
        params: { type: "object", additionalProperties: false, required: ["id"], properties: { id: idInput } },
        response: { 200: schemaRef("WifiRouterView"), ...errors({ 400: "JG_ERR_HTTP_QUERY", 404: "JG_ERR_WIFI_ROUTER" }) },
      },
    },
    async (request) => {
      const router = await backend.router(lower(request.params.id));
      if (router === null) throw new JamgateError("JG_ERR_WIFI_ROUTER", `no router ${lower(request.params.id)} on wifi-billing`);
      return router satisfies WifiRouterView;
    },
  );

  // ---- the service's counters
  app.get(
    "/v1/wifi/stats",
    {
      schema: {
        tags: ["wifi"],
        summary: "The service's counters at the best block: sessions, octets and money billed, fees, disputed octets, exhausted balances, refusals by code",
        response: { 200: schemaRef("WifiStatsView") },
      },
    },
    async () => (await backend.stats()) satisfies WifiStatsView,
  );

  const actionResponse = (refusals: Record<number, string>) => ({
    202: { ...schemaRef("WifiActionView"), description: "Submitted: poll GET /v1/wifi/actions/{id}" },
    ...errors({ 401: "JG_ERR_OPERATOR_TOKEN", 503: "JG_ERR_QUEUE_FULL", ...refusals }),
  });

  app.post<{ Params: { id: string }; Body: { priceMicrosPerGb: string | number } }>(
    "/v1/wifi/routers/:id/price",
    {
      preValidation: operator,
      schema: {
        tags: ["wifi"],
        summary: "Change a router's price (operator token): sessions started after it is applied pay it; open ones keep theirs",
        security: writeSecurity,
        params: { type: "object", additionalProperties: false, required: ["id"], properties: { id: idInput } },
        body: {
          type: "object",
          additionalProperties: false,
          required: ["priceMicrosPerGb"],
          properties: { priceMicrosPerGb: amountInput(`1..${limits.priceMicrosPerGbMax}`) },
        },
        response: actionResponse({ 400: "JG_ERR_HTTP_BODY, JG_ERR_WIFI_AMOUNT", 404: "JG_ERR_WIFI_ROUTER" }),
      },
    },
    async (request, reply) => {
      const price = amountOf(request.body.priceMicrosPerGb, "priceMicrosPerGb", limits.priceMicrosPerGbMax);
      return reply.code(202).send(await backend.setPrice(lower(request.params.id), price));
    },
  );

  app.delete<{ Params: { id: string } }>(
    "/v1/wifi/routers/:id",
    {
      preValidation: operator,
      schema: {
        tags: ["wifi"],
        summary: "Deregister a router (operator token): its usage is refused from then on; its stake returns to the owner after the cool-down",
        security: writeSecurity,
        params: { type: "object", additionalProperties: false, required: ["id"], properties: { id: idInput } },
        response: actionResponse({ 400: "JG_ERR_HTTP_QUERY", 404: "JG_ERR_WIFI_ROUTER" }),
      },
    },
    async (request, reply) => reply.code(202).send(await backend.deregister(lower(request.params.id))),
  );

  // ---- top-ups and actions
  app.post<{ Body: { account: string; amountMicros: string | number } }>(
    "/v1/wifi/topups",
    {
      preValidation: operator,
      schema: {
        tags: ["wifi"],
        summary: "Top up an account's prepaid balance (operator token)",
        security: writeSecurity,
        body: {
          type: "object",
          additionalProperties: false,
          required: ["account", "amountMicros"],
          properties: { account: idInput, amountMicros: amountInput(`1..${limits.topupMicrosMax}`) },
        },
        response: actionResponse({ 400: "JG_ERR_HTTP_BODY, JG_ERR_WIFI_AMOUNT", 404: "JG_ERR_WIFI_ACCOUNT" }),
      },
    },
    async (request, reply) => {
      const amount = amountOf(request.body.amountMicros, "amountMicros", limits.topupMicrosMax);
      return reply.code(202).send(await backend.topup(lower(request.body.account), amount));
    },
  );

  app.get<{ Params: { id: string } }>(
    "/v1/wifi/actions/:id",
    {
      schema: {
        tags: ["wifi"],
        summary: "An operator action's status: pending, applied, or refused with the service's code",
        params: { type: "object", additionalProperties: false, required: ["id"], properties: { id: idInput } },
        response: {
          200: schemaRef("WifiActionView"),
          ...errors({ 400: "JG_ERR_HTTP_QUERY", 404: "JG_ERR_NOT_FOUND: neither pending here nor on the service" }),
        },
      },
    },
    async (request) => {
      const view = await backend.action(lower(request.params.id));
      if (view === null) throw new JamgateError("JG_ERR_NOT_FOUND", `no action ${lower(request.params.id)}`);
      return view satisfies ActionView;
    },
  );
};

function pick<T extends object, K extends keyof T>(o: T, keys: readonly K[]): Partial<Pick<T, K>> {
  const out: Partial<Pick<T, K>> = {};
  for (const k of keys) if (o[k] !== undefined) out[k] = o[k];
  return out;
}
