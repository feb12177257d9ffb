/** Types of wifi.js (a plain browser module), for its tests. */
export interface WifiEntryFields {
  readonly id: number;
  readonly kind: string;
  readonly timeMs: number;
  readonly reason?: string;
  readonly session?: string | null;
  readonly router?: string | null;
  readonly client?: string;
  readonly octets?: string;
  readonly amountMicros: string | null;
  readonly attested?: boolean;
}
export interface WifiRouterFields {
  readonly router: string;
  readonly usage: {
    readonly sessionsStarted: string;
    readonly openSessions: number;
    readonly billedOctets: string;
    readonly billedMicros: string;
    readonly earnedMicros: string;
    readonly disputedOctets: string;
  };
}
export interface SessionSummary {
  readonly key: string;
  readonly router: string | null | undefined;
  readonly session: string;
  readonly client: string | null;
  readonly octets: bigint;
  readonly amountMicros: bigint;
  readonly reason: string;
  readonly attested: boolean;
  readonly lastId: number;
  readonly timeMs: number;
  readonly entries: number;
}
export declare const BILLED_REASONS: readonly string[];
export declare const SESSION_REASONS: readonly string[];
export declare const BUCKET_WIDTHS_MS: readonly number[];
export declare function bucketWidthMs(spanMs: number, bucketsMax: number): number;
export declare function octetsOverTime(
  entries: readonly WifiEntryFields[],
  bucketsMax: number,
): { widthMs: number | null; times: number[]; billed: bigint[]; disputed: bigint[] };
export declare function recentSessions(entries: readonly WifiEntryFields[], max: number): SessionSummary[];
export declare function topRouters<R extends WifiRouterFields>(routers: readonly R[], max: number): R[];
export declare function routerTotals(routers: readonly WifiRouterFields[]): {
  routers: number;
  started: bigint;
  open: bigint;
  closed: bigint;
  billedOctets: bigint;
  billedMicros: bigint;
  earnedMicros: bigint;
  disputedOctets: bigint;
};
export interface WifiStatsFields {
  readonly slot: number;
  readonly envelopesRejected: string;
  readonly disputedOctets: string;
  readonly refusedByCode: Readonly<Record<string, string>>;
}
export declare function serviceCounts(stats: WifiStatsFields): {
  slot: number;
  refused: bigint;
  disputedOctets: bigint;
  codes: { code: string; count: bigint }[];
};
export declare function mergeWindow<E extends { readonly id: number }>(window: readonly E[], fresh: readonly E[], reached: boolean, max: number): E[];
