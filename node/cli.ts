/**
 * `jamgate node …`: run the embedded node, or replay its chain. The genesis services are given
 * by the caller (scripts/cli.ts), so node/ stays free of any particular service. The node itself
 * is loaded when a command runs: every `jamgate` command loads this module for its flags, and the
 * node's modules cost about a second of CPU to load (measured: `node --import tsx -e
 * "await import('./node/node.ts')"`), which a `jamgate device …` command never needs.
 */
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { createSecureContext } from "node:tls";
import { join } from "node:path";
import { type Command, CommanderError, Option } from "commander";
import type { GenesisService } from "./chain/genesis.ts";
import type { ChainName } from "./chain/params.ts";
import { DEFAULT_DA_MAX_BYTES, DEFAULT_RETENTION_SLOTS } from "./availability/limits.ts";
import { JamgateError } from "../devices/protocol/errors.ts";
import { integerIn } from "../devices/protocol/cli-args.ts";
import { toHex } from "../devices/protocol/hex.ts";
import type { TlsMaterial } from "./net/servers.ts";
import { type LogOptions, logFormatOption, logLevelOption, openLogger } from "./cli-log.ts";

export const DEFAULT_DATA_DIR = ".jamgate-node";
export const DEFAULT_RPC_PORT = 19800;
export const DEFAULT_SLOT_MS = 6000;

/** Exit code of a command line the program cannot take (a usage error, JG_ERR_CLI_ARGUMENT): 2, as POSIX utilities use it, so a script tells it from a refusal or failure (1). */
export const EXIT_BAD_COMMAND_LINE = 2;

/** commander's codes for a command line it could not take. */
const COMMANDER_USAGE_CODES: ReadonlySet<string> = new Set([
  "commander.invalidArgument",
  "commander.missingMandatoryOptionValue",
  "commander.optionMissingArgument",
  "commander.missingArgument",
  "commander.unknownOption",
  "commander.unknownCommand",
  "commander.excessArguments",
  "commander.conflictingOption",
]);

/** Whether an error ending a command is a bad command line: commander's usage errors and JG_ERR_CLI_ARGUMENT (help and --version are not). */
export function isBadCommandLine(error: CommanderError | JamgateError): boolean {
  if (error instanceof CommanderError) return error.exitCode !== 0 && (COMMANDER_USAGE_CODES.has(error.code) || error.code === "JG_ERR_CLI_ARGUMENT");
  return error.code === "JG_ERR_CLI_ARGUMENT";
}

interface StartOptions extends LogOptions {
  dataDir: string;
  rpcPort: number;
  rpcHost: string;
  authorize: string[];
  tlsCert?: string;
  tlsKey?: string;
  slotMs: number;
  chain: ChainName;
  refineTimeoutMs: number;
  daRetentionSlots: number;
  daMaxBytes: number;
}

/** A flag's file read whole, or JG_ERR_CLI_ARGUMENT naming the flag. */
export function readFlagFile(flag: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (e) {
    throw new JamgateError("JG_ERR_CLI_ARGUMENT", `${flag} ${path}: ${(e as Error).message}`);
  }
}

/**
 * Reads the PEM files of `--tls-cert`, `--tls-key` and `--tls-client-ca` and checks that they make
 * a TLS context (the key matches the certificate), so a bad file is a clear JG_ERR_CLI_ARGUMENT at
 * start, not a failure at the first handshake. Null when neither certificate nor key is given.
 */
export function loadTlsMaterial(files: {
  readonly cert?: string | undefined;
  readonly key?: string | undefined;
  readonly clientCa?: string | undefined;
}): TlsMaterial | null {
  if (files.cert === undefined && files.key === undefined) {
    if (files.clientCa !== undefined) throw new JamgateError("JG_ERR_CLI_ARGUMENT", "--tls-client-ca needs --tls-cert and --tls-key");
    return null;
  }
  if (files.cert === undefined || files.key === undefined) throw new JamgateError("JG_ERR_CLI_ARGUMENT", "--tls-cert and --tls-key go together");
  const material: TlsMaterial = {
    cert: readFlagFile("--tls-cert", files.cert),
    key: readFlagFile("--tls-key", files.key),
    clientCa: files.clientCa === undefined ? null : readFlagFile("--tls-client-ca", files.clientCa),
  };
  try {
    createSecureContext({ cert: material.cert, key: material.key, ...(material.clientCa ? { ca: material.clientCa } : {}) });
  } catch (e) {
    throw new JamgateError(
      "JG_ERR_CLI_ARGUMENT",
      `--tls-cert ${files.cert} and --tls-key ${files.key} are not a PEM certificate and its key: ${(e as Error).message}`,
    );
  }
  return material;
}

/**
 * Lifecycle of a long-running command: SIGINT or SIGTERM stops it cleanly (once) and exits 0; an
 * uncaught exception, a bug, exits 1 at once rather than leaving the process hung (LMDB's write
 * thread would keep it alive). What was committed to LMDB is there on restart.
 */
export function runUntilSignal(log: { info(o: object, m: string): void; fatal(o: object, m: string): void }, stop: () => Promise<void>): void {
  let stopping = false;
  const onSignal = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, "stopping");
    await stop();
    log.info({}, "stopped");
    process.exit(0);
  };
  process.on("SIGINT", () => void onSignal("SIGINT"));
  process.on("SIGTERM", () => void onSignal("SIGTERM"));
  process.on("uncaughtException", (error) => {
    log.fatal({ err: error }, "uncaught exception: exiting");
    process.exit(1);
  });
}

/**
 * The data dirs of `jamgate start`, as `node replay` needs to know them: that command keeps the
 * node's dir inside its own, with a genesis made from the data dir's gateway key and market.
 * Given by the caller (scripts/cli.ts), so node/ stays free of the gateway and its services.
 */
export interface EmbeddingDataDirs {
  /** `jamgate start`'s default data dir. */
  readonly defaultDataDir: string;
  /** For a `jamgate start` data dir, its node's dir and genesis, read without creating anything; null for any other dir. */
  chainOf(dataDir: string): Promise<{ readonly nodeDir: string; readonly services: GenesisService[] } | null>;
}

/**
 * The node dir `node replay` replays and its genesis: a `jamgate start` data dir's node/ with that
 * command's genesis, or else `dataDir` itself as `node start`'s. Without `--data-dir`: `jamgate
 * start`'s default dir if it exists (the README's main command), else `node start`'s. A dir that
 * does not exist or holds no chain is refused (JG_ERR_NO_CHAIN) before anything is opened, so
 * nothing is made there: JamNode.open would make the dir and write a genesis into it.
 */
async function replayTarget(
  dataDir: string | undefined,
  services: (authorizedKeys: readonly Uint8Array[]) => GenesisService[],
  embedding: EmbeddingDataDirs,
): Promise<{ dataDir: string; nodeDir: string; services: GenesisService[] }> {
  const dir = dataDir ?? (existsSync(embedding.defaultDataDir) ? embedding.defaultDataDir : DEFAULT_DATA_DIR);
  const embedded = existsSync(dir) ? await embedding.chainOf(dir) : null;
  const target = embedded === null ? { dataDir: dir, nodeDir: dir, services: nodeStartGenesis(dir, services) } : { dataDir: dir, ...embedded };
  const { Store } = await import("./storage/store.ts");
  if ((await Store.genesisAt(target.nodeDir)) === null) {
    const searched = dataDir === undefined ? ` (without --data-dir: the first of ${embedding.defaultDataDir} and ${DEFAULT_DATA_DIR} that exists)` : "";
    throw new JamgateError(
      "JG_ERR_NO_CHAIN",
      `${existsSync(dir) ? `${dir} holds no chain` : `${dir} does not exist`}${searched}: give --data-dir the data dir of "jamgate start" or of "jamgate node start"`,
    );
  }
  return target;
}

/**
 * The genesis `node start` made in `dataDir`, from the keys it recorded; [] when the dir holds no
 * record (nor a chain, which replay then says), so nothing is read from a dir that is not a node's.
 */
function nodeStartGenesis(dataDir: string, services: (authorizedKeys: readonly Uint8Array[]) => GenesisService[]): GenesisService[] {
  const keys = existsSync(dataDir) ? recordedAuthorizedKeys(dataDir) : null;
  return keys === null ? [] : services(keys);
}

/** The file in a `node start` data dir naming the keys its genesis authorized, one hex public key a line: written at the chain's first start, read by later starts and by replay. */
export const AUTHORIZED_KEYS_FILE = "authorized-keys";
/** The node's RPC token in its data dir (0600): state-changing JIP-2 methods need it. */
export const RPC_TOKEN_FILE = "rpc-token";

/**
 * A key given to `--authorize`: 64 hex digits of an Ed25519 public key, or a path to a gateway key
 * file (its 32-byte seed in hex, as `jamgate start` keeps it in `gateway-key`) or to a data dir
 * holding one; the public key is derived from it.
 */
export async function authorizedKeyOf(value: string): Promise<Uint8Array> {
  const text = value.trim();
  if (/^[0-9a-fA-F]{64}$/.test(text)) return fromHexKey(text);
  let path = text;
  if (existsSync(path) && statSync(path).isDirectory()) path = join(path, "gateway-key");
  if (!existsSync(path))
    throw new JamgateError(
      "JG_ERR_CLI_ARGUMENT",
      `--authorize ${value}: neither a hex public key (64 digits) nor a gateway key file or a data dir holding one`,
    );
  const seed = readFileSync(path, "utf8").trim();
  if (!/^[0-9a-fA-F]{64}$/.test(seed)) throw new JamgateError("JG_ERR_CLI_ARGUMENT", `--authorize ${value}: ${path} does not hold a 32-byte key seed in hex`);
  const { keyPairFromSeed } = await import("./crypto/ed25519.ts"); // sodium-native: loaded when a command needs it, not for every command's flags
  return keyPairFromSeed(fromHexKey(seed)).publicKey;
}

function fromHexKey(hex: string): Uint8Array {
  return Uint8Array.from(Buffer.from(hex, "hex"));
}

/** The keys recorded in a node data dir's AUTHORIZED_KEYS_FILE, or null without one. */
export function recordedAuthorizedKeys(dataDir: string): Uint8Array[] | null {
  const path = join(dataDir, AUTHORIZED_KEYS_FILE);
  if (!existsSync(path)) return null;
  const lines = readFileSync(path, "utf8")
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "");
  if (lines.length === 0 || !lines.every((l) => /^[0-9a-f]{64}$/.test(l)))
    throw new JamgateError("JG_ERR_GENESIS", `${path} is damaged: it should hold one hex public key a line`);
  return lines.map(fromHexKey);
}

/**
 * The keys the genesis of the chain in `dataDir` authorizes: those recorded there, or for a new
 * chain the ones given (then recorded, so the genesis is the same at every start and for replay).
 * Given keys that differ from the recorded ones would be another genesis: JG_ERR_GENESIS.
 */
async function authorizedKeysFor(dataDir: string, given: readonly string[]): Promise<Uint8Array[]> {
  const recorded = recordedAuthorizedKeys(dataDir);
  const keys: Uint8Array[] = [];
  for (const value of given) keys.push(await authorizedKeyOf(value));
  if (recorded !== null) {
    const same = keys.length === 0 || (keys.length === recorded.length && keys.every((k, i) => toHex(k) === toHex(recorded[i]!)));
    if (!same)
      throw new JamgateError(
        "JG_ERR_GENESIS",
        `the chain in ${dataDir} authorized ${recorded.map(toHex).join(", ")} at genesis; --authorize cannot change that (use another --data-dir for another genesis)`,
      );
    return recorded;
  }
  if (keys.length === 0) {
    throw new JamgateError(
      "JG_ERR_CLI_ARGUMENT",
      `a new chain needs --authorize <key>: the public key of the gateway that will submit to it (jamgate start logs it as gatewayKey), or the path of its data dir`,
    );
  }
  const { makePrivateDir } = await import("./storage/data-dir.ts");
  makePrivateDir(dataDir);
  writeFileSync(join(dataDir, AUTHORIZED_KEYS_FILE), `${keys.map(toHex).join("\n")}\n`, { mode: 0o600, flag: "wx" });
  return keys;
}

export function registerNodeCommands(
  program: Command,
  services: (authorizedKeys: readonly Uint8Array[]) => GenesisService[],
  embedding: EmbeddingDataDirs,
): void {
  const node = program.command("node").description("the embedded JAM node");
  node
    .command("start")
    .description("run the node: author a block every slot and serve JIP-2 JSON-RPC over WebSocket")
    .option("--data-dir <dir>", "where blocks and state are kept (LMDB)", DEFAULT_DATA_DIR)
    .option("--rpc-port <port>", "JIP-2 WebSocket port (0 picks a free one)", integerIn(0, 65_535), DEFAULT_RPC_PORT)
    .option("--rpc-host <host>", "address the RPC server listens on (without the RPC token, only loopback clients may read)", "127.0.0.1")
    .option(
      "--authorize <key>",
      "a key that may submit work packages, for a new chain: hex public key, or a gateway key file or data dir (repeat for more)",
      (value: string, previous: string[]) => [...previous, value],
      [] as string[],
    )
    .option("--tls-cert <file>", "PEM certificate (chain): serve the RPC as wss://")
    .option("--tls-key <file>", "PEM private key of --tls-cert")
    .option("--slot-ms <ms>", "slot period P in milliseconds", integerIn(10, 3_600_000), DEFAULT_SLOT_MS)
    .addOption(new Option("--chain <name>", "chain spec").choices(["tiny", "full"]).default("tiny"))
    .option(
      "--refine-timeout-ms <ms>",
      "cap on one refine task's wall-clock time from submission; below it each task stops at the bound its declared gas allows (500 ms + 10 ns per gas)",
      integerIn(10, 600_000),
      10_000,
    )
    .option("--da-retention-slots <slots>", "slots the validators keep a package's erasure-coded chunks", integerIn(16, 10_000_000), DEFAULT_RETENTION_SLOTS)
    .option(
      "--da-max-bytes <bytes>",
      "bound on stored chunk bytes; the oldest packages are pruned past it",
      integerIn(1024 ** 2, Number.MAX_SAFE_INTEGER),
      DEFAULT_DA_MAX_BYTES,
    )
    .addOption(logLevelOption())
    .addOption(logFormatOption())
    .action(async (options: StartOptions) => {
      const log = await openLogger(options, { component: "node" });
      const tls = loadTlsMaterial({ cert: options.tlsCert, key: options.tlsKey });
      const authorizedKeys = await authorizedKeysFor(options.dataDir, options.authorize);
      const [{ NodeThread, endProcessOnExit }, { startRpcServer }, { secretFile }] = await Promise.all([
        import("./thread/host.ts"),
        import("./rpc/server.ts"),
        import("./storage/data-dir.ts"),
      ]);
      // The node (intake, chunks, blocks) on a thread of its own and the JIP-2 server on this one:
      // decoding a gateway's 13 MB package from JSON, answering reads and pushing status events
      // never delays a block, and a block never delays an answer (BENCHMARKS.md §13).
      const jamNode = await NodeThread.open(
        {
          dataDir: options.dataDir,
          chain: options.chain,
          slotMs: options.slotMs,
          refineTimeoutMs: options.refineTimeoutMs,
          daRetentionSlots: options.daRetentionSlots,
          daMaxBytes: options.daMaxBytes,
          services: services(authorizedKeys),
        },
        {
          logger: log,
          // Without its node thread the process serves nothing: end it (a supervisor restarts it on its data dir).
          onExit: endProcessOnExit(log),
        },
      );
      // Made once the node holds its data dir's lock.
      const token = secretFile(join(options.dataDir, RPC_TOKEN_FILE), () => `${randomBytes(32).toString("hex")}\n`);
      const rpc = await startRpcServer(jamNode, { port: options.rpcPort, host: options.rpcHost, log, token, tls });
      const best = await jamNode.bestBlock();
      log.info(
        {
          dataDir: options.dataDir,
          chain: options.chain,
          slotMs: options.slotMs,
          rpc: `${tls === null ? "ws" : "wss"}://${options.rpcHost}:${rpc.port}`,
          rpcToken: join(options.dataDir, RPC_TOKEN_FILE),
          authorizedKeys: authorizedKeys.map(toHex),
          bestSlot: best.slot,
          bestHash: toHex(best.headerHash),
          nodeThreads: jamNode.threadIds,
        },
        "node started",
      );
      runUntilSignal(log, async () => {
        await rpc.close();
        await jamNode.stop();
      });
    });
  node
    .command("replay")
    .description("re-import every stored block from genesis and check each state root")
    .option(
      "--data-dir <dir>",
      `a data dir of "jamgate start" or of "jamgate node start" (default: ${embedding.defaultDataDir} if it exists, else ${DEFAULT_DATA_DIR})`,
    )
    .addOption(new Option("--chain <name>", "chain spec").choices(["tiny", "full"]).default("tiny"))
    .action(async (options: { dataDir?: string; chain: ChainName }) => {
      const target = await replayTarget(options.dataDir, services, embedding);
      const { JamNode } = await import("./node.ts");
      const jamNode = await JamNode.open({ dataDir: target.nodeDir, chain: options.chain, services: target.services });
      try {
        const total = jamNode.bestSlot;
        const started = performance.now();
        const report = jamNode.replay((slot) => {
          if (slot % 100 === 0 || slot === total) process.stderr.write(`\rreplayed ${slot}/${total} blocks`);
        });
        process.stderr.write("\n");
        console.log(
          JSON.stringify({
            dataDir: target.dataDir,
            blocks: report.blocks,
            stateRoot: toHex(report.finalStateRoot),
            ms: Math.round(performance.now() - started),
          }),
        );
      } finally {
        await jamNode.stop();
      }
    });
}
