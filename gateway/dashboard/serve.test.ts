/**
 * registerDashboard: the page, its scripts and styles and uPlot are served by this server alone
 * (the CSP is 'self'), every URL the page loads answers, and nothing else of the folder is served.
 * fastify.inject: no ports.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import Fastify, { type FastifyInstance } from "fastify";
import { afterEach, describe, expect, it } from "vitest";
import { currencyLabel, DASHBOARD_DIR, registerDashboard } from "./serve.ts";

let app: FastifyInstance | null = null;
afterEach(async () => {
  await app?.close();
  app = null;
});

async function dashboard(options: Parameters<typeof registerDashboard>[1]): Promise<FastifyInstance> {
  app = Fastify();
  await registerDashboard(app, options);
  await app.ready();
  return app;
}

/** The local URLs a file loads: src/href attributes of the page, `import … from` of a module. */
function urlsIn(text: string): string[] {
  const attributes = [...text.matchAll(/\s(?:src|href)="([^"#][^"]*)"/g)].map((m) => m[1]!);
  const imports = [...text.matchAll(/^import\s[^;]*?from\s+"([^"]+)"/gms)].map((m) => m[1]!);
  return [...attributes, ...imports];
}

describe("registerDashboard", () => {
  it("serves the page at / with a self-only CSP, and every script, style and icon it loads from this server", async () => {
    const server = await dashboard({ currency: "EUR" });
    const page = await server.inject("/");
    expect(page.statusCode).toBe(200);
    expect(page.headers["content-type"]).toMatch(/^text\/html/);
    expect(page.headers["content-security-policy"]).toMatch(/^default-src 'self';/);
    expect(page.headers["content-security-policy"]).not.toMatch(/unsafe-inline|unsafe-eval|https?:/);
    // Follow the page's URLs, and the modules' imports, to the end: each is local and answers 200.
    const seen = new Set<string>();
    const queue = urlsIn(page.body).filter((u) => !u.startsWith("/docs") && u !== "/metrics");
    expect(queue).toEqual(expect.arrayContaining(["/app.js", "/style.css", "/assets/uplot/uPlot.min.css"]));
    while (queue.length > 0) {
      const url = queue.shift()!;
      const absolute = url.startsWith("./") ? `/${url.slice(2)}` : url;
      if (seen.has(absolute)) continue;
      seen.add(absolute);
      expect(absolute, `${url} is not on this server`).toMatch(/^\/[^/]/);
      const response = await server.inject(absolute);
      expect(response.statusCode, absolute).toBe(200);
      if (absolute.endsWith(".js")) {
        expect(response.headers["content-type"]).toMatch(/javascript/);
        queue.push(...urlsIn(response.body));
      }
    }
    expect([...seen]).toEqual(expect.arrayContaining(["/format.js", "/wifi.js", "/assets/uplot/uPlot.esm.js", "/favicon.svg"]));
  });

  it("serves no source, test, type or doc file of the folder, and none of uPlot's other builds", async () => {
    const server = await dashboard({ currency: "EUR" });
    for (const path of [
      "/serve.ts",
      "/README.md",
      "/serve.test.ts",
      "/format.test.ts",
      "/format.d.ts",
      "/wifi.test.ts",
      "/wifi.d.ts",
      "/assets/uplot/uPlot.cjs.js",
      "/assets/uplot/uPlot.d.ts",
      "/nothing.js",
      "/../package.json",
    ]) {
      expect((await server.inject(path)).statusCode, path).toBe(404);
    }
    // The files it does serve are the folder's own.
    expect((await server.inject("/app.js")).body).toBe(readFileSync(join(DASHBOARD_DIR, "app.js"), "utf8"));
  });

  it("tells the page its currency label and the chain's cores", async () => {
    expect((await (await dashboard({ currency: "EUR", coresCount: 2 })).inject("/v1/dashboard/config")).json()).toEqual({ currency: "EUR", coresCount: 2 });
    await app!.close();
    expect((await (await dashboard({ currency: "credits" })).inject("/v1/dashboard/config")).json()).toEqual({ currency: "credits", coresCount: null });
  });

  it("takes a short currency code or word, and refuses markup, spaces and long labels", async () => {
    for (const good of ["EUR", "USD", "€", "credits", "kWhCoin"]) expect(currencyLabel(good)).toBe(good);
    for (const bad of ["", "E UR", "<b>EUR</b>", "EUR;", "a".repeat(13), "1EUR"]) expect(() => currencyLabel(bad), bad).toThrow(/JG_ERR_CLI_ARGUMENT/);
    app = Fastify();
    await expect(registerDashboard(app, { currency: "<script>" })).rejects.toThrow(/currency label/);
  });
});
