/**
 * The registry of coded errors for bad input at the edge (house style, "Errors: three kinds",
 * kind 1). Every code here is documented in docs/errors.md; `errors.test.ts` fails when the two
 * disagree. The node's codes start `JG_ERR_`; later stages (gateway, services) add theirs here.
 *
 * `httpStatus` is what an HTTP edge answers; `mqtt` what an MQTT client gets (a message on its
 * `devices/{id}/down/errors` topic, a CONNACK return code [MQTT-3.2.2.3], or a disconnect, since
 * MQTT 3.1.1 cannot refuse one PUBLISH); `rpcCode` the JIP-2 / JSON-RPC error code (JIP-2
 * asks servers not to invent codes, so bad input is JSON-RPC -32602 "invalid params" or JIP-2's
 * 0 "other", and the JG code travels in `error.data.code`).
 */
export type MqttReply = "none" | "error topic" | "CONNACK 2" | "CONNACK 3" | "CONNACK 4" | "CONNACK 5" | "disconnect";

export const errorRegistry = {
  JG_ERR_PACKAGE_MALFORMED: { message: "work package does not decode as a GP-encoded WorkPackage", httpStatus: 400, rpcCode: -32602, mqtt: "none" },
  JG_ERR_PACKAGE_OVERSIZE: { message: "encoded work package exceeds W_B bytes", httpStatus: 413, rpcCode: -32602, mqtt: "none" },
  JG_ERR_PACKAGE_ITEMS: { message: "work package has no work items or more than I", httpStatus: 400, rpcCode: -32602, mqtt: "none" },
  JG_ERR_PACKAGE_GAS: { message: "work item gas limits exceed G_R (refine) or G_A (accumulate)", httpStatus: 400, rpcCode: -32602, mqtt: "none" },
  JG_ERR_PACKAGE_CORE: { message: "core index is not a core of this chain", httpStatus: 400, rpcCode: -32602, mqtt: "none" },
  JG_ERR_PACKAGE_ANCHOR: {
    message: "refine context anchor is unknown, too old, or its state root does not match",
    httpStatus: 400,
    rpcCode: -32602,
    mqtt: "none",
  },
  JG_ERR_PACKAGE_DUPLICATE: { message: "a work package with this hash was already submitted", httpStatus: 409, rpcCode: 0, mqtt: "none" },
  JG_ERR_PACKAGE_UNSUPPORTED: {
    message: "work package uses imports, extrinsics, exports or prerequisites, which the embedded node does not support",
    httpStatus: 400,
    rpcCode: -32602,
    mqtt: "none",
  },
  JG_ERR_AUTH_UNKNOWN_AUTHORIZER: { message: "auth code hash is not the embedded Ed25519 authorizer", httpStatus: 401, rpcCode: 0, mqtt: "none" },
  JG_ERR_AUTH_BAD_TOKEN: {
    message: "authorization token is not a valid signature of the package by the key in the auth configuration",
    httpStatus: 401,
    rpcCode: 0,
    mqtt: "none",
  },
  JG_ERR_AUTH_NOT_AUTHORIZED: {
    message: "the signing key is not authorized to submit for a service the package names",
    httpStatus: 403,
    rpcCode: 0,
    mqtt: "none",
  },
  JG_ERR_SERVICE_UNKNOWN: {
    message: "a work item names a service that does not exist, or whose code the node has not loaded",
    httpStatus: 404,
    rpcCode: 0,
    mqtt: "none",
  },
  JG_ERR_SERVICE_CODE_HASH: { message: "a work item's code hash is not the service's code hash", httpStatus: 400, rpcCode: 0, mqtt: "none" },
  JG_ERR_QUEUE_FULL: {
    message: "a bounded queue is full (a core's packages awaiting refine, or a device's offline queue); retry later",
    httpStatus: 503,
    rpcCode: 0,
    mqtt: "none",
  },
  JG_ERR_REFINE_OUT_OF_GAS: { message: "refine of a work item ran out of gas", httpStatus: 422, rpcCode: 0, mqtt: "none" },
  JG_ERR_REFINE_PANIC: { message: "refine of a work item threw", httpStatus: 422, rpcCode: 0, mqtt: "none" },
  JG_ERR_REFINE_TIMEOUT: {
    message: "refine ran past the CPU time its declared gas allows (or the node's wall-clock cap) and was stopped",
    httpStatus: 422,
    rpcCode: 0,
    mqtt: "none",
  },
  JG_ERR_REPORT_OVERSIZE: { message: "refine results exceed W_R bytes", httpStatus: 422, rpcCode: 0, mqtt: "none" },
  JG_ERR_REPORT_TIMEOUT: { message: "report did not become available within U slots and was dropped", httpStatus: 504, rpcCode: 0, mqtt: "none" },
  JG_ERR_DA_UNKNOWN_REPORT: {
    message: "chunk or assurance for a report the node does not know (or a core with nothing pending)",
    httpStatus: 404,
    rpcCode: 0,
    mqtt: "none",
  },
  JG_ERR_DA_CHUNK_INDEX: { message: "chunk index is not a validator index", httpStatus: 400, rpcCode: -32602, mqtt: "none" },
  JG_ERR_DA_CHUNK_LENGTH: { message: "chunk is truncated or too long for its package", httpStatus: 400, rpcCode: -32602, mqtt: "none" },
  JG_ERR_DA_CHUNK_MISMATCH: { message: "chunk does not match the erasure root (hash or proof)", httpStatus: 400, rpcCode: -32602, mqtt: "none" },
  JG_ERR_DA_ASSURANCE_MALFORMED: { message: "assurance does not decode as a GP-encoded AvailabilityAssurance", httpStatus: 400, rpcCode: -32602, mqtt: "none" },
  JG_ERR_DA_ASSURANCE_SIGNER: { message: "assurance is not signed by the validator it names", httpStatus: 401, rpcCode: 0, mqtt: "none" },
  JG_ERR_DA_ASSURANCE_ANCHOR: { message: "assurance is not anchored on the best block", httpStatus: 409, rpcCode: 0, mqtt: "none" },
  JG_ERR_DA_UNAVAILABLE: {
    message: "the package's bundle cannot be recovered: unknown, pruned, or fewer than a third of its chunks are left",
    httpStatus: 404,
    rpcCode: 3,
    mqtt: "none",
  },
  JG_ERR_NODE_STOPPED: { message: "the node stopped before the package was reported", httpStatus: 503, rpcCode: 0, mqtt: "none" },
  JG_ERR_RPC_PARSE: { message: "request is not valid JSON", httpStatus: 400, rpcCode: -32700, mqtt: "none" },
  JG_ERR_RPC_INVALID_REQUEST: { message: "request is not a JSON-RPC 2.0 request object", httpStatus: 400, rpcCode: -32600, mqtt: "none" },
  JG_ERR_RPC_METHOD: { message: "method does not exist", httpStatus: 404, rpcCode: -32601, mqtt: "none" },
  JG_ERR_RPC_PARAMS: { message: "params are not what the method takes", httpStatus: 400, rpcCode: -32602, mqtt: "none" },
  JG_ERR_RPC_BLOCK_UNKNOWN: { message: "no block with that header hash", httpStatus: 404, rpcCode: 1, mqtt: "none" },
  JG_ERR_RPC_REPORT_UNKNOWN: { message: "no work report with that hash", httpStatus: 404, rpcCode: 2, mqtt: "none" },
  JG_ERR_RPC_OVERSIZE: {
    message: "RPC message exceeds the frame limit; the server closes the connection (WebSocket 1009)",
    httpStatus: 413,
    rpcCode: -32600,
    mqtt: "none",
  },
  JG_ERR_RPC_INTERNAL: { message: "the node failed to answer (a bug, logged by the node)", httpStatus: 500, rpcCode: -32603, mqtt: "none" },
  JG_ERR_RPC_LIMIT: { message: "an RPC subscription limit was reached, per connection or on the node", httpStatus: 429, rpcCode: 0, mqtt: "none" },
  JG_ERR_RPC_UNAUTHORIZED: {
    message:
      "a state-changing RPC method without the node's RPC token, a wrong token, or no token from a non-loopback address (the last two refused at the WebSocket handshake with HTTP 401)",
    httpStatus: 401,
    rpcCode: 0,
    mqtt: "none",
  },
  JG_ERR_RPC_TIMEOUT: { message: "no answer in time from the node or the gateway (client side)", httpStatus: 504, rpcCode: 0, mqtt: "none" },
  JG_ERR_RPC_CLOSED: {
    message: "the connection to the node or the gateway is closed or could not be opened (client side)",
    httpStatus: 503,
    rpcCode: 0,
    mqtt: "none",
  },
  JG_ERR_RPC_REMOTE: { message: "the node or the gateway answered with something this client cannot read", httpStatus: 502, rpcCode: 0, mqtt: "none" },
  JG_ERR_ENVELOPE_OVERSIZE: { message: "envelope exceeds the payload limit", httpStatus: 413, rpcCode: 0, mqtt: "error topic" },
  JG_ERR_ENVELOPE_MALFORMED: {
    message: "envelope is not the CBOR map {v, d, s, k, t, b, sig} with valid fields",
    httpStatus: 400,
    rpcCode: 0,
    mqtt: "error topic",
  },
  JG_ERR_ENVELOPE_VERSION: { message: "envelope version is not one this gateway speaks", httpStatus: 400, rpcCode: 0, mqtt: "error topic" },
  JG_ERR_ENVELOPE_KIND: { message: "envelope kind is unknown", httpStatus: 400, rpcCode: 0, mqtt: "error topic" },
  JG_ERR_ENVELOPE_DEVICE: {
    message: "envelope names another device than the one connected, or than its topic",
    httpStatus: 403,
    rpcCode: 0,
    mqtt: "error topic",
  },
  JG_ERR_ENVELOPE_SIGNATURE: {
    message: "envelope signature does not verify with the device's registered key",
    httpStatus: 401,
    rpcCode: 0,
    mqtt: "error topic",
  },
  JG_ERR_ENVELOPE_REPLAY: { message: "an envelope with this (device, seq) was already accepted", httpStatus: 409, rpcCode: 0, mqtt: "error topic" },
  JG_ERR_ENVELOPE_SEQ: {
    message: "envelope seq is more than 1,000,000 ahead of the device's highest accepted seq, or more than 64 below it",
    httpStatus: 409,
    rpcCode: 0,
    mqtt: "error topic",
  },
  JG_ERR_ENVELOPE_FUTURE: { message: "envelope time is too far in the future", httpStatus: 400, rpcCode: 0, mqtt: "error topic" },
  JG_ERR_DEVICE_UNREGISTERED: { message: "device is not registered", httpStatus: 403, rpcCode: 0, mqtt: "CONNACK 5" },
  JG_ERR_DEVICE_EXISTS: { message: "device is already registered", httpStatus: 409, rpcCode: 0, mqtt: "none" },
  JG_ERR_DEVICE_KIND: { message: "device kind is not meter, inverter, router, client or agent", httpStatus: 400, rpcCode: 0, mqtt: "none" },
  JG_ERR_DEVICE_ROW: {
    message:
      "a row of a bulk registration is not a registration: a field missing, malformed or unknown, a device id other than its key's, or a device listed twice",
    httpStatus: 400,
    rpcCode: 0,
    mqtt: "none",
  },
  JG_ERR_DEVICE_ROWS: {
    message: "a bulk registration has rows that cannot be registered, each listed with its index or line, code and reason; none of its rows is registered",
    httpStatus: 400,
    rpcCode: 0,
    mqtt: "none",
  },
  JG_ERR_ENERGY_KIND: {
    message:
      "envelope kind is not one the energy market settles, or not the one its device is registered for (meters send meter.reading and meter.reset, agents agent.order)",
    httpStatus: 400,
    rpcCode: 0,
    mqtt: "error topic",
  },
  JG_ERR_ENERGY_BODY: {
    message: "envelope body is not the kind's CBOR (integers only), or its readings do not increase in time",
    httpStatus: 400,
    rpcCode: 0,
    mqtt: "error topic",
  },
  JG_ERR_ENERGY_COUNTER: {
    message: "meter counters go backwards, or jump by more than a household's meter can",
    httpStatus: 400,
    rpcCode: 0,
    mqtt: "error topic",
  },
  JG_ERR_ENERGY_INTERVAL_CLOSED: {
    message:
      "an order for a market interval already cleared, or readings from before the market opened (late readings are not refused: their energy counts in the first interval still open)",
    httpStatus: 409,
    rpcCode: 0,
    mqtt: "error topic",
  },
  JG_ERR_ENERGY_INTERVAL_FAR: {
    message: "readings ahead of the market clock, or an order beyond the order horizon",
    httpStatus: 400,
    rpcCode: 0,
    mqtt: "error topic",
  },
  JG_ERR_ENERGY_ORDER: {
    message: "order with no or absurd energy or price, too many lines, or both sides at once",
    httpStatus: 400,
    rpcCode: 0,
    mqtt: "error topic",
  },
  JG_ERR_ENERGY_CLOCK: {
    message: "the work item was built for another market clock than the service's (gateway misconfigured)",
    httpStatus: 500,
    rpcCode: 0,
    mqtt: "error topic",
  },
  JG_ERR_ENERGY_HOUSEHOLD: { message: "an agent's household is not a registered meter", httpStatus: 400, rpcCode: 0, mqtt: "none" },
  JG_ERR_ENERGY_FULL: { message: "the energy market has as many households as it can clear", httpStatus: 503, rpcCode: 0, mqtt: "none" },
  JG_ERR_ENERGY_POWER: {
    message:
      "a meter's energy between two readings (import plus export) is more than the service's meter power bound delivers in the time between them; nothing of it is credited and the last settled reading stands",
    httpStatus: 400,
    rpcCode: 0,
    mqtt: "error topic",
  },
  JG_ERR_WIFI_BODY: {
    message:
      "a router.usage body is not the usage CBOR map (session, client, status, counters, seconds, voucher), or a field is out of range; or a router sent an envelope of another kind",
    httpStatus: 400,
    rpcCode: 0,
    mqtt: "error topic",
  },
  JG_ERR_WIFI_VOUCHER_SIGNATURE: {
    message: "the client's voucher signature does not verify over the update's router, session, cumulative octets, seconds and previous voucher hash",
    httpStatus: 401,
    rpcCode: 0,
    mqtt: "error topic",
  },
  JG_ERR_WIFI_VOUCHER_CHAIN: {
    message: "the voucher's previous-voucher hash is not the session's last voucher: a replayed, reordered or forked voucher; nothing of it is billed",
    httpStatus: 409,
    rpcCode: 0,
    mqtt: "error topic",
  },
  JG_ERR_WIFI_COUNTER: {
    message: "a session's octet or second counters go backwards, or wrap wrongly (octets falling without Acct-Gigawords rising)",
    httpStatus: 400,
    rpcCode: 0,
    mqtt: "error topic",
  },
  JG_ERR_WIFI_CAPACITY: {
    message: "a session's octets exceed the router's stated link capacity times the session's seconds (plus one second: Acct-Session-Time is truncated)",
    httpStatus: 400,
    rpcCode: 0,
    mqtt: "error topic",
  },
  JG_ERR_WIFI_ROUTER: {
    message: "usage or a change for a router that is not registered, or is deregistered",
    httpStatus: 404,
    rpcCode: 0,
    mqtt: "error topic",
  },
  JG_ERR_WIFI_CLIENT: {
    message: "usage names a client account that is not registered, or a voucher key that is not the account's",
    httpStatus: 403,
    rpcCode: 0,
    mqtt: "error topic",
  },
  JG_ERR_WIFI_SESSION: {
    message:
      "a session update out of its life cycle: an interim or stop for no open session, a start for one already open or beyond the router's open-session bound, or any update for a stopped session",
    httpStatus: 409,
    rpcCode: 0,
    mqtt: "error topic",
  },
  JG_ERR_WIFI_AMOUNT: { message: "a top-up, price, stake or capacity of zero, negative or past its maximum", httpStatus: 400, rpcCode: 0, mqtt: "none" },
  JG_ERR_WIFI_STAKE: { message: "the owner account's balance is below the router's stake", httpStatus: 402, rpcCode: 0, mqtt: "none" },
  JG_ERR_WIFI_ACCOUNT: {
    message: "a top-up, balance or owner for an account that is not registered on the wifi-billing service",
    httpStatus: 404,
    rpcCode: 0,
    mqtt: "none",
  },
  JG_ERR_WIFI_REPLAY: { message: "an operator action (top-up, price change, deregistration) already applied", httpStatus: 409, rpcCode: 0, mqtt: "none" },
  JG_ERR_RADIUS_PACKET: {
    message:
      "a UDP datagram on the RADIUS port is not an Accounting-Request (RFC 2866 §4.1) of at most 4096 octets with NAS-Identifier, Acct-Status-Type and, for usage, Acct-Session-Id and User-Name (the client's account id, the same within a session); dropped without an answer",
    httpStatus: 400,
    rpcCode: 0,
    mqtt: "none",
  },
  JG_ERR_RADIUS_ROUTER: {
    message: "an Accounting-Request's NAS-Identifier is not a router onboarded for RADIUS; dropped without an answer",
    httpStatus: 403,
    rpcCode: 0,
    mqtt: "none",
  },
  JG_ERR_RADIUS_AUTHENTICATOR: {
    message:
      "an Accounting-Request's Request Authenticator is not MD5 over the packet and the router's shared secret (RFC 2866 §3); dropped silently, as the RFC asks",
    httpStatus: 401,
    rpcCode: 0,
    mqtt: "none",
  },
  JG_ERR_RADIUS_DUPLICATE: {
    message:
      "an Accounting-Request repeats an Acct-Session-Id and Acct-Status-Type pair already taken (a Start or Stop twice, an Interim-Update with the same counters, or any update after the session's Stop); answered so the NAS stops retrying, not billed again",
    httpStatus: 409,
    rpcCode: 0,
    mqtt: "none",
  },
  JG_ERR_RADIUS_COUNTER: {
    message: "an Accounting-Request's octet or time counters (with Acct-Input/Output-Gigawords) are below the session's last; answered, not billed",
    httpStatus: 400,
    rpcCode: 0,
    mqtt: "none",
  },
  JG_ERR_SCENARIO_INVALID: { message: "the simulation scenario file does not validate", httpStatus: 400, rpcCode: 0, mqtt: "none" },
  JG_ERR_MQTT_AUTH: {
    message: "MQTT username is not a device id, or the password is not a valid, unexpired token of its key",
    httpStatus: 401,
    rpcCode: 0,
    mqtt: "CONNACK 4",
  },
  JG_ERR_MQTT_TOPIC: {
    message: "publish outside the client's own topics (the connection is closed), or a subscription outside them (SUBACK 0x80, the connection stays)",
    httpStatus: 403,
    rpcCode: 0,
    mqtt: "disconnect",
  },
  JG_ERR_MQTT_RATE: { message: "too many connection attempts from this device or address; back off", httpStatus: 429, rpcCode: 0, mqtt: "CONNACK 3" },
  JG_ERR_MQTT_CONNECTIONS: { message: "the broker is at its connection limit", httpStatus: 503, rpcCode: 0, mqtt: "CONNACK 3" },
  JG_ERR_MQTT_SLOW_CONSUMER: { message: "a subscriber fell too far behind and was disconnected", httpStatus: 503, rpcCode: 0, mqtt: "disconnect" },
  JG_ERR_MQTT_SESSION_QUEUE: {
    message:
      "a persistent session already holds as many undelivered messages as it may (brokerLimits.sessionQueueMax); this one is not held for it (a receipt stays on the ledger)",
    httpStatus: 503,
    rpcCode: 0,
    mqtt: "none",
  },
  JG_ERR_MQTT_PACKET: {
    message:
      "an MQTT packet's fixed header declares more bytes than its type may hold (CONNECT 4 KiB, PUBLISH the envelope limit + 1 KiB, others 4 KiB), or the first packet is not a CONNECT; the connection is closed before the body is read",
    httpStatus: 413,
    rpcCode: 0,
    mqtt: "disconnect",
  },
  JG_ERR_MQTT_CLIENT_ID: {
    message: "MQTT client id is not the device id of the username (devices), nor operator or operator-<label> (the operator)",
    httpStatus: 400,
    rpcCode: 0,
    mqtt: "CONNACK 2",
  },
  JG_ERR_MQTT_WILL: {
    message: "CONNECT carries a will message; jamgate takes none (a will would publish on the client's behalf after it is gone)",
    httpStatus: 400,
    rpcCode: 0,
    mqtt: "CONNACK 5",
  },
  JG_ERR_MQTT_RETAIN: {
    message: "PUBLISH with the retain flag on a device topic: nothing is retained, logged or settled",
    httpStatus: 400,
    rpcCode: 0,
    mqtt: "error topic",
  },
  JG_ERR_OPERATOR_TOKEN: { message: "missing or wrong operator token", httpStatus: 401, rpcCode: 0, mqtt: "CONNACK 4" },
  JG_ERR_HTTP_BODY: { message: "request body is not what the endpoint takes", httpStatus: 400, rpcCode: 0, mqtt: "none" },
  JG_ERR_HTTP_QUERY: {
    message: "a query parameter or path parameter is not what the route takes (unknown, repeated, out of range or malformed)",
    httpStatus: 400,
    rpcCode: 0,
    mqtt: "none",
  },
  JG_ERR_HTTP_BUSY: {
    message:
      "the server is at a bound of the read API: as many event streams (SSE_CLIENTS_MAX) or proofs being made (PROOFS_IN_FLIGHT_MAX) as it serves; retry later",
    httpStatus: 503,
    rpcCode: 0,
    mqtt: "none",
  },
  JG_ERR_NOT_FOUND: {
    message: "no such route, or nothing with that id, hash, slot or key is known to the ledger index",
    httpStatus: 404,
    rpcCode: 0,
    mqtt: "none",
  },
  JG_ERR_PROOF_UNAVAILABLE: {
    message:
      "no proof can be made: the value left state (e.g. an energy interval older than LEDGER_INTERVALS_KEPT), its bundle is past DA retention, or no block after it came in time",
    httpStatus: 404,
    rpcCode: 0,
    mqtt: "none",
  },
  JG_ERR_PROOF_FORMAT: {
    message:
      "the file is not a jamgate-proof/1 proof: not JSON, an unknown format or chain, or a field missing, of the wrong type, length or count, or not decoding (a header, the report, the block)",
    httpStatus: 400,
    rpcCode: 0,
    mqtt: "none",
  },
  JG_ERR_PROOF_STATE: {
    message: "the state path does not lead from the value to the state root, or the state key is not C(serviceId, storageKey)",
    httpStatus: 422,
    rpcCode: 0,
    mqtt: "none",
  },
  JG_ERR_PROOF_CHAIN: {
    message:
      "the headers do not link: the first is not the child of the proven block (parent hash, prior state root) and each next one not the child of the one before",
    httpStatus: 422,
    rpcCode: 0,
    mqtt: "none",
  },
  JG_ERR_PROOF_CLAIM: {
    message: "the proven value does not say what the claim says (another key, entry, amount, or a seq the window does not hold as settled)",
    httpStatus: 422,
    rpcCode: 0,
    mqtt: "none",
  },
  JG_ERR_PROOF_DA: {
    message:
      "the reading's path to the chain does not hold: the envelope is not the device's signed record at that place in the bundle, or the bundle, its erasure root, the report or the block that guaranteed it do not match",
    httpStatus: 422,
    rpcCode: 0,
    mqtt: "none",
  },
  JG_ERR_PROOF_ANCHOR: {
    message: "the trusted root given (--root) is neither the proof's state root nor the hash of a block in it",
    httpStatus: 409,
    rpcCode: 0,
    mqtt: "none",
  },
  JG_ERR_SETTLEMENT_FAILED: {
    message:
      "a work package failed (counted by code in jamgate_packages_failed_total); the gateway retries its envelopes and tells the device nothing until they settle",
    httpStatus: 502,
    rpcCode: 0,
    mqtt: "none",
  },
  JG_ERR_CLI_ARGUMENT: { message: "a command-line flag has a value it cannot take", httpStatus: 400, rpcCode: 0, mqtt: "none" },
  JG_ERR_CONFIG: {
    message: "the data directory's config.json is not a JSON object of jamgate flags, or cannot be read",
    httpStatus: 400,
    rpcCode: 0,
    mqtt: "none",
  },
  JG_ERR_GENESIS: { message: "the data directory's genesis differs from the configured one", httpStatus: 500, rpcCode: 0, mqtt: "none" },
  JG_ERR_PORT_IN_USE: { message: "a port the command listens on is taken or not allowed", httpStatus: 500, rpcCode: 0, mqtt: "none" },
  JG_ERR_CLUSTER_UNREACHABLE: {
    message:
      "jamgate start --cluster: Redis did not answer within 10 s, or refused the password or the database; the gateway does not start without its cluster",
    httpStatus: 503,
    rpcCode: 0,
    mqtt: "none",
  },
  JG_ERR_CLUSTER_UNAVAILABLE: {
    message:
      "the gateway's cluster Redis, where MQTT sessions live, is unreachable: no new session opens until it is back (connected devices keep publishing); connect again later",
    httpStatus: 503,
    rpcCode: 0,
    mqtt: "CONNACK 3",
  },
  JG_ERR_DATA_DIR_LOCKED: {
    message: "another process holds the data directory (its pid is in the message): one process per data directory",
    httpStatus: 500,
    rpcCode: 0,
    mqtt: "none",
  },
  JG_ERR_NO_CHAIN: { message: "the data directory does not exist or holds no chain to replay", httpStatus: 500, rpcCode: 0, mqtt: "none" },
  JG_ERR_NO_GATEWAY: {
    message: "no jamgate is running on the data directory (no endpoints.json, or its process is gone) and no URL was given (client side)",
    httpStatus: 503,
    rpcCode: 0,
    mqtt: "none",
  },
} as const satisfies Record<string, { message: string; httpStatus: number; rpcCode: number; mqtt: MqttReply }>;

export type ErrorCode = keyof typeof errorRegistry;

/** A coded error as a value: what went wrong (the code) and the particulars (detail). */
export interface CodedError {
  readonly code: ErrorCode;
  readonly detail: string;
}

export function codedError(code: ErrorCode, detail?: string): CodedError {
  return { code, detail: detail ?? errorRegistry[code].message };
}

export function describeError(e: CodedError): string {
  return `${e.code}: ${e.detail}`;
}

/** A coded error thrown at an edge that reports it (CLI, RPC); never used for control flow inside. */
export class JamgateError extends Error {
  readonly detail: string;
  constructor(
    readonly code: ErrorCode,
    detail?: string,
  ) {
    const text = detail ?? errorRegistry[code].message;
    super(`${code}: ${text}`);
    this.name = "JamgateError";
    this.detail = text;
  }
}

export type Result<T, E = CodedError> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: E };
export const ok = <T>(value: T): Result<T, never> => ({ ok: true, value });
export const err = <E>(error: E): Result<never, E> => ({ ok: false, error });
