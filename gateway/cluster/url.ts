/**
 * `jamgate start --cluster redis://HOST[:PORT][/DB]`: where the gateways of one cluster share
 * their MQTT routing and sessions (docs/cluster.md). `rediss://` speaks TLS to Redis, verified
 * against the system's CAs. A user name may be in the URL (a Redis 6 ACL user); the password may
 * not: it goes in a file (`--cluster-password-file`), as every secret of jamgate does
 * (docs/configuration.md, Secrets), because a command line is readable by every local user.
 *
 * Redis's pub/sub channels are not scoped by database, so the channels a cluster uses carry its
 * database number (`channelPrefix`): two clusters on two databases of one Redis do not hear each
 * other. Two clusters on one database would share sessions: one database per cluster.
 */
import { CliArgumentError } from "../../devices/protocol/cli-args.ts";
import { JamgateError } from "../../devices/protocol/errors.ts";

/** Redis's own port. */
export const REDIS_DEFAULT_PORT = 6379;
/** Highest database number taken: Redis has 16 unless its `databases` setting says more; past this is surely a typo. */
const REDIS_DB_MAX = 1_000_000;

export interface ClusterUrl {
  readonly host: string;
  readonly port: number;
  readonly db: number;
  /** Redis ACL user, or null for the default user. */
  readonly username: string | null;
  /** `rediss://`: TLS to Redis. */
  readonly tls: boolean;
  /** The URL as given, without anything secret (it holds none): for log lines. */
  readonly text: string;
  /** What every pub/sub channel of this cluster starts with. */
  readonly channelPrefix: string;
}

/**
 * `value` with the password it holds, if any, as `***`: what follows `scheme://user:` up to the
 * last `@`, as typed (a URL's own `password` is percent-encoded, so it may not be found in the
 * text), and whether or not the rest parses as a URL. Null when it holds none.
 */
function withoutPassword(value: string): string | null {
  const userinfo = /^([^:/?#]*:\/\/[^:@]*:)(.*)@/s.exec(value);
  return userinfo === null ? null : `${userinfo[1]}***${value.slice(userinfo[0].length - 1)}`;
}

/**
 * Parses `--cluster`'s value; a value it cannot take is JG_ERR_CLI_ARGUMENT (exit status 2): a
 * CliArgumentError, which commander reports with the flag and the value as given, or, for a value
 * that holds a password, a JamgateError, which commander leaves to the program's main to report as
 * it is: commander's own line would repeat the password (`error: option '--cluster <url>' argument
 * 'redis://:…@…' is invalid.`), to a terminal or a log every local user may read.
 */
export function parseClusterUrl(value: string): ClusterUrl {
  let url: URL | null = null;
  try {
    url = new URL(value.trim());
  } catch {
    // refused below
  }
  const masked = withoutPassword(value);
  const shown = masked ?? value;
  const refuse = (why: string): never => {
    const detail = `--cluster ${JSON.stringify(shown.slice(0, 200))}: ${why}`;
    throw masked === null ? new CliArgumentError(detail) : new JamgateError("JG_ERR_CLI_ARGUMENT", detail);
  };
  if (url === null) return refuse("not a URL; expected redis://HOST:PORT/DB");
  if (url.protocol !== "redis:" && url.protocol !== "rediss:") refuse(`expected redis:// or rediss://, not ${url.protocol}//`);
  if (url.password !== "") refuse("a password does not go in the URL, where every local user can read it: put it in a file and give --cluster-password-file");
  if (url.hostname === "") refuse("no host");
  if (url.search !== "" || url.hash !== "") refuse("no query or fragment is taken");
  const port = url.port === "" ? REDIS_DEFAULT_PORT : Number(url.port);
  const path = url.pathname.replace(/^\//, "");
  if (path !== "" && !/^\d{1,7}$/.test(path)) refuse(`the path is the database number, not ${JSON.stringify(url.pathname)}`);
  const db = path === "" ? 0 : Number(path);
  if (db > REDIS_DB_MAX) refuse(`database ${db} is past ${REDIS_DB_MAX}`);
  // WHATWG URL keeps IPv6 literals in brackets; ioredis wants the bare address.
  const host = url.hostname.replace(/^\[(.*)\]$/, "$1");
  const username = url.username === "" ? null : decodeURIComponent(url.username);
  const tls = url.protocol === "rediss:";
  return {
    host,
    port,
    db,
    username,
    tls,
    text: `${url.protocol}//${username === null ? "" : `${encodeURIComponent(username)}@`}${url.host}/${db}`,
    channelPrefix: `jamgate:${db}:`,
  };
}
