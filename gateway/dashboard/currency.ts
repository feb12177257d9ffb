/**
 * The currency label the dashboard shows money with, and the parser of `jamgate start --currency`.
 * A module of its own, without fastify: every `jamgate` command loads the start command's flags.
 */
import { InvalidArgumentError } from "commander";

/**
 * The label money is shown with when none is given. The ledger counts micro-units of whatever
 * currency the market prices in; the built-in market's tariffs (0.30 per kWh bought from the grid,
 * 0.08 sold to it: gateway/genesis.ts) are euro retail prices.
 */
export const DEFAULT_CURRENCY_LABEL = "EUR";

/** A currency label: a code or a short word (EUR, USD, credits, €), no markup or spaces. */
export const CURRENCY_LABEL_PATTERN = /^[\p{L}\p{Sc}][\p{L}\p{Sc}\p{N}]{0,11}$/u;

/** A commander parser for `--currency <label>`: JG_ERR_CLI_ARGUMENT unless it is a short code or word. */
export function currencyLabel(value: string): string {
  if (!CURRENCY_LABEL_PATTERN.test(value))
    throw new InvalidArgumentError(`JG_ERR_CLI_ARGUMENT: expected a currency code or word of at most 12 letters or digits, got "${value}"`);
  return value;
}
