/** Types of format.js (a plain browser module), for its tests. */
export declare const MICROS_DIGITS: number;
export declare const WH_DIGITS: number;
export declare const OCTET_DIGITS: number;
export declare function toBigInt(value: unknown): bigint | null;
export declare function formatFixed(value: unknown, digits: number, fractionMin?: number): string;
export declare function formatMoney(micros: unknown, currency: string): string;
export declare function formatPrice(microsPerKwh: unknown, currency: string): string;
export declare function formatEnergy(wh: unknown): string;
export declare function formatOctets(octets: unknown): string;
export declare function formatPricePerGb(microsPerGb: unknown, currency: string): string;
export declare function shortHex(hex: unknown): string;
export declare function formatUtc(ms: number): string;
export declare function formatSeqs(seqs: readonly number[] | null): string;
export interface EntryFilterFields {
  readonly service?: string;
  readonly account?: string;
  readonly device?: string;
  readonly router?: string;
  readonly interval?: string | number;
}
export declare function entryMatches(
  entry: {
    readonly service: string;
    readonly accounts?: readonly string[];
    readonly device: string | null;
    readonly router?: string | null;
    readonly interval: number | null;
  },
  filter: EntryFilterFields,
): boolean;
