/**
 * `jamgate start`: the embedded node and the gateway in one process, with embedded defaults —
 * the README's main command. With `--node ws://…` the gateway drives a remote node instead.
 */
import { type Command, Option } from "commander";
import { type LogOptions, logFormatOption, logLevelOption, openLogger } from "../node/cli-log.ts";
import { integerIn } from "../devices/protocol/cli-args.ts";
import { loadTlsMaterial, readFlagFile, runUntilSignal } from "../node/cli.ts";
import { JamgateError } from "../devices/protocol/errors.ts";
import type { ChainName } from "../node/chain/params.ts";
import { printConfig } from "./config.ts";
import { parseClusterUrl } from "./cluster/url.ts";
import { currencyLabel, DEFAULT_CURRENCY_LABEL } from "./dashboard/currency.ts";
import type { StackWiring } from "./stack.ts";

export type { StackWiring } from "./stack.ts";

/** The stack `jamgate start` runs, and how a market speed chosen on its command line changes it. */
export interface StartWiring extends StackWiring {
  /**
   * The same wiring with a new data dir's energy market running `marketMsPerSlot` of market time
   * per slot instead of real time (`--market-minutes-per-slot`); absent when the genesis has no market.
   * An existing data dir keeps its market: one of another speed is refused (JG_ERR_CLI_ARGUMENT).
   */
  withMarketMsPerSlot?(marketMsPerSlot: number): StackWiring;
}

export const DEFAULT_GATEWAY_DATA_DIR = ".jamgate";

interface StartOptions extends LogOptions {
  dataDir: string;
  mqttPort: number;
  wsPort: number;
  mqttsPort: number;
  wssPort: number;
  httpPort: number;
  rpcPort: number;
  radiusPort: number;
  host: string;
  rpcHost: string;
  tlsCert?: string;
  tlsKey?: string;
  tlsClientCa?: string;
  plaintext: boolean;
  slotMs: number;
  chain: ChainName;
  influxUrl?: string;
  node?: string;
  nodeTokenFile?: string;
  nodeCa?: string;
  cluster?: string;
  clusterPasswordFile?: string;
  batchMs: number;
  connectionsMax: number;
  nodeFirst: boolean;
  marketMinutesPerSlot?: number;
  ledgerRetentionSlots?: number;
  currency: string;
  printConfig?: boolean;
}

/** Default ports: MQTT 1883 and MQTT over TLS 8883 (IANA), MQTT over WebSocket 8083 and over TLS 8084 (the common convention, EMQX's and HiveMQ's among others). */
export const DEFAULT_PORTS = { mqtt: 1883, mqtts: 8883, ws: 8083, wss: 8084, http: 8080, rpc: 19800, radius: 1813 } as const;

export function registerStartCommand(program: Command, wiring: StartWiring): void {
  program
    .command("start")
    .description("run the embedded node and the gateway: MQTT in, JAM settlement, receipts out")
    .option("--data-dir <dir>", "node, gateway log, operator token and gateway key live here", DEFAULT_GATEWAY_DATA_DIR)
    .option("--host <host>", "address the MQTT and HTTP servers listen on", "127.0.0.1")
    .option("--mqtt-port <port>", "MQTT over TCP", integerIn(0, 65_535), DEFAULT_PORTS.mqtt)
    .option("--ws-port <port>", "MQTT over WebSocket", integerIn(0, 65_535), DEFAULT_PORTS.ws)
    .option("--mqtts-port <port>", "MQTT over TLS (with --tls-cert and --tls-key)", integerIn(0, 65_535), DEFAULT_PORTS.mqtts)
    .option("--wss-port <port>", "MQTT over WebSocket over TLS (with --tls-cert and --tls-key)", integerIn(0, 65_535), DEFAULT_PORTS.wss)
    .option("--http-port <port>", "HTTP API: registration, /metrics (HTTPS with --tls-cert)", integerIn(0, 65_535), DEFAULT_PORTS.http)
    .option("--rpc-port <port>", "the embedded node's JIP-2 WebSocket (wss:// with --tls-cert)", integerIn(0, 65_535), DEFAULT_PORTS.rpc)
    .option(
      "--radius-port <port>",
      "RADIUS accounting over UDP from routers onboarded with --radius (gateway/radius/); 0: off. 1813 is accounting's registered port (RFC 2866). Left at its default and taken (e.g. by a FreeRADIUS on the host), RADIUS stays off with a warning; a port given and not bindable fails the start",
      integerIn(0, 65_535),
      DEFAULT_PORTS.radius,
    )
    .option(
      "--rpc-host <host>",
      "address the JIP-2 RPC listens on, whatever --host says (state-changing methods take the operator token; without it only loopback may read)",
      "127.0.0.1",
    )
    .option("--tls-cert <file>", "PEM certificate (chain): serve MQTT over TLS, WebSocket over TLS, HTTPS and wss:// RPC")
    .option("--tls-key <file>", "PEM private key of --tls-cert")
    .option("--tls-client-ca <file>", "PEM CA whose client certificates authenticate devices (subject CN = device id), instead of a token")
    .option("--no-plaintext", "with TLS, do not listen for plain MQTT and WebSocket")
    .option("--slot-ms <ms>", "slot period of the embedded node", integerIn(10, 3_600_000), 6000)
    .addOption(new Option("--chain <name>", "chain spec of the embedded node").choices(["tiny", "full"]).default("tiny"))
    .option(
      "--market-minutes-per-slot <n>",
      "a new data dir's energy market runs this many market minutes per slot (default: real time); e.g. 5 at 6-second slots settles a 15-minute interval every 18 s",
      integerIn(1, 24 * 60),
    )
    .option(
      "--ledger-retention-slots <n>",
      "slots whose blocks, packages and receipts the ledger index keeps (default 100800: 7 days of 6-second slots; at most 20 million receipts; energy entries are all kept)",
      integerIn(1, 2 ** 32 - 1),
    )
    .option(
      "--currency <label>",
      "the label the dashboard and `jamgate ledger` show money with (a code or word: EUR, USD, credits); the ledger counts micro-units of it",
      currencyLabel,
      DEFAULT_CURRENCY_LABEL,
    )
    .option(
      "--batch-ms <ms>",
      "how long envelopes wait to fill a work package until packing aligns to the node's blocks (gateway/README.md, Packing)",
      integerIn(1, 60_000),
      200,
    )
    .option(
      "--connections-max <n>",
      "MQTT connections held at once over all listeners; past it CONNACK 3 (JG_ERR_MQTT_CONNECTIONS). Each is a file descriptor: a cap the open-file limit cannot hold is warned about at start (docs/production.md, File descriptors)",
      // At most Linux's default fs.nr_open, the most descriptors a process may have.
      integerIn(1, 1_048_576),
      // gatewayLimits.connectionsMax (gateway/gateway.ts; not imported: every `jamgate` command loads this module for its flags).
      20_000,
    )
    .option("--influx-url <url>", "also write accepted readings to InfluxDB 1.x, e.g. http://127.0.0.1:8086")
    .option("--node <url>", "use a remote node over JIP-2 WebSocket (ws:// or wss://) instead of the embedded one")
    .option("--node-token-file <file>", "with --node: the remote node's RPC token (its data dir's rpc-token), needed to submit work packages")
    .option("--node-ca <file>", "with --node wss://…: PEM CA to trust for the node's certificate")
    .option(
      "--cluster <url>",
      "one of several gateways that share this Redis (redis://HOST:PORT/DB or rediss://…) and one node: receipts' routing, MQTT sessions and the seqs each gateway logged go through it (docs/cluster.md)",
      // Checked here (a bad one is a bad command line), kept as its text: --print-config shows the URL.
      (value: string) => parseClusterUrl(value).text,
    )
    .option("--cluster-password-file <file>", "with --cluster: a file holding the Redis password (never in the URL)")
    .addOption(logLevelOption())
    .addOption(logFormatOption())
    .option(
      "--no-node-first",
      "keep every thread at one priority (by default, on Linux, the gateway's threads run at nice +5 beside the embedded node's block and refine threads: gateway/README.md, Thread priorities)",
    )
    .option(
      "--print-config",
      "print each option's effective value and where it came from (command line, JAMGATE_<FLAG>, <data-dir>/config.json, default), then exit without starting",
    )
    .action(async (options: StartOptions, command: Command) => {
      if (options.printConfig) return printConfig(command);
      const root = await openLogger(options);
      const tls = loadTlsMaterial({ cert: options.tlsCert, key: options.tlsKey, clientCa: options.tlsClientCa });
      if (!options.plaintext && tls === null)
        throw new JamgateError("JG_ERR_CLI_ARGUMENT", "--no-plaintext needs --tls-cert and --tls-key: nothing would listen for MQTT");
      if (options.node === undefined && (options.nodeTokenFile !== undefined || options.nodeCa !== undefined))
        throw new JamgateError("JG_ERR_CLI_ARGUMENT", "--node-token-file and --node-ca go with --node");
      if (options.node !== undefined && options.nodeTokenFile === undefined) {
        throw new JamgateError(
          "JG_ERR_CLI_ARGUMENT",
          "--node needs --node-token-file: the remote node takes work packages only with its RPC token (the rpc-token file in its data dir)",
        );
      }
      if (options.clusterPasswordFile !== undefined && options.cluster === undefined)
        throw new JamgateError("JG_ERR_CLI_ARGUMENT", "--cluster-password-file goes with --cluster");
      if (options.marketMinutesPerSlot !== undefined && (options.node !== undefined || wiring.withMarketMsPerSlot === undefined)) {
        throw new JamgateError("JG_ERR_CLI_ARGUMENT", "--market-minutes-per-slot sets the embedded node's genesis market: not with --node");
      }
      const {
        nodeCa,
        nodeTokenFile,
        cluster,
        clusterPasswordFile,
        tlsCert: _cert,
        tlsKey: _key,
        tlsClientCa: _ca,
        plaintext: _plain,
        printConfig: _print,
        marketMinutesPerSlot,
        radiusPort,
        ...rest
      } = options;
      const stackWiring = marketMinutesPerSlot === undefined ? wiring : wiring.withMarketMsPerSlot!(marketMinutesPerSlot * 60_000);
      // Loaded here, not at the top: every `jamgate` command loads this module for its flags.
      const [{ startStack }, { endpointsOf, removeEndpoints, writeEndpoints }] = await Promise.all([import("./stack.ts"), import("./endpoints.ts")]);
      const stack = await startStack(
        {
          ...rest,
          mqttPort: options.plaintext ? options.mqttPort : null,
          wsPort: options.plaintext ? options.wsPort : null,
          tls,
          radiusPort: radiusPort === 0 ? null : radiusPort,
          radiusPortIsDefault: command.getOptionValueSource("radiusPort") === "default",
          ...(nodeTokenFile === undefined ? {} : { nodeToken: readFlagFile("--node-token-file", nodeTokenFile).toString("utf8").trim() }),
          ...(nodeCa === undefined ? {} : { nodeCa: readFlagFile("--node-ca", nodeCa) }),
          ...(cluster === undefined ? {} : { cluster: parseClusterUrl(cluster) }),
          ...(clusterPasswordFile === undefined
            ? {}
            : { clusterPassword: readFlagFile("--cluster-password-file", clusterPasswordFile).toString("utf8").trim() }),
          logger: root,
        },
        stackWiring,
      );
      // Last, once everything listens: a client that finds the file finds a gateway that answers.
      writeEndpoints(options.dataDir, endpointsOf(stack, { host: options.host, rpcHost: options.rpcHost, tls: tls !== null, plaintext: options.plaintext }));
      runUntilSignal(root.child({ component: "jamgate" }), async () => {
        // First: from here on clients find no gateway rather than one that is closing.
        removeEndpoints(options.dataDir);
        await stack.stop();
      });
    });
}
