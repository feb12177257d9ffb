/**
 * Formatting for the dashboard: money and energy from the ledger's integers, exactly. Amounts
 * come as decimal strings of micro-units (they may pass 2^53: gateway/ledger/types.ts) and are
 * formatted with BigInt, never through a float, so what the page shows is what the ledger holds.
 * Plain ES module: the browser loads it as is, and format.test.ts checks it under vitest.
 */

/** Digits of the smallest unit: the ledger counts money in micro-units (10⁻⁶ of a currency unit). */
export const MICROS_DIGITS = 6;
/** Digits of Wh in a kWh. */
export const WH_DIGITS = 3;
/** Digits of octets in a GB: Wi-Fi is priced per 10^9 octets (services/wifi-billing, priceMicrosPerGb), so a GB here is that, not 2^30. */
export const OCTET_DIGITS = 9;
/** Separator of thousands: a narrow no-break space (SI style), read the same whatever the decimal mark of the reader's locale. */
const GROUP = "\u202f";

/** The integer a view carries (a safe integer, or a decimal string of any size) as a bigint; null if it is neither. */
export function toBigInt(value) {
  if (typeof value === "bigint") return value;
  if (typeof value === "number") return Number.isSafeInteger(value) ? BigInt(value) : null;
  if (typeof value === "string" && /^-?[0-9]+$/.test(value)) return BigInt(value);
  return null;
}

/**
 * An integer of 10^-digits units as a decimal: exact, sign first, thousands grouped, trailing
 * zeros of the fraction dropped down to `fractionMin` digits. formatFixed("-1234500", 6, 2) is "-1.2345".
 * A value that is not an integer shows as "?" (a view the page does not understand is not guessed at).
 */
export function formatFixed(value, digits, fractionMin = 0) {
  const n = toBigInt(value);
  if (n === null) return "?";
  const negative = n < 0n;
  const abs = negative ? -n : n;
  const scale = 10n ** BigInt(digits);
  const whole = (abs / scale).toString().replace(/\B(?=(\d{3})+(?!\d))/g, GROUP);
  let fraction = (abs % scale).toString().padStart(digits, "0");
  let end = fraction.length;
  while (end > fractionMin && fraction[end - 1] === "0") end--;
  fraction = fraction.slice(0, end);
  return `${negative ? "-" : ""}${whole}${fraction === "" ? "" : `.${fraction}`}`;
}

/** Micro-units as money with its currency label: "12.50 EUR", "-0.000001 EUR". */
export function formatMoney(micros, currency) {
  return `${formatFixed(micros, MICROS_DIGITS, 2)} ${currency}`;
}

/** A price in micro-units per kWh: "0.30 EUR/kWh". */
export function formatPrice(microsPerKwh, currency) {
  return `${formatFixed(microsPerKwh, MICROS_DIGITS, 2)} ${currency}/kWh`;
}

/** Energy in Wh as kWh: "1.5 kWh", "0.001 kWh". */
export function formatEnergy(wh) {
  return `${formatFixed(wh, WH_DIGITS, 1)} kWh`;
}

/** Octets as GB (10^9 octets), exact: "5.0 GB", "0.000001 GB". */
export function formatOctets(octets) {
  return `${formatFixed(octets, OCTET_DIGITS, 1)} GB`;
}

/** A Wi-Fi price in micro-units per GB (10^9 octets): "0.50 EUR/GB". */
export function formatPricePerGb(microsPerGb, currency) {
  return `${formatFixed(microsPerGb, MICROS_DIGITS, 2)} ${currency}/GB`;
}

/** A long hex id shortened for a table cell: its first 8 and last 4 digits. */
export function shortHex(hex) {
  return typeof hex === "string" && hex.length > 14 ? `${hex.slice(0, 8)}…${hex.slice(-4)}` : String(hex);
}

/** Unix ms as UTC date and time to the second: "2026-06-21 06:15:00". */
export function formatUtc(ms) {
  if (!Number.isFinite(ms)) return "?";
  return new Date(ms).toISOString().slice(0, 19).replace("T", " ");
}

/** Seqs as a short range text: [41, 42, 43] is "41–43", [5, 9] is "5, 9". */
export function formatSeqs(seqs) {
  if (!Array.isArray(seqs) || seqs.length === 0) return "";
  const contiguous = seqs.every((s, i) => i === 0 || s === seqs[i - 1] + 1);
  if (seqs.length > 2 && contiguous) return `${seqs[0]}–${seqs[seqs.length - 1]}`;
  return seqs.join(", ");
}

/**
 * Whether a live entry belongs on the ledger page the filter shows (the same fields the server
 * filters by: gateway/ledger/types.ts EntryFilter). Empty fields match everything.
 */
export function entryMatches(entry, filter) {
  if (filter.service && entry.service !== filter.service) return false;
  if (filter.account && !(entry.accounts ?? []).includes(filter.account)) return false;
  if (filter.device && entry.device !== filter.device) return false;
  if (filter.router && entry.router !== filter.router) return false;
  if (filter.interval !== undefined && filter.interval !== "" && entry.interval !== Number(filter.interval)) return false;
  return true;
}
