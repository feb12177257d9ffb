/**
 * `jamgate device …`: make a key, make one envelope for any MQTT client, publish readings as a
 * device, register a device with a gateway, list its settled seqs (docs/protocol.md). Errors are
 * registry codes (devices/errors.ts) printed as `jamgate: CODE: detail`, exit code 1. Without a
 * URL, the commands find a `jamgate start` on this machine through its data dir's endpoints.json
 * (./endpoints.ts).
 */
import { once } from "node:events";
import { readFileSync, statSync, writeFileSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import { join } from "node:path";
import { setTimeout as sleep, setImmediate as yieldToEventLoop } from "node:timers/promises";
import { type Command, CommanderError, Option } from "commander";
// The SDK's codec, crypto and MQTT client (./keys.ts, ./envelope.ts, ./readings.ts, ./messages.ts,
// ./client.ts) are imported by the actions that use them, not here: every `jamgate` command loads
// this module for its flags, and `jamgate --help` loads no package but commander (scripts/cli-startup.test.ts).
import type { DeviceClient, DeviceClientState } from "./client.ts";
import { readEndpointsFile } from "./endpoints.ts";
import { ENVELOPE_KINDS, type EnvelopeKind } from "./protocol/envelope-kinds.ts";
import { toHex } from "./protocol/hex.ts";
import { TOKEN_LIFETIME_MAX_MS } from "./protocol/mqtt-token.ts";
import { seqRanges } from "./protocol/seq-ranges.ts";
import { DeviceSideError, NON_FINAL_CODES } from "./errors.ts";
import { integerIn } from "./protocol/cli-args.ts";
import { DEVICE_KINDS } from "./protocol/device-kinds.ts";
import { DEVICE_KEY_FILE_NAME, defaultKeyFile, writeKeyFile } from "./key-files.ts";
import type { DeviceKey } from "./keys.ts";
import type { DeviceError, Receipt } from "./messages.ts";
import { meterReadings } from "./simulate.ts";

/** Where `publish` keeps a device's offline queue and next seq unless told. */
export const DEFAULT_DEVICE_DATA_DIR = ".jamgate-device";
/** Where `register`, `receipts` and `publish` look for a running gateway's endpoints.json and operator-token unless told (`jamgate start`'s default data dir). */
export const DEFAULT_GATEWAY_DATA_DIR = ".jamgate";
/** Largest readings file read: it is held in memory whole; twice the default offline queue. */
export const READINGS_FILE_BYTES_MAX = 64 * 1024 * 1024;
/** Largest gateway HTTP answer read; registration answers are a few hundred bytes. */
const HTTP_ANSWER_BYTES_MAX = 64 * 1024;
/** Largest page of settlement entries read (`receipts`): a page is at most 500 entries of under 1 KB. */
const ENTRIES_ANSWER_BYTES_MAX = 8 * 1024 * 1024;
/** Entries asked for per page (the API's largest). */
const ENTRIES_PAGE_LIMIT = 500;
/**
 * Pages `receipts` reads at most: each scans at most 20,000 of the ledger's entries (the API's
 * ENTRY_SCAN_MAX), so past 20 million it stops and says the list may be incomplete.
 */
export const RECEIPT_PAGES_MAX = 1_000;
/** One HTTP request to the gateway; registration answers at once (202), the wait is by polling. */
const HTTP_TIMEOUT_MS = 10_000;

/** Reports a coded error and ends the command with exit code 1 (scripts/cli.ts `main` exits with it). */
function fail(code: string, detail: string): never {
  process.stderr.write(`jamgate: ${code}: ${detail}\n`);
  throw new CommanderError(1, code, `${code}: ${detail}`);
}

export function registerDeviceCommands(program: Command): void {
  const device = program.command("device").description("device side: keys, envelopes, publishing over MQTT, registration, settled seqs");
  // Keys live in the user's config dir unless told (./key-files.ts), never in the working directory by default.
  const keyFile = defaultKeyFile(DEVICE_KEY_FILE_NAME);

  device
    .command("keygen")
    .description("make an Ed25519 device key: writes {deviceId, publicKey, secretKey} (hex), mode 0600, and prints its id, public key and file")
    .option("--out <file>", "key file to write (default: in the user's config dir, made 0700)", keyFile)
    .option("--force", "overwrite an existing file")
    .action(async (options: { out: string; force?: boolean }) => {
      const { generateDeviceKey, keyToJson } = await import("./keys.ts");
      const key = generateDeviceKey();
      try {
        writeKeyFile(options.out, keyToJson(key), options.force === true);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === "EEXIST") fail("JG_ERR_CLI_ARGUMENT", `${options.out} exists; --force overwrites it`);
        fail("JG_ERR_CLI_ARGUMENT", `cannot write ${options.out}: ${(e as Error).message}`);
      }
      console.log(JSON.stringify({ deviceId: key.deviceId, publicKey: toHex(key.publicKey), keyFile: options.out }));
    });

  device
    .command("envelope")
    .description("sign one envelope (CBOR) from a JSON-lines readings file, for any MQTT client to publish")
    .option("--key <file>", "device key file", keyFile)
    .requiredOption("--seq <n>", "the envelope's seq", integerIn(0, Number.MAX_SAFE_INTEGER))
    .requiredOption("--readings <file>", "one JSON reading per line; the body is them in CBOR (as columns when they allow it: docs/protocol.md)")
    .requiredOption("--out <file>", "envelope file to write")
    .addOption(new Option("--kind <kind>", "envelope kind").choices(ENVELOPE_KINDS).default("meter.reading"))
    .option("--time-ms <ms>", "envelope time, ms since the epoch (default: now)", integerIn(0, Number.MAX_SAFE_INTEGER))
    .action(async (options: { key: string; seq: number; readings: string; out: string; kind: EnvelopeKind; timeMs?: number }) => {
      const key = await readKey(options.key);
      const [{ encodeReadings }, { BODY_BYTES_MAX, ENVELOPE_VERSION, encodeEnvelope, signEnvelope }, { upTopic }] = await Promise.all([
        import("./readings.ts"),
        import("./envelope.ts"),
        import("./messages.ts"),
      ]);
      const body = encodeReadings(readReadings(options.readings));
      if (body.length > BODY_BYTES_MAX)
        fail("JG_ERR_ENVELOPE_OVERSIZE", `readings encode to ${body.length} bytes > ${BODY_BYTES_MAX}; split them (publish --per-envelope does)`);
      const envelope = signEnvelope(
        { version: ENVELOPE_VERSION, device: key.deviceId, seq: options.seq, kind: options.kind, timeMs: options.timeMs ?? Date.now(), body },
        key.secretKey,
      );
      const bytes = encodeEnvelope(envelope);
      try {
        writeFileSync(options.out, bytes);
      } catch (e) {
        fail("JG_ERR_CLI_ARGUMENT", `cannot write ${options.out}: ${(e as Error).message}`);
      }
      console.log(
        JSON.stringify({ deviceId: key.deviceId, seq: options.seq, kind: options.kind, bytes: bytes.length, topic: upTopic(key.deviceId, options.kind) }),
      );
    });

  device
    .command("token")
    .description("print an MQTT password for the device (a signed, time-bounded token), for any MQTT client")
    .option("--key <file>", "device key file", keyFile)
    .option("--ttl-ms <ms>", "how long the token is valid (at most 24 h)", integerIn(1_000, TOKEN_LIFETIME_MAX_MS), 3_600_000)
    .action(async (options: { key: string; ttlMs: number }) => {
      const key = await readKey(options.key);
      const { mqttPassword } = await import("./keys.ts");
      console.log(mqttPassword(key, Date.now() + options.ttlMs));
    });

  device
    .command("publish")
    .description("send readings as a device over MQTT (QoS 1, offline queue in --data-dir), optionally waiting for every receipt")
    .option("--key <file>", "device key file", keyFile)
    .option("--mqtt <url>", "the gateway's broker: mqtt://host:port, mqtts://host:port (TLS), ws:// or wss:// (default: the one running on --gateway-data-dir)")
    .option("--gateway-data-dir <dir>", "without --mqtt: the running jamgate's data dir, whose endpoints.json names its broker", DEFAULT_GATEWAY_DATA_DIR)
    .option("--ca <file>", "PEM CA certificate to trust for mqtts:// and wss:// (default: the system's)")
    .option("--client-cert <file>", "PEM client certificate, for a gateway that authenticates devices by certificate (CN = device id)")
    .option("--client-key <file>", "PEM private key of --client-cert")
    .addOption(new Option("--readings <file>", "one JSON reading per line").conflicts("simulate"))
    .addOption(new Option("--simulate <n>", "send n envelopes of simulated meter readings instead").argParser(integerIn(1, 1_000_000)))
    .option("--data-dir <dir>", "the device's offline queue and next seq", DEFAULT_DEVICE_DATA_DIR)
    .addOption(new Option("--kind <kind>", "envelope kind").choices(ENVELOPE_KINDS).default("meter.reading"))
    .option("--per-envelope <n>", "readings per envelope", integerIn(1, 10_000), 60)
    .option("--seed <n>", "seed of --simulate", integerIn(0, 2 ** 32 - 1), 1)
    .option("--wait-receipts", "wait until every envelope has a receipt or an error")
    .option("--json", "receipts and refusals as JSON lines (each as it comes, then the totals)")
    .option("--timeout-ms <ms>", "give up after this long", integerIn(1, 7 * 24 * 3_600_000), 120_000)
    .action(async (options: PublishOptions) => publish(options));

  device
    .command("register")
    .description(
      "register a device with a gateway (POST /v1/devices), optionally waiting until it is on the ledger; or a fleet from a file (--from: POST /v1/devices/bulk, with progress, until every row is registered or failed)",
    )
    .option("--key <file>", "device key file (only its public key is sent)", keyFile)
    .addOption(new Option("--kind <kind>", "device kind (required without --from; with it, the kind of rows that give none)").choices(DEVICE_KINDS))
    .option("--service <name>", "the service to settle on, e.g. energy-trading (default: the one that owns the kind; with --from, of rows that name none)")
    .addOption(new Option("--household <id>", "for an energy-trading agent: the device id of its household's meter").conflicts("from"))
    .addOption(
      new Option(
        "--from <file>",
        "register every device of FILE: JSON lines of {publicKey, kind?, service?, household?, deviceId?}, or CSV with a header naming those columns; a bad row registers nothing (docs/protocol.md)",
      ).conflicts("wait"),
    )
    .addOption(new Option("--format <format>", "FILE's format (default: csv for a .csv file, else jsonl)").choices(["jsonl", "csv"]))
    .option("--gateway <url>", "the gateway's HTTP address, https:// when it serves TLS (default: the one running on --data-dir)")
    .option("--ca <file>", "PEM CA certificate to trust for an https:// gateway (default: the system's)")
    .option("--data-dir <dir>", "the gateway's data directory: its operator-token, and its endpoints.json without --gateway", DEFAULT_GATEWAY_DATA_DIR)
    .option("--token <token>", "the operator token (instead of reading --data-dir)")
    .option("--wait", "poll GET /v1/devices/{id} until registered or failed")
    .option("--timeout-ms <ms>", "how long --wait polls; with --from, how long nothing may move before it gives up", integerIn(1, 24 * 3_600_000), 120_000)
    .addOption(new Option("--poll-ms <ms>", "poll period of --wait").argParser(integerIn(10, 60_000)).default(1000).hideHelp())
    .action(async (options: RegisterOptions) => register(options));

  device
    .command("receipts")
    .description("the device's settled seqs, from the gateway's ledger (GET /v1/entries?device=…): what a device that lost receipts reconciles against")
    .option("--key <file>", "device key file (only its id is used)", keyFile)
    .option("--gateway <url>", "the gateway's HTTP address (default: the one running on --data-dir)")
    .option("--ca <file>", "PEM CA certificate to trust for an https:// gateway (default: the system's)")
    .option("--data-dir <dir>", "the gateway's data directory: its endpoints.json without --gateway", DEFAULT_GATEWAY_DATA_DIR)
    .option("--json", "one JSON line per settlement (seqs, package, block, slot), then the device's totals")
    .action(async (options: ReceiptsOptions) => receipts(options));
}

interface PublishOptions {
  key: string;
  mqtt?: string;
  gatewayDataDir: string;
  json?: boolean;
  ca?: string;
  clientCert?: string;
  clientKey?: string;
  readings?: string;
  simulate?: number;
  dataDir: string;
  kind: EnvelopeKind;
  perEnvelope: number;
  seed: number;
  waitReceipts?: boolean;
  timeoutMs: number;
}

async function publish(options: PublishOptions): Promise<void> {
  if ((options.readings === undefined) === (options.simulate === undefined)) fail("JG_ERR_CLI_ARGUMENT", "give --readings <file> or --simulate <n>");
  const mqttUrl = options.mqtt ?? endpointsOf(options.gatewayDataDir, "--mqtt").mqtt;
  if (!/^(mqtts?:\/\/[^/]+|wss?:\/\/[^/]+(\/.*)?)$/.test(mqttUrl.replace(/\/$/, "")))
    fail("JG_ERR_CLI_ARGUMENT", `--mqtt must be mqtt://host:port, mqtts://host:port, ws://host:port or wss://host:port, got ${mqttUrl}`);
  if ((options.clientCert === undefined) !== (options.clientKey === undefined)) fail("JG_ERR_CLI_ARGUMENT", "--client-cert and --client-key go together");
  const tls = {
    ...(options.ca === undefined ? {} : { ca: readFileFor("--ca", options.ca) }),
    ...(options.clientCert === undefined ? {} : { cert: readFileFor("--client-cert", options.clientCert) }),
    ...(options.clientKey === undefined ? {} : { key: readFileFor("--client-key", options.clientKey) }),
  };
  const key = await readKey(options.key);
  const fileReadings = options.readings !== undefined ? readReadings(options.readings) : null;
  const batches =
    fileReadings !== null ? fileBatches(fileReadings, options.perEnvelope) : simulatedBatches(options.simulate!, options.perEnvelope, options.seed);
  const total = fileReadings !== null ? Math.ceil(fileReadings.length / options.perEnvelope) : options.simulate!;
  const deadline = Date.now() + options.timeoutMs;

  const sdk = await import("./client.ts");
  let client: DeviceClient;
  try {
    client = await sdk.DeviceClient.connect({ url: mqttUrl, key, dataDir: options.dataDir, connectTimeoutMs: Math.min(options.timeoutMs, 30_000), tls });
  } catch (e) {
    if (e instanceof DeviceSideError && e.code === "JG_ERR_DEVICE_UNREGISTERED") fail(e.code, sdk.unregisteredDetail(key.deviceId, options.key));
    if (e instanceof DeviceSideError) fail(e.code, e.detail);
    throw e;
  }

  if (client.queued > 0) process.stderr.write(`${client.queued} envelopes left in ${options.dataDir} by an earlier run go first\n`);
  const sent = new Set<number>();
  const final = new Map<number, string>(); // seq → "receipt" or the error code that ended it
  const errors: Record<string, number> = {};
  let acked = 0;
  let receipts = 0;
  let unattributed = 0;
  const progress = progressLine(
    () => `sent ${sent.size}/${total} · acked ${acked} · receipts ${receipts} · errors ${Object.values(errors).reduce((a, b) => a + b, 0)}`,
  );
  client.on("acked", ({ seq }) => {
    if (sent.has(seq)) acked++;
    progress.update();
  });
  // Each envelope's answer is printed once, as it comes (QoS 1 may deliver one twice); those of
  // envelopes an earlier run left queued too.
  const told = new Set<number>();
  client.on("receipt", (r) => {
    if (!told.has(r.seq)) {
      told.add(r.seq);
      progress.note(formatReceipt(r, options.json === true), "stdout");
    }
    if (sent.has(r.seq) && !final.has(r.seq)) {
      final.set(r.seq, "receipt");
      receipts++;
    }
    progress.update();
  });
  client.on("deviceError", (e) => {
    errors[e.code] = (errors[e.code] ?? 0) + 1;
    if (NON_FINAL_CODES.has(e.code)) progress.note(`seq ${e.seq ?? "?"}: ${e.code}: ${e.detail}`);
    else if (e.seq === null || !told.has(e.seq)) {
      if (e.seq !== null) told.add(e.seq);
      progress.note(formatRefusal(e, options.json === true), "stdout");
    }
    if (e.seq === null) unattributed++;
    else if (sent.has(e.seq) && !final.has(e.seq) && !NON_FINAL_CODES.has(e.code)) final.set(e.seq, e.code);
    progress.update();
  });
  client.on("state", (s: DeviceClientState) => {
    if (s.state === "disconnected") progress.note(`disconnected (${s.reason}); reconnecting in ${s.retryInMs} ms`);
  });
  client.on("warning", (w) => progress.note(`${w.code}: ${w.detail}`));

  try {
    for (const batch of batches) {
      for (;;) {
        const result = client.send(options.kind, batch);
        if (result.ok) {
          sent.add(result.seq);
          break;
        }
        if (result.error.code !== "JG_ERR_QUEUE_FULL") fail(result.error.code, result.error.detail);
        // Back-pressure: the offline queue is full; wait for a PUBACK to make room.
        try {
          await once(client, "acked", { signal: AbortSignal.timeout(Math.max(1, deadline - Date.now())) });
        } catch {
          fail("JG_ERR_RPC_TIMEOUT", `offline queue full (${result.error.detail}) and nothing acknowledged before --timeout-ms`);
        }
      }
      progress.update();
      await yieldToEventLoop(); // let PUBACKs and receipts in between fsync'd sends
    }
    if (!(await client.drain(Math.max(1, deadline - Date.now()))))
      fail("JG_ERR_RPC_TIMEOUT", `${client.queued} envelopes not acknowledged (PUBACK) within --timeout-ms; they stay queued in ${options.dataDir}`);
    if (options.waitReceipts) {
      const allAnswered = () => [...sent].every((seq) => final.has(seq));
      while (!allAnswered() && Date.now() < deadline) {
        await nextAnswer(client, Math.min(1000, Math.max(1, deadline - Date.now())));
      }
    }
  } finally {
    progress.done();
    await client.close();
  }

  const unanswered = options.waitReceipts ? [...sent].filter((seq) => !final.has(seq)).length : 0;
  console.log(JSON.stringify({ deviceId: key.deviceId, sent: sent.size, acked, receipts, errors, ...(options.waitReceipts ? { unanswered } : {}) }));
  const refused = [...final.values()].filter((v) => v !== "receipt");
  if (refused.length > 0) fail(refused[0]!, `${refused.length} of ${sent.size} envelopes refused by the gateway`);
  if (unattributed > 0) fail(Object.keys(errors)[0]!, `${unattributed} errors the gateway could not tie to an envelope`);
  if (unanswered > 0) fail("JG_ERR_RPC_TIMEOUT", `${unanswered} of ${sent.size} envelopes without a receipt or error within --timeout-ms`);
}

const hex = (bytes: Uint8Array) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex");

/** A receipt as `publish` prints it: `receipt seq=… slot=… package=… block=…`, or a JSON line. */
export function formatReceipt(r: Receipt, json: boolean): string {
  if (json) return JSON.stringify({ receipt: { seq: r.seq, package: hex(r.packageHash), block: hex(r.blockHash), slot: r.slot } });
  return `receipt seq=${r.seq} slot=${r.slot} package=${hex(r.packageHash)} block=${hex(r.blockHash)}`;
}

/** A refusal as `publish` prints it: `refused seq=… JG_ERR_…: detail`, or a JSON line. */
export function formatRefusal(e: DeviceError, json: boolean): string {
  if (json) return JSON.stringify({ refused: { seq: e.seq, code: e.code, detail: e.detail } });
  return `refused seq=${e.seq ?? "?"} ${e.code}: ${e.detail}`;
}

function* fileBatches(readings: unknown[], perEnvelope: number): Generator<unknown[]> {
  for (let i = 0; i < readings.length; i += perEnvelope) yield readings.slice(i, i + perEnvelope);
}

function* simulatedBatches(envelopes: number, perEnvelope: number, seed: number): Generator<unknown[]> {
  const source = meterReadings(seed, Date.now());
  for (let e = 0; e < envelopes; e++) {
    const batch: unknown[] = [];
    for (let i = 0; i < perEnvelope; i++) batch.push(source.next().value);
    yield batch;
  }
}

interface RegisterOptions {
  key: string;
  ca?: string;
  kind?: (typeof DEVICE_KINDS)[number];
  from?: string;
  format?: "jsonl" | "csv";
  service?: string;
  household?: string;
  gateway?: string;
  dataDir: string;
  token?: string;
  wait?: boolean;
  timeoutMs: number;
  pollMs: number;
}

async function register(options: RegisterOptions): Promise<void> {
  if (options.from !== undefined) return registerFleet(options, options.from);
  if (options.kind === undefined) fail("JG_ERR_CLI_ARGUMENT", "give --kind (or --from FILE for a fleet)");
  const key = await readKey(options.key);
  const token = options.token ?? readOperatorToken(options.dataDir);
  const base = gatewayBase(options.gateway, options.dataDir);
  const headers = { authorization: `Bearer ${token}`, "content-type": "application/json" };
  const ca = options.ca === undefined ? undefined : readFileFor("--ca", options.ca);
  const answer = await gatewayRequest(`${base}/v1/devices`, {
    method: "POST",
    headers,
    body: JSON.stringify({ publicKey: toHex(key.publicKey), kind: options.kind, service: options.service, household: options.household }),
    ca,
  });
  if (answer.body.deviceId !== key.deviceId)
    fail("JG_ERR_RPC_REMOTE", `gateway answered deviceId ${String(answer.body.deviceId)}, the key's is ${key.deviceId}`);
  console.log(JSON.stringify(answer.body));
  if (!options.wait) return;

  const deadline = Date.now() + options.timeoutMs;
  let status = String(answer.body.status);
  for (;;) {
    if (status === "registered") return;
    if (Date.now() >= deadline) fail("JG_ERR_RPC_TIMEOUT", `device ${key.deviceId} still ${status} after ${options.timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, Math.min(options.pollMs, Math.max(1, deadline - Date.now()))));
    const polled = await gatewayRequest(`${base}/v1/devices/${key.deviceId}`, { method: "GET", headers: { authorization: headers.authorization }, ca });
    if (polled.body.status !== status) process.stderr.write(`device ${key.deviceId}: ${String(polled.body.status)}\n`);
    status = String(polled.body.status);
    if (status === "registered" || status === "failed") console.log(JSON.stringify(polled.body));
    if (status === "failed") {
      const code = typeof polled.body.code === "string" && /^JG_ERR_[A-Z0-9_]+$/.test(polled.body.code) ? polled.body.code : "JG_ERR_DEVICE_UNREGISTERED";
      fail(code, `registration of ${key.deviceId} failed${typeof polled.body.error === "string" ? `: ${polled.body.error}` : ""}`);
    }
  }
}

/** `register --from FILE` (./register-bulk.ts): the rows are checked here, then registered through the gateway's bulk route. */
async function registerFleet(options: RegisterOptions, from: string): Promise<void> {
  const [{ registerFromFile }, { deviceIdOf, fromHex }] = await Promise.all([import("./register-bulk.ts"), import("./envelope.ts")]);
  // The file is checked before the gateway is looked for: a bad file says so without one running.
  let base: string | null = null;
  let headers: Record<string, string> = {};
  let ca: Buffer | undefined;
  const connect = () => {
    if (base !== null) return base;
    const token = options.token ?? readOperatorToken(options.dataDir);
    headers = { authorization: `Bearer ${token}`, "content-type": "application/json" };
    ca = options.ca === undefined ? undefined : readFileFor("--ca", options.ca);
    base = gatewayBase(options.gateway, options.dataDir);
    return base;
  };
  await registerFromFile(
    {
      from,
      ...(options.format === undefined ? {} : { format: options.format }),
      ...(options.kind === undefined ? {} : { kind: options.kind }),
      ...(options.service === undefined ? {} : { service: options.service }),
      pollMs: options.pollMs,
      stallMs: options.timeoutMs,
    },
    {
      request: (path, init) =>
        gatewayRequest(`${connect()}${path}`, {
          method: init.method,
          headers,
          ...(init.body === undefined ? {} : { body: init.body }),
          ca,
          anyStatus: true,
          ...(init.timeoutMs === undefined ? {} : { timeoutMs: init.timeoutMs }),
        }),
      fail,
      progress: (render) => progressLine(render),
      deviceIdOfKey: (publicKeyHex) => deviceIdOf(fromHex(publicKeyHex)),
      print: (line) => console.log(line),
    },
  );
}

/** The endpoints of the gateway running on `dataDir`, or JG_ERR_NO_GATEWAY naming the flag that would do instead. */
function endpointsOf(dataDir: string, flag: string) {
  const read = readEndpointsFile(dataDir, flag);
  if (!read.ok) fail(read.code, read.detail);
  return read.endpoints;
}

/** The gateway's HTTP base URL: `--gateway`, else the one running on the data dir. */
function gatewayBase(gateway: string | undefined, dataDir: string): string {
  const url = gateway ?? endpointsOf(dataDir, "--gateway").http;
  const base = url.replace(/\/+$/, "");
  if (!/^https?:\/\/[^/]+$/.test(base)) fail("JG_ERR_CLI_ARGUMENT", `--gateway must be http(s)://host:port, got ${url}`);
  return base;
}

interface ReceiptsOptions {
  key: string;
  gateway?: string;
  ca?: string;
  dataDir: string;
  json?: boolean;
}

/** One settlement of the device's envelopes, as the ledger API's EntryView gives it (gateway/ledger/types.ts). */
interface SettledEntry {
  readonly id: number;
  readonly kind: string;
  readonly slot: number;
  readonly blockHash: string;
  readonly device: string | null;
  readonly seqs: readonly number[] | null;
  readonly packageHash: string | null;
}

/**
 * `device receipts`: the device's registration and the service's settled highest seq
 * (`GET /v1/devices/{id}`), then every settlement of its envelopes the ledger holds
 * (`GET /v1/entries?device=…`, newest first, paged by cursor), printed oldest first.
 */
async function receipts(options: ReceiptsOptions): Promise<void> {
  const key = await readKey(options.key);
  const base = gatewayBase(options.gateway, options.dataDir);
  const ca = options.ca === undefined ? undefined : readFileFor("--ca", options.ca);
  const device = (await gatewayRequest(`${base}/v1/devices/${key.deviceId}`, { method: "GET", headers: {}, ca })).body;
  const entries: SettledEntry[] = [];
  let before: number | null = null;
  let complete = false;
  for (let pages = 0; pages < RECEIPT_PAGES_MAX; pages++) {
    const query = `device=${key.deviceId}&limit=${ENTRIES_PAGE_LIMIT}${before === null ? "" : `&before=${before}`}`;
    const page = (await gatewayRequest(`${base}/v1/entries?${query}`, { method: "GET", headers: {}, ca, answerBytesMax: ENTRIES_ANSWER_BYTES_MAX })).body as {
      items?: unknown;
      next?: unknown;
    };
    if (!Array.isArray(page.items) || !(page.next === null || Number.isSafeInteger(page.next)))
      fail("JG_ERR_RPC_REMOTE", `${base}/v1/entries answered no page of entries`);
    for (const item of page.items as SettledEntry[])
      if (item.kind === "envelopes" && item.device === key.deviceId && Array.isArray(item.seqs)) entries.push(item);
    if (page.next === null) {
      complete = true;
      break;
    }
    before = page.next as number;
  }
  entries.reverse();
  const seqs = [...new Set(entries.flatMap((e) => e.seqs!))].sort((a, b) => a - b);
  const highest = typeof device.settledHighestSeq === "number" ? device.settledHighestSeq : null;
  const summary = {
    deviceId: key.deviceId,
    ...(typeof device.kind === "string" ? { kind: device.kind } : {}),
    ...(typeof device.service === "string" ? { service: device.service } : {}),
    ...(typeof device.status === "string" ? { status: device.status } : {}),
    settledHighestSeq: highest,
    settled: seqs.length,
    seqs: seqRanges(seqs),
    ...(complete ? {} : { incomplete: `stopped after ${RECEIPT_PAGES_MAX} pages of the ledger` }),
  };
  for (const e of entries) {
    const seen = { seqs: e.seqs, package: e.packageHash, block: e.blockHash, slot: e.slot, entry: e.id };
    console.log(options.json ? JSON.stringify(seen) : `settled seqs=${seqRanges(e.seqs!)} slot=${e.slot} package=${e.packageHash ?? "-"} block=${e.blockHash}`);
  }
  if (options.json) console.log(JSON.stringify(summary));
  else {
    const what = [summary.kind, summary.service].filter((s) => s !== undefined).join(" on ");
    console.log(
      `device ${key.deviceId}${what === "" ? "" : ` (${what})`}: the service's settled highest seq is ${highest ?? "unknown"}; the ledger lists ${seqs.length} settled seqs${seqs.length === 0 ? "" : `: ${summary.seqs}`}`,
    );
    if (!complete) process.stderr.write(`the list may be incomplete: ${summary.incomplete}\n`);
  }
}

/** A request to the gateway: its method, headers, JSON body, and the CA to trust for https:// (default: the system's). */
interface GatewayRequest {
  readonly method: "GET" | "POST";
  readonly headers: Record<string, string>;
  readonly body?: string;
  readonly ca?: Buffer | undefined;
  /** Largest answer read (default HTTP_ANSWER_BYTES_MAX). */
  readonly answerBytesMax?: number;
  /** Answer any status with its JSON object instead of failing on one outside 2xx (the bulk registration reads 503 and 404). */
  readonly anyStatus?: boolean;
  /** How long the answer may take (default HTTP_TIMEOUT_MS). */
  readonly timeoutMs?: number;
}

/**
 * One request to the gateway: a JSON object back on 2xx; otherwise fails with the code the gateway
 * gave (it uses the registry) or JG_ERR_RPC_REMOTE. node:http(s) rather than fetch: fetch takes no
 * CA of its own without the undici package, and a gateway with its own CA is the usual TLS setup.
 */
async function gatewayRequest(url: string, init: GatewayRequest): Promise<{ status: number; body: Record<string, unknown> }> {
  let response: { status: number; text: string };
  try {
    response = await new Promise((resolve, reject) => {
      const request = (url.startsWith("https:") ? httpsRequest : httpRequest)(
        url,
        { method: init.method, headers: init.headers, timeout: init.timeoutMs ?? HTTP_TIMEOUT_MS, ...(init.ca === undefined ? {} : { ca: init.ca }) },
        (res) => {
          const chunks: Buffer[] = [];
          let bytes = 0;
          const max = init.answerBytesMax ?? HTTP_ANSWER_BYTES_MAX;
          res.on("data", (c: Buffer) => {
            if (bytes < max) chunks.push(c);
            bytes += c.length;
          });
          res.on("end", () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString("utf8").slice(0, max) }));
          res.on("error", reject);
        },
      );
      request.on("timeout", () => request.destroy(new Error(`no answer within ${init.timeoutMs ?? HTTP_TIMEOUT_MS} ms`)));
      request.on("error", reject);
      request.end(init.body);
    });
  } catch (e) {
    fail("JG_ERR_RPC_CLOSED", `cannot reach the gateway at ${url}: ${(e as Error).message}`);
  }
  const text = response.text;
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  const isObject = typeof body === "object" && body !== null && !Array.isArray(body);
  const ok = response.status >= 200 && response.status < 300;
  if (!ok && !(init.anyStatus === true && isObject)) {
    const error = isObject ? (body as { error?: { code?: unknown }; code?: unknown }) : {};
    const given = typeof error.error?.code === "string" ? error.error.code : error.code;
    const code = typeof given === "string" && /^JG_ERR_[A-Z0-9_]+$/.test(given) ? given : "JG_ERR_RPC_REMOTE";
    fail(code, `gateway answered ${response.status} to ${init.method} ${url}: ${text.slice(0, 500)}`);
  }
  if (!isObject) fail("JG_ERR_RPC_REMOTE", `gateway answered ${response.status} with no JSON object: ${text.slice(0, 200)}`);
  return { status: response.status, body: body as Record<string, unknown> };
}

/** A file a flag names, read whole, or JG_ERR_CLI_ARGUMENT. */
function readFileFor(flag: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (e) {
    return fail("JG_ERR_CLI_ARGUMENT", `${flag} ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

function readOperatorToken(dataDir: string): string {
  const path = join(dataDir, "operator-token");
  try {
    const token = readFileSync(path, "utf8").trim();
    if (token.length === 0) fail("JG_ERR_OPERATOR_TOKEN", `${path} is empty`);
    return token;
  } catch (e) {
    if (e instanceof CommanderError) throw e;
    return fail(
      "JG_ERR_OPERATOR_TOKEN",
      `cannot read ${path} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); give --data-dir of the gateway or --token`,
    );
  }
}

async function readKey(path: string): Promise<DeviceKey> {
  const { keyFromJson } = await import("./keys.ts");
  try {
    return keyFromJson(JSON.parse(readFileSync(path, "utf8")));
  } catch (e) {
    const missing = (e as NodeJS.ErrnoException).code === "ENOENT" ? " (jamgate device keygen makes one there; --key names another)" : "";
    return fail("JG_ERR_CLI_ARGUMENT", `key file ${path}: ${(e as Error).message}${missing}`);
  }
}

/** Reads a JSON-lines file: one JSON value per non-blank line. */
function readReadings(path: string): unknown[] {
  let text: string;
  try {
    const size = statSync(path).size;
    if (size > READINGS_FILE_BYTES_MAX) fail("JG_ERR_CLI_ARGUMENT", `${path} is ${size} bytes > ${READINGS_FILE_BYTES_MAX}; split it`);
    text = readFileSync(path, "utf8");
  } catch (e) {
    if (e instanceof CommanderError) throw e;
    return fail("JG_ERR_CLI_ARGUMENT", `cannot read ${path}: ${(e as Error).message}`);
  }
  const readings: unknown[] = [];
  text.split("\n").forEach((line, index) => {
    if (line.trim() === "") return;
    try {
      readings.push(JSON.parse(line));
    } catch (e) {
      fail("JG_ERR_CLI_ARGUMENT", `${path}:${index + 1}: not JSON (${(e as Error).message})`);
    }
  });
  if (readings.length === 0) fail("JG_ERR_CLI_ARGUMENT", `${path} holds no readings`);
  return readings;
}

/**
 * A progress line on stderr: rewritten in place on a terminal, at most once a second otherwise.
 * `note` prints a line above it, on stderr or stdout (a receipt), clearing the line first when
 * both streams are the same terminal.
 */
function progressLine(render: () => string): { update(): void; note(text: string, stream?: "stderr" | "stdout"): void; done(): void } {
  const tty = process.stderr.isTTY === true;
  const periodMs = tty ? 100 : 1000;
  let last = 0;
  const write = () => {
    last = Date.now();
    process.stderr.write(tty ? `\r${render()}\x1b[K` : `${render()}\n`);
  };
  return {
    update: () => {
      if (Date.now() - last >= periodMs) write();
    },
    note: (text, stream = "stderr") => {
      if (tty) process.stderr.write("\r\x1b[K");
      if (stream === "stdout") console.log(text);
      else process.stderr.write(`${text}\n`);
    },
    done: () => {
      write();
      if (tty) process.stderr.write("\n");
    },
  };
}

/**
 * Resolves at the client's next receipt or refusal, or after `ms`, and leaves no listener behind
 * (a bare `once` per wait left one for each event that did not come: past 10, Node warned).
 */
export async function nextAnswer(client: NodeJS.EventEmitter, ms: number): Promise<void> {
  const abort = new AbortController();
  const { signal } = abort;
  const quietly = (p: Promise<unknown>) =>
    p.then(
      () => undefined,
      () => undefined,
    );
  try {
    await Promise.race([
      quietly(once(client, "receipt", { signal })),
      quietly(once(client, "deviceError", { signal })),
      quietly(sleep(ms, undefined, { signal })),
    ]);
  } finally {
    abort.abort();
  }
}
