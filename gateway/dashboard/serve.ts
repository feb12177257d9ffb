/**
 * Serves the dashboard (index.html, app.js, format.js, style.css of this folder) at `/`, uPlot's
 * browser build from node_modules at `/assets/uplot/`, and the page's settings at
 * `GET /v1/dashboard/config`. Everything the page loads comes from this server: its CSP is
 * `'self'` only, so no CDN, no inline script or style.
 */
import { dirname } from "node:path";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import fastifyStatic from "@fastify/static";
import type { FastifyInstance, FastifyReply } from "fastify";
import { CURRENCY_LABEL_PATTERN } from "./currency.ts";

export { currencyLabel, DEFAULT_CURRENCY_LABEL } from "./currency.ts";

/** The dashboard's own files. */
export const DASHBOARD_DIR = dirname(fileURLToPath(import.meta.url));
/** uPlot's dist folder (its ES module and stylesheet; the package has no `exports` map to hide them). */
const UPLOT_DIR = dirname(createRequire(import.meta.url).resolve("uplot/dist/uPlot.esm.js"));

export interface DashboardOptions {
  /** Shown after every amount and price ("12.50 EUR", "0.30 EUR/kWh"). */
  readonly currency: string;
  /** The chain's cores (GP C): the page shows each, busy or not; without it, the cores it has seen reports on. */
  readonly coresCount?: number;
}

/** What `GET /v1/dashboard/config` answers. */
export interface DashboardConfig {
  readonly currency: string;
  readonly coresCount: number | null;
}

/**
 * The page's headers: the CSP allows this origin only (scripts, styles, the API and the event
 * stream), no framing, no plug-ins; the browser does not guess content types.
 */
const PAGE_HEADERS = {
  "content-security-policy": "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
} as const;

/** Registers the dashboard on `app`: call once, beside the API's routes. */
export async function registerDashboard(app: FastifyInstance, options: DashboardOptions): Promise<void> {
  if (!CURRENCY_LABEL_PATTERN.test(options.currency)) throw new Error(`currency label ${JSON.stringify(options.currency)} is not a short code or word`);
  const config: DashboardConfig = { currency: options.currency, coresCount: options.coresCount ?? null };
  const setHeaders = (reply: FastifyReply) => void reply.headers(PAGE_HEADERS);
  // A route per file (wildcard false): only these files are served, and unknown paths stay the API's 404.
  await app.register(fastifyStatic, {
    root: DASHBOARD_DIR,
    prefix: "/",
    wildcard: false,
    globIgnore: ["**/*.ts", "**/*.md"],
    setHeaders,
  });
  await app.register(fastifyStatic, {
    root: UPLOT_DIR,
    prefix: "/assets/uplot/",
    wildcard: false,
    decorateReply: false,
    globIgnore: ["*.cjs.js", "*.iife.js", "*.iife.min.js", "*.d.ts"],
    setHeaders,
  });
  app.get(
    "/v1/dashboard/config",
    {
      schema: {
        summary: "The dashboard's settings: the currency label money is shown with, the chain's cores",
        tags: ["dashboard"],
        response: {
          200: {
            type: "object",
            additionalProperties: false,
            required: ["currency", "coresCount"],
            properties: { currency: { type: "string" }, coresCount: { type: ["integer", "null"], minimum: 1 } },
          },
        },
      },
    },
    async () => config,
  );
}
