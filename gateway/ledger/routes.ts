/**
 * The ledger's read routes (listed in gateway/README.md): a fastify plugin answering
 * from a LedgerReader (the index kept off the node's critical path) and, for proofs, from a
 * ProofSource (prover.ts). Every route declares its querystring, params and response schemas:
 * requests are checked by them, responses serialized by them (fast-json-stringify), and
 * @fastify/swagger publishes them at `/docs/json`.
 *
 * Any query or path parameter the schema does not take (unknown, repeated, malformed, out of
 * range) is answered 400 JG_ERR_HTTP_QUERY, unknown ids 404 JG_ERR_NOT_FOUND, and each refusal
 * is counted; a reader's failure is the only 500.
 */
import { Ajv } from "ajv";
import type { FastifyError, FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from "fastify";
import { type ErrorCode, errorRegistry, JamgateError } from "../../devices/protocol/errors.ts";
import { type EventStreamOptions, registerEventStream } from "./events.ts";
import { pageSchema, schemaRef, sharedSchemas, HASH_PATTERN, ID_PATTERN, SERVICE_NAME_PATTERN } from "./schemas.ts";
import { type EntryFilter, type Hex, type LedgerReader, LIST_LIMIT_MAX, PACKAGE_STATUSES, type PackageStatusName } from "./types.ts";
import { DEVICE_KINDS } from "../../devices/protocol/device-kinds.ts";

/** A page's size when the request names none. */
export const LIST_LIMIT_DEFAULT = 50;
/** Largest slot, interval or other u32 the chain counts in (GP: time slots are u32). */
const U32_MAX = 0xffff_ffff;

/**
 * What the proof routes ask for; prover.ts implements it. Each resolves to a jamgate-proof/1
 * document (proof.ts `Proof`; serialized by the "Proof" schema) or throws a JamgateError.
 */
export interface ProofSource {
  entryProof(id: number): Promise<object>;
  balanceProof(service: string, account: Hex): Promise<object>;
  seqProof(device: Hex, seq: number): Promise<object>;
  readingProof(device: Hex, seq: number): Promise<object>;
}

export interface LedgerRoutesOptions {
  readonly reader: LedgerReader;
  /** Absent: the proof routes are not served. */
  readonly prover?: ProofSource | null;
  readonly count: (code: ErrorCode) => void;
  /** Bounds of `GET /v1/events` (tests): its client cap, queue and heartbeat. */
  readonly events?: Pick<EventStreamOptions, "clientsMax" | "queueMax" | "heartbeatMs" | "onClients">;
}

/** Sends a coded error with the registry's status, and counts it. */
export function sendError(reply: FastifyReply, count: (code: ErrorCode) => void, code: ErrorCode, detail?: string) {
  count(code);
  return reply.code(errorRegistry[code].httpStatus).send({ error: { code, message: detail ?? errorRegistry[code].message } });
}

/**
 * The error handler of every jamgate route: a JamgateError answers with its code; a schema
 * refusal of the body is JG_ERR_HTTP_BODY, of the querystring, params or headers
 * JG_ERR_HTTP_QUERY; anything else is a bug (500, not counted as bad input).
 */
export function codedErrorHandler(count: (code: ErrorCode) => void, bodyBytesMax?: number) {
  return (raw: FastifyError | Error, _request: FastifyRequest, reply: FastifyReply) => {
    if (raw instanceof JamgateError) return sendError(reply, count, raw.code, raw.detail);
    const error = raw as FastifyError;
    if (error.validation !== undefined) {
      const code = error.validationContext === "body" ? "JG_ERR_HTTP_BODY" : "JG_ERR_HTTP_QUERY";
      return sendError(reply, count, code, error.message);
    }
    if (error.statusCode === 413)
      return sendError(reply, count, "JG_ERR_HTTP_BODY", bodyBytesMax === undefined ? error.message : `body over ${bodyBytesMax} bytes`);
    if (error.statusCode === 400 || error.statusCode === 415) return sendError(reply, count, "JG_ERR_HTTP_BODY", error.message);
    return reply.code(500).send({ error: { code: "JG_ERR_RPC_INTERNAL", message: error.message } });
  };
}

/**
 * The validator of query strings and path parameters: numbers are coerced from their text, a
 * missing `limit` takes its default, and nothing the schema does not name is dropped silently
 * (fastify's default ajv removes unknown properties instead of refusing them).
 */
function queryAjv(): Ajv {
  return new Ajv({ coerceTypes: true, useDefaults: true, removeAdditional: false, allErrors: false, strict: false });
}

const errorResponses = (...statuses: number[]) =>
  Object.fromEntries(
    statuses.map((s) => [s, { ...schemaRef("Error"), description: s === 400 ? "JG_ERR_HTTP_QUERY" : s === 404 ? "JG_ERR_NOT_FOUND" : "coded error" }]),
  );
const query = (properties: Record<string, object>) => ({ type: "object", additionalProperties: false, properties });
const params = (properties: Record<string, object>) => ({ type: "object", additionalProperties: false, required: Object.keys(properties), properties });

const limit = { type: "integer", minimum: 1, maximum: LIST_LIMIT_MAX, default: LIST_LIMIT_DEFAULT, description: `Page size (at most ${LIST_LIMIT_MAX}).` };
const u32 = { type: "integer", minimum: 0, maximum: U32_MAX };
const cursor = { type: "integer", minimum: 0, maximum: Number.MAX_SAFE_INTEGER };
/** Hex input is taken in either case and answered in lowercase. */
const hexInput = (pattern: string) => ({ type: "string", pattern: pattern.replace("[0-9a-f]", "[0-9a-fA-F]") });
const hashParam = hexInput(HASH_PATTERN);
const idParam = hexInput(ID_PATTERN);
const serviceName = { type: "string", pattern: SERVICE_NAME_PATTERN };
/** ISO-8601 (a date, or a date and time with an optional zone) or Unix ms. */
const TIME_PATTERN = "^([0-9]{1,15}|[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\\.[0-9]{1,9})?)?(Z|[+-][0-9]{2}:?[0-9]{2})?)?)$";
const time = { type: "string", pattern: TIME_PATTERN, description: "ISO-8601 or Unix ms." };

const badQuery = (detail: string) => new JamgateError("JG_ERR_HTTP_QUERY", detail);
const notFound = (detail: string) => new JamgateError("JG_ERR_NOT_FOUND", detail);

/** A `since`/`until` value as Unix ms: digits are ms, anything else an ISO-8601 time (UTC unless it names a zone). */
export function parseTimeMs(text: string, name: string): number {
  if (/^[0-9]+$/.test(text)) {
    const ms = Number(text);
    if (!Number.isSafeInteger(ms)) throw badQuery(`${name}: ${text} is past the largest Unix ms`);
    return ms;
  }
  const iso = text.includes("T") || text.includes(" ") ? text.replace(" ", "T") : text;
  const zoned = iso.length <= 10 || /(Z|[+-][0-9]{2}:?[0-9]{2})$/.test(iso) ? iso : `${iso}Z`;
  const ms = Date.parse(zoned.replace(/([+-][0-9]{2})([0-9]{2})$/, "$1:$2"));
  if (!Number.isFinite(ms) || ms < 0) throw badQuery(`${name}: ${text} is not a time (ISO-8601 or Unix ms)`);
  return ms;
}

const lower = (hex: string) => hex.toLowerCase();

/** The plugin: register with `app.register(ledgerRoutes, { reader, prover, count })`. */
export const ledgerRoutes: FastifyPluginAsync<LedgerRoutesOptions> = async (app: FastifyInstance, options) => {
  const { reader, count } = options;
  const ajv = queryAjv();
  app.setValidatorCompiler(({ schema }) => ajv.compile(schema));
  app.setErrorHandler(codedErrorHandler(count));
  for (const schema of sharedSchemas) if (app.getSchema(schema.$id) === undefined) app.addSchema(schema);

  // ---- chain
  app.get(
    "/v1/chain/head",
    { schema: { tags: ["chain"], summary: "The best block the index has seen", response: { 200: schemaRef("BlockView"), ...errorResponses(404) } } },
    async () => {
      const head = await reader.head();
      if (head === null) throw notFound("no block yet");
      return head;
    },
  );

  app.get<{ Querystring: { before?: number; limit: number } }>(
    "/v1/blocks",
    {
      schema: {
        tags: ["chain"],
        summary: "Blocks, newest first",
        querystring: query({ before: { ...u32, description: "A slot (exclusive)." }, limit }),
        response: { 200: pageSchema("BlockView"), ...errorResponses(400) },
      },
    },
    async (request) => reader.blocks(request.query),
  );

  app.get<{ Params: { hashOrSlot: string } }>(
    "/v1/blocks/:hashOrSlot",
    {
      schema: {
        tags: ["chain"],
        summary: "A block by header hash or slot",
        params: params({ hashOrSlot: { type: "string", pattern: "^([0-9a-fA-F]{64}|[0-9]{1,10})$", description: "64 hex digits or a slot." } }),
        response: { 200: schemaRef("BlockView"), ...errorResponses(400, 404) },
      },
    },
    async (request) => {
      const text = request.params.hashOrSlot;
      const key = text.length === 64 ? lower(text) : Number(text);
      if (typeof key === "number" && key > U32_MAX) throw badQuery(`slot ${text} is past 2^32 - 1`);
      const block = await reader.block(key);
      if (block === null) throw notFound(`no block ${text}`);
      return block;
    },
  );

  // ---- packages
  app.get<{ Querystring: { status?: PackageStatusName; service?: string; before?: number; limit: number } }>(
    "/v1/packages",
    {
      schema: {
        tags: ["packages"],
        summary: "Work packages the gateway submitted, newest first",
        querystring: query({
          status: { type: "string", enum: [...PACKAGE_STATUSES] },
          service: serviceName,
          before: { ...cursor, description: "A submission order cursor (exclusive): a page's `next`." },
          limit,
        }),
        response: { 200: pageSchema("PackageView"), ...errorResponses(400) },
      },
    },
    async (request) => reader.packages(request.query),
  );

  app.get<{ Params: { hash: string } }>(
    "/v1/packages/:hash",
    {
      schema: {
        tags: ["packages"],
        summary: "A work package by hash",
        params: params({ hash: hashParam }),
        response: { 200: schemaRef("PackageView"), ...errorResponses(400, 404) },
      },
    },
    async (request) => {
      const found = await reader.package(lower(request.params.hash));
      if (found === null) throw notFound(`no package ${request.params.hash}`);
      return found;
    },
  );

  // ---- services
  app.get(
    "/v1/services",
    { schema: { tags: ["services"], summary: "The services the gateway settles on", response: { 200: { type: "array", items: schemaRef("ServiceView") } } } },
    async () => reader.services(),
  );

  // ---- devices (GET /v1/devices/:id is http.ts's: it joins the registration's status)
  app.get<{ Querystring: { service?: string; kind?: string; household?: string; after?: string; limit: number } }>(
    "/v1/devices",
    {
      schema: {
        tags: ["devices"],
        summary: "Registered devices, by id",
        querystring: query({
          service: serviceName,
          kind: { type: "string", enum: [...DEVICE_KINDS] },
          household: idParam,
          after: { ...idParam, description: "A device id (exclusive): a page's `next`." },
          limit,
        }),
        response: {
          200: {
            type: "object",
            required: ["items", "next"],
            properties: { items: { type: "array", items: schemaRef("DeviceView") }, next: { type: ["string", "null"], pattern: ID_PATTERN } },
          },
          ...errorResponses(400),
        },
      },
    },
    async (request) => {
      const { household, after, ...rest } = request.query;
      return reader.devices({
        ...rest,
        ...(household === undefined ? {} : { household: lower(household) }),
        ...(after === undefined ? {} : { after: lower(after) }),
      });
    },
  );

  // ---- settlement entries
  app.get<{
    Querystring: {
      service?: string;
      account?: string;
      device?: string;
      router?: string;
      interval?: number;
      fromSlot?: number;
      toSlot?: number;
      since?: string;
      until?: string;
      before?: number;
      limit: number;
    };
  }>(
    "/v1/entries",
    {
      schema: {
        tags: ["ledger"],
        summary: "Settlement entries of every service, newest first",
        description: "Each call scans a bounded number of entries: `next` continues where it stopped, even when fewer than `limit` matched.",
        querystring: query({
          service: serviceName,
          account: idParam,
          device: idParam,
          router: { ...idParam, description: "Wi-Fi entries of this router." },
          interval: u32,
          fromSlot: { ...u32, description: "Inclusive." },
          toSlot: { ...u32, description: "Inclusive." },
          since: time,
          until: time,
          before: { ...cursor, description: "An entry id (exclusive): a page's `next`." },
          limit,
        }),
        response: { 200: pageSchema("EntryView"), ...errorResponses(400) },
      },
    },
    async (request) => {
      const q = request.query;
      const sinceMs = q.since === undefined ? undefined : parseTimeMs(q.since, "since");
      const untilMs = q.until === undefined ? undefined : parseTimeMs(q.until, "until");
      if (q.fromSlot !== undefined && q.toSlot !== undefined && q.fromSlot > q.toSlot) throw badQuery(`fromSlot ${q.fromSlot} is after toSlot ${q.toSlot}`);
      if (sinceMs !== undefined && untilMs !== undefined && sinceMs > untilMs) throw badQuery(`since ${q.since} is after until ${q.until}`);
      const filter: EntryFilter = {
        ...(q.service === undefined ? {} : { service: q.service }),
        ...(q.account === undefined ? {} : { account: lower(q.account) }),
        ...(q.device === undefined ? {} : { device: lower(q.device) }),
        ...(q.router === undefined ? {} : { router: lower(q.router) }),
        ...(q.interval === undefined ? {} : { interval: q.interval }),
        ...(q.fromSlot === undefined ? {} : { fromSlot: q.fromSlot }),
        ...(q.toSlot === undefined ? {} : { toSlot: q.toSlot }),
        ...(sinceMs === undefined ? {} : { sinceMs }),
        ...(untilMs === undefined ? {} : { untilMs }),
      };
      return reader.entries(filter, { ...(q.before === undefined ? {} : { before: q.before }), limit: q.limit });
    },
  );

  app.get<{ Params: { id: number } }>(
    "/v1/entries/:id",
    {
      schema: {
        tags: ["ledger"],
        summary: "A settlement entry by id",
        params: params({ id: cursor }),
        response: { 200: schemaRef("EntryView"), ...errorResponses(400, 404) },
      },
    },
    async (request) => {
      const entry = await reader.entry(request.params.id);
      if (entry === null) throw notFound(`no entry ${request.params.id}`);
      return entry;
    },
  );

  // ---- energy market
  app.get<{ Querystring: { before?: number; limit: number } }>(
    "/v1/energy/intervals",
    {
      schema: {
        tags: ["energy"],
        summary: "Energy-market intervals, newest first (per-household results on the detail route)",
        querystring: query({ before: { ...u32, description: "An interval (exclusive)." }, limit }),
        response: { 200: pageSchema("IntervalView"), ...errorResponses(400) },
      },
    },
    async (request) => reader.intervals(request.query),
  );

  app.get<{ Params: { interval: number } }>(
    "/v1/energy/intervals/:interval",
    {
      schema: {
        tags: ["energy"],
        summary: "An energy-market interval with its per-household results",
        params: params({ interval: u32 }),
        response: { 200: schemaRef("IntervalView"), ...errorResponses(400, 404) },
      },
    },
    async (request) => {
      const found = await reader.interval(request.params.interval);
      if (found === null) throw notFound(`no interval ${request.params.interval}`);
      return found;
    },
  );

  // ---- balances
  app.get<{ Querystring: { service: string } }>(
    "/v1/balances",
    {
      schema: {
        tags: ["ledger"],
        summary: "Accounts with a balance in a service, at the best block",
        querystring: { ...query({ service: { ...serviceName, default: "energy-trading" } }) },
        response: { 200: { type: "array", items: schemaRef("BalanceView") }, ...errorResponses(400) },
      },
    },
    async (request) => reader.balances(request.query.service),
  );

  app.get<{ Params: { service: string; account: string } }>(
    "/v1/balances/:service/:account",
    {
      schema: {
        tags: ["ledger"],
        summary: "An account's balance at the best block",
        params: params({ service: serviceName, account: idParam }),
        response: { 200: schemaRef("BalanceView"), ...errorResponses(400, 404) },
      },
    },
    async (request) => {
      const found = await reader.balance(request.params.service, lower(request.params.account));
      if (found === null) throw notFound(`no balance of ${request.params.account} in ${request.params.service}`);
      return found;
    },
  );

  // ---- live updates
  registerEventStream(app, { reader, count, ...options.events });

  // ---- proofs
  const prover = options.prover;
  if (prover === undefined || prover === null) return;
  const proofResponses = {
    200: schemaRef("Proof"),
    ...errorResponses(400),
    404: { ...schemaRef("Error"), description: "JG_ERR_NOT_FOUND, or JG_ERR_PROOF_UNAVAILABLE: the value left state (or its bundle left DA)" },
    503: { ...schemaRef("Error"), description: "JG_ERR_HTTP_BUSY: as many proofs are being made as the gateway makes at once" },
  };
  const proofDescription = "A jamgate-proof/1 document: check it offline with `jamgate verify proof.json [--root HEX]`.";
  app.get<{ Params: { id: number } }>(
    "/v1/proofs/entries/:id",
    {
      schema: {
        tags: ["proofs"],
        summary:
          "Proof of a settlement entry (energy: the entry in its interval's ledger; Wi-Fi: the entry in its slot's ledger; envelopes: its last seq settled)",
        description: proofDescription,
        params: params({ id: cursor }),
        response: proofResponses,
      },
    },
    async (request) => prover.entryProof(request.params.id),
  );
  app.get<{ Params: { service: string; account: string } }>(
    "/v1/proofs/balances/:service/:account",
    {
      schema: {
        tags: ["proofs"],
        summary: "Proof of an account's balance (energy-trading; wifi-billing with its locked stakes)",
        description: proofDescription,
        params: params({ service: serviceName, account: idParam }),
        response: proofResponses,
      },
    },
    async (request) => prover.balanceProof(request.params.service, lower(request.params.account)),
  );
  app.get<{ Params: { id: string; seq: number } }>(
    "/v1/proofs/devices/:id/seqs/:seq",
    {
      schema: {
        tags: ["proofs"],
        summary: "Proof that a device's seq is settled",
        description: proofDescription,
        params: params({ id: idParam, seq: cursor }),
        response: proofResponses,
      },
    },
    async (request) => prover.seqProof(lower(request.params.id), request.params.seq),
  );
  app.get<{ Params: { device: string; seq: number } }>(
    "/v1/proofs/readings/:device/:seq",
    {
      schema: {
        tags: ["proofs"],
        summary: "Proof of a device's raw reading: its envelope in the package's bundle, under the erasure root of a guaranteed report (data availability)",
        description: proofDescription,
        params: params({ device: idParam, seq: cursor }),
        response: proofResponses,
      },
    },
    async (request) => prover.readingProof(lower(request.params.device), request.params.seq),
  );
};
