/** The dashboard's formatting: money and energy from the ledger's integers, exactly (BigInt, never a float). */
import { describe, expect, it } from "vitest";
import {
  entryMatches,
  formatEnergy,
  formatFixed,
  formatMoney,
  formatOctets,
  formatPrice,
  formatPricePerGb,
  formatSeqs,
  formatUtc,
  shortHex,
  toBigInt,
} from "./format.js";

describe("formatFixed", () => {
  it("places the decimal point exactly, keeps at least the asked fraction digits and drops the other trailing zeros", () => {
    expect(formatFixed("0", 6, 2)).toBe("0.00");
    expect(formatFixed("1", 6, 2)).toBe("0.000001");
    expect(formatFixed("1500000", 6, 2)).toBe("1.50");
    expect(formatFixed("-1234500", 6, 2)).toBe("-1.2345");
    expect(formatFixed(-1, 6, 2)).toBe("-0.000001");
    expect(formatFixed(1500, 3, 1)).toBe("1.5");
    expect(formatFixed(1000, 3, 0)).toBe("1");
  });

  it("is exact past 2^53, where a float would round: 2^63 − 1 micro-units to the last digit", () => {
    const max = "9223372036854775807";
    expect(formatFixed(max, 6, 2)).toBe("9\u202f223\u202f372\u202f036\u202f854.775807");
    expect(formatFixed(`-${max}`, 6, 2)).toBe("-9\u202f223\u202f372\u202f036\u202f854.775807");
    // Through a float the last digits would be lost: Number(max) / 1e6 is 9223372036854.775.
    expect(formatFixed("9007199254740993", 6, 2)).toBe("9\u202f007\u202f199\u202f254.740993");
  });

  it("shows a value that is not an integer as ?, never a guess", () => {
    for (const bad of ["1.5", "", "0x10", "1e6", " 1", null, undefined, 1.5, Number.MAX_SAFE_INTEGER + 1, {}]) expect(formatFixed(bad, 6, 2)).toBe("?");
    expect(toBigInt("-0")).toBe(0n);
  });
});

describe("money, prices and energy carry their unit", () => {
  it("writes the currency label after amounts and prices, kWh after energy", () => {
    expect(formatMoney("-185100", "EUR")).toBe("-0.1851 EUR");
    expect(formatMoney("12000000", "credits")).toBe("12.00 credits");
    expect(formatPrice(300_000, "EUR")).toBe("0.30 EUR/kWh");
    expect(formatPrice(123_456, "€")).toBe("0.123456 €/kWh");
    expect(formatEnergy(1234)).toBe("1.234 kWh");
    expect(formatEnergy("0")).toBe("0.0 kWh");
    expect(formatEnergy(1)).toBe("0.001 kWh");
  });
});

describe("Wi-Fi octets and prices carry their unit", () => {
  it("writes octets as GB of 10^9 octets (the service's price unit), exactly, and prices per GB with the currency label", () => {
    expect(formatOctets("5000000000")).toBe("5.0 GB");
    expect(formatOctets(1_500_000_000)).toBe("1.5 GB");
    expect(formatOctets("0")).toBe("0.0 GB");
    expect(formatOctets(1)).toBe("0.000000001 GB");
    expect(formatOctets(123_456_789_012)).toBe("123.456789012 GB");
    // A u64 of octets past 2^53, to the last octet.
    expect(formatOctets("18446744073709551615")).toBe("18\u202f446\u202f744\u202f073.709551615 GB");
    expect(formatOctets(5n * 10n ** 9n)).toBe("5.0 GB");
    expect(formatOctets("1e9")).toBe("? GB");
    expect(formatPricePerGb("500000", "EUR")).toBe("0.50 EUR/GB");
    expect(formatPricePerGb(1_000_000_000, "credits")).toBe("1\u202f000.00 credits/GB");
    expect(formatPricePerGb(1, "CHF")).toBe("0.000001 CHF/GB");
  });
});

describe("ids, times and seqs", () => {
  it("shortens long hex and leaves short text alone", () => {
    expect(shortHex("0123456789abcdef0123456789abcdef")).toBe("01234567…cdef");
    expect(shortHex("grid")).toBe("grid");
  });
  it("writes Unix ms as UTC to the second", () => {
    expect(formatUtc(Date.parse("2026-06-21T06:15:00.999Z"))).toBe("2026-06-21 06:15:00");
    expect(formatUtc(Number.NaN)).toBe("?");
  });
  it("writes a run of seqs as a range and others as a list", () => {
    expect(formatSeqs([41, 42, 43, 44])).toBe("41–44");
    expect(formatSeqs([5, 9])).toBe("5, 9");
    expect(formatSeqs([7])).toBe("7");
    expect(formatSeqs([1, 2, 4])).toBe("1, 2, 4");
    expect(formatSeqs(null)).toBe("");
  });
});

describe("entryMatches (which live entries join the page the filter shows)", () => {
  const household = "aa".repeat(16);
  const trade = { service: "energy-trading", accounts: [household, "bb".repeat(16)], device: null, interval: 7 };
  const envelopes = { service: "telemetry", accounts: [], device: "cc".repeat(16), interval: null };
  it("matches on every field the server filters by, and everything without a filter", () => {
    expect(entryMatches(trade, {})).toBe(true);
    expect(entryMatches(trade, { service: "energy-trading", account: household, interval: "7" })).toBe(true);
    expect(entryMatches(trade, { service: "telemetry" })).toBe(false);
    expect(entryMatches(trade, { account: "dd".repeat(16) })).toBe(false);
    expect(entryMatches(trade, { interval: "8" })).toBe(false);
    expect(entryMatches(trade, { device: "cc".repeat(16) })).toBe(false);
    expect(entryMatches(envelopes, { device: "cc".repeat(16), interval: "" })).toBe(true);
    expect(entryMatches(envelopes, { account: household })).toBe(false);
  });
  it("matches Wi-Fi entries by router; entries of no router (top-ups, other services) are not a router's", () => {
    const router = "ee".repeat(16);
    const usage = { service: "wifi-billing", accounts: [household], device: null, interval: null, router };
    const topup = { service: "wifi-billing", accounts: [household], device: null, interval: null, router: null };
    expect(entryMatches(usage, { router })).toBe(true);
    expect(entryMatches(usage, { service: "wifi-billing", router, account: household })).toBe(true);
    expect(entryMatches(usage, { router: "ff".repeat(16) })).toBe(false);
    expect(entryMatches(topup, { router })).toBe(false);
    expect(entryMatches(trade, { router })).toBe(false);
    expect(entryMatches(topup, { router: "" })).toBe(true);
  });
});
