/**
 * `jamgate device register --from FILE`: registers a fleet from a file of devices, through the
 * gateway's `POST /v1/devices/bulk` (docs/protocol.md, "Registering a fleet").
 *
 * The file is JSON lines (one row object a line: devices/protocol/registration-rows.ts) or CSV
 * (a header line naming the columns, then one row a line; `.csv`, or `--format csv`). Every row is
 * checked before anything is sent — its shape, its `deviceId` against its key, no device twice —
 * and a file with a bad row registers nothing: each bad row is printed as `FILE:LINE: CODE: reason`
 * and the command ends with JG_ERR_DEVICE_ROWS. Otherwise the rows go in requests of
 * BULK_REGISTRATIONS_MAX, as many at once as the gateway takes (it answers JG_ERR_QUEUE_FULL past
 * its registrations in flight, and the next request waits until earlier ones settle), each
 * followed by polling its batch until every row is registered or failed; a progress line on
 * stderr, the totals as one JSON line on stdout. A device already registered is counted so, not
 * failed: the same file can be given again after an interrupted run. A batch the gateway no longer
 * knows (it restarted) is sent again. Ends with the first failure's code when any row failed.
 */
import { createReadStream, statSync } from "node:fs";
import { createInterface } from "node:readline";
import type { DeviceKind } from "./protocol/device-kinds.ts";
import { BULK_REGISTRATIONS_MAX, checkRegistrationRow, type RegistrationRow, type RowProblem } from "./protocol/registration-rows.ts";

/**
 * Rows a file may hold: 1,000,000 is ten times the fleet the gateway is measured with
 * (bench/fleet.ts), ~200 MB of rows in memory, checked whole before the first is sent.
 */
export const DEVICE_FILE_ROWS_MAX = 1_000_000;
/** The largest file read: DEVICE_FILE_ROWS_MAX rows of ~260 bytes (every field given). */
export const DEVICE_FILE_BYTES_MAX = 256 * 1024 * 1024;
/** Bad rows printed (the count says how many there were). */
const BAD_ROWS_SHOWN_MAX = 20;
/** Failed registrations printed and kept for the summary. */
const FAILURES_SHOWN_MAX = 20;
/** Times one request's rows are sent again because the gateway no longer knew its batch (a restart). */
const RESENDS_MAX = 3;
/** One bulk request may take a while: the gateway looks every row up before it answers (~0.2 ms each, more on a busy node). */
export const BULK_REQUEST_TIMEOUT_MS = 60_000;

export type DeviceFileFormat = "jsonl" | "csv";

export interface BulkRegisterOptions {
  readonly from: string;
  readonly format?: DeviceFileFormat;
  /** The kind of rows that give none. */
  readonly kind?: DeviceKind;
  /** The service of rows that name none. */
  readonly service?: string;
  /** Poll period of the batches' progress. */
  readonly pollMs: number;
  /** Give up when nothing moved (no row registered or failed, no request taken) for this long. */
  readonly stallMs: number;
}

/** What the command needs of devices/cli.ts: its request to the gateway, its coded exit, its progress line, and BLAKE2b for ids. */
export interface BulkRegisterIo {
  request(
    path: string,
    init: { readonly method: "GET" | "POST"; readonly body?: string; readonly timeoutMs?: number },
  ): Promise<{ readonly status: number; readonly body: Record<string, unknown> }>;
  fail(code: string, detail: string): never;
  progress(render: () => string): { update(): void; note(text: string): void; done(): void };
  deviceIdOfKey(publicKeyHex: string): string;
  print(line: string): void;
}

interface Batch {
  readonly chunk: number;
  readonly id: string;
}

interface BatchStatus {
  readonly rows: number;
  readonly registered: number;
  readonly alreadyRegistered: number;
  readonly pending: number;
  readonly failed: number;
  readonly packages: readonly string[];
  readonly failures: readonly { readonly deviceId: string; readonly code: string; readonly detail: string }[];
}

/** A CSV line's fields: the values rows hold (hex, kinds, service names) never contain a comma or a quote, so a quote is refused rather than parsed. */
function csvFields(line: string): string[] | null {
  if (line.includes('"')) return null;
  return line.split(",").map((f) => f.trim());
}

/** Reads and checks every row of the file; the rows, or the bad ones (`FILE:LINE: CODE: reason`) and how many. */
export async function readDeviceFile(
  options: Pick<BulkRegisterOptions, "from" | "format" | "kind" | "service">,
  io: Pick<BulkRegisterIo, "fail" | "deviceIdOfKey">,
): Promise<{ readonly rows: RegistrationRow[]; readonly bad: readonly string[]; readonly badCount: number }> {
  const path = options.from;
  let size: number;
  try {
    size = statSync(path).size;
  } catch (e) {
    return io.fail("JG_ERR_CLI_ARGUMENT", `--from ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  if (size > DEVICE_FILE_BYTES_MAX) io.fail("JG_ERR_CLI_ARGUMENT", `--from ${path} is ${size} bytes > ${DEVICE_FILE_BYTES_MAX}; split it`);
  const format = options.format ?? (path.toLowerCase().endsWith(".csv") ? "csv" : "jsonl");
  const rows: RegistrationRow[] = [];
  const bad: string[] = [];
  let badCount = 0;
  const refuse = (line: number, problem: RowProblem) => {
    badCount++;
    if (bad.length < BAD_ROWS_SHOWN_MAX) bad.push(`${path}:${line}: ${problem.code}: ${problem.message}`);
  };
  const lineOfKey = new Map<string, number>();
  let header: string[] | null = null;
  let lineNumber = 0;
  const lines = createInterface({ input: createReadStream(path, "utf8"), crlfDelay: Number.POSITIVE_INFINITY });
  for await (const text of lines) {
    lineNumber++;
    if (text.trim() === "") continue;
    let value: unknown;
    if (format === "csv") {
      const fields = csvFields(text);
      if (header === null) {
        if (fields === null || !fields.includes("publicKey"))
          io.fail("JG_ERR_CLI_ARGUMENT", `${path}:${lineNumber}: a CSV file starts with a header naming its columns, publicKey among them`);
        header = fields;
        continue;
      }
      if (fields === null || fields.length !== header.length) {
        refuse(lineNumber, {
          code: "JG_ERR_DEVICE_ROW",
          message: fields === null ? "a quoted field" : `${fields.length} fields, the header names ${header.length}`,
        });
        continue;
      }
      value = Object.fromEntries(header.flatMap((name, i) => (fields[i] === "" ? [] : [[name, fields[i]]])));
    } else {
      try {
        value = JSON.parse(text);
      } catch (e) {
        refuse(lineNumber, { code: "JG_ERR_DEVICE_ROW", message: `not JSON (${(e as Error).message})` });
        continue;
      }
    }
    if (typeof value === "object" && value !== null && !Array.isArray(value)) {
      const row = value as Record<string, unknown>;
      if (row.kind === undefined && options.kind !== undefined) row.kind = options.kind;
      if (row.service === undefined && options.service !== undefined) row.service = options.service;
    }
    const checked = checkRegistrationRow(value);
    if (!checked.ok) {
      refuse(lineNumber, checked.problem);
      continue;
    }
    const row = checked.row;
    if (row.deviceId !== undefined && row.deviceId !== io.deviceIdOfKey(row.publicKey)) {
      refuse(lineNumber, { code: "JG_ERR_DEVICE_ROW", message: `deviceId ${row.deviceId} is not its key's (${io.deviceIdOfKey(row.publicKey)})` });
      continue;
    }
    const earlier = lineOfKey.get(row.publicKey);
    if (earlier !== undefined) {
      refuse(lineNumber, { code: "JG_ERR_DEVICE_ROW", message: `the same publicKey as line ${earlier}` });
      continue;
    }
    lineOfKey.set(row.publicKey, lineNumber);
    if (rows.length >= DEVICE_FILE_ROWS_MAX) io.fail("JG_ERR_CLI_ARGUMENT", `${path} holds more than ${DEVICE_FILE_ROWS_MAX} rows; split it`);
    rows.push(row);
  }
  return { rows, bad, badCount };
}

/** Registers every row of the file and prints the totals; see the module's comment. */
export async function registerFromFile(options: BulkRegisterOptions, io: BulkRegisterIo): Promise<void> {
  const startedAtMs = Date.now();
  const { rows, bad, badCount } = await readDeviceFile(options, io);
  if (badCount > 0) {
    const progress = io.progress(() => "");
    for (const line of bad) progress.note(line);
    if (badCount > bad.length) progress.note(`… and ${badCount - bad.length} more bad rows`);
    io.fail("JG_ERR_DEVICE_ROWS", `${badCount} of ${rows.length + badCount} rows of ${options.from} are bad (first: ${bad[0]}); nothing was registered`);
  }
  if (rows.length === 0) io.fail("JG_ERR_CLI_ARGUMENT", `${options.from} holds no rows`);

  const chunks: RegistrationRow[][] = [];
  for (let i = 0; i < rows.length; i += BULK_REGISTRATIONS_MAX) chunks.push(rows.slice(i, i + BULK_REGISTRATIONS_MAX));
  const toSend: number[] = chunks.map((_, i) => i);
  const resends = new Array<number>(chunks.length).fill(0);
  const outstanding: Batch[] = [];
  /** The last status of each chunk's batch (settled ones stay as they ended). */
  const statuses = new Array<BatchStatus | null>(chunks.length).fill(null);
  const packages = new Set<string>();
  const failures: { deviceId: string; code: string; detail: string }[] = [];
  const totals = () => {
    let registered = 0;
    let alreadyRegistered = 0;
    let failed = 0;
    for (const s of statuses) {
      registered += s?.registered ?? 0;
      alreadyRegistered += s?.alreadyRegistered ?? 0;
      failed += s?.failed ?? 0;
    }
    return { registered, alreadyRegistered, failed };
  };
  const progress = io.progress(() => {
    const t = totals();
    const seconds = (Date.now() - startedAtMs) / 1000;
    const pending = rows.length - t.registered - t.failed;
    return `registered ${t.registered.toLocaleString("en-US")}/${rows.length.toLocaleString("en-US")} · pending ${pending.toLocaleString("en-US")} · failed ${t.failed} · already registered ${t.alreadyRegistered.toLocaleString("en-US")} · packages ${packages.size} · ${Math.round((t.registered - t.alreadyRegistered) / Math.max(seconds, 0.001)).toLocaleString("en-US")}/s`;
  });

  let movedAtMs = Date.now();
  let lastEnded = 0;
  try {
    while (toSend.length > 0 || outstanding.length > 0) {
      // Send while the gateway takes them: JG_ERR_QUEUE_FULL means its registrations in flight are at their bound.
      while (toSend.length > 0) {
        const chunk = toSend[0]!;
        const answer = await io.request("/v1/devices/bulk", {
          method: "POST",
          body: JSON.stringify({ devices: chunks[chunk] }),
          timeoutMs: BULK_REQUEST_TIMEOUT_MS,
        });
        if (answer.status === 503 && (answer.body.error as { code?: unknown } | undefined)?.code === "JG_ERR_QUEUE_FULL") break;
        if (answer.status !== 202) {
          const error = (answer.body.error ?? {}) as { code?: unknown; message?: unknown; rows?: { index: number; code: string; message: string }[] };
          // The gateway checks rows as the CLI did; a row it refuses (a kind no service of its takes, a service's own check) is shown by its line.
          for (const row of error.rows?.slice(0, BAD_ROWS_SHOWN_MAX) ?? [])
            progress.note(`${options.from}: row ${chunk * BULK_REGISTRATIONS_MAX + row.index + 1} of the file: ${row.code}: ${row.message}`);
          const code = typeof error.code === "string" && /^JG_ERR_[A-Z0-9_]+$/.test(error.code) ? error.code : "JG_ERR_RPC_REMOTE";
          io.fail(
            code,
            `the gateway answered ${answer.status}: ${typeof error.message === "string" ? error.message : JSON.stringify(answer.body).slice(0, 300)}`,
          );
        }
        toSend.shift();
        outstanding.push({ chunk, id: String(answer.body.batch) });
        movedAtMs = Date.now();
      }
      await new Promise((r) => setTimeout(r, options.pollMs));
      for (const batch of [...outstanding]) {
        const answer = await io.request(`/v1/devices/bulk/${batch.id}`, { method: "GET" });
        if (answer.status === 404) {
          // Forgotten (a restart, or many other batches since): its rows go again; registered ones count as such.
          outstanding.splice(outstanding.indexOf(batch), 1);
          if (++resends[batch.chunk]! > RESENDS_MAX) io.fail("JG_ERR_NOT_FOUND", `the gateway lost batch ${batch.id} ${RESENDS_MAX} times`);
          progress.note(`batch ${batch.id} is no longer known to the gateway; its ${chunks[batch.chunk]!.length} rows go again`);
          toSend.unshift(batch.chunk);
          continue;
        }
        if (answer.status !== 200)
          io.fail("JG_ERR_RPC_REMOTE", `GET /v1/devices/bulk/${batch.id} answered ${answer.status}: ${JSON.stringify(answer.body).slice(0, 300)}`);
        const status = answer.body as unknown as BatchStatus;
        statuses[batch.chunk] = status;
        for (const hash of status.packages) packages.add(hash);
        if (status.pending === 0) {
          outstanding.splice(outstanding.indexOf(batch), 1);
          for (const f of status.failures) {
            if (failures.length < FAILURES_SHOWN_MAX) {
              failures.push(f);
              progress.note(`device ${f.deviceId}: ${f.code}: ${f.detail}`);
            }
          }
        }
      }
      const t = totals();
      if (t.registered + t.failed !== lastEnded) {
        lastEnded = t.registered + t.failed;
        movedAtMs = Date.now();
      }
      progress.update();
      if (Date.now() - movedAtMs > options.stallMs)
        io.fail("JG_ERR_RPC_TIMEOUT", `no registration ended and no request was taken for ${options.stallMs} ms (${rows.length - lastEnded} rows not ended)`);
    }
  } finally {
    progress.done();
  }
  const t = totals();
  io.print(
    JSON.stringify({
      rows: rows.length,
      registered: t.registered,
      alreadyRegistered: t.alreadyRegistered,
      failed: t.failed,
      packages: packages.size,
      seconds: Number(((Date.now() - startedAtMs) / 1000).toFixed(1)),
      failures,
    }),
  );
  if (t.failed > 0)
    io.fail(failures[0]?.code ?? "JG_ERR_DEVICE_UNREGISTERED", `${t.failed} of ${rows.length} registrations failed (first: device ${failures[0]?.deviceId})`);
}
