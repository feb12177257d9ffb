/**
 * Chromium for the dashboard's browser tests (dashboard*.browser.test.ts): Debian's chromium
 * driven by playwright-core, one context per page, what went wrong in a page collected, and a
 * screenshot of the page when its test fails. Screenshots go to .artifacts/dashboard/ (gitignored).
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core";
import { onTestFailed } from "vitest";

/** Debian's chromium (`npm test` installs it when missing) and the flags it runs headless with in a container. */
export const CHROMIUM = "/usr/bin/chromium";
export const CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync"];
/** Where the tests' screenshots go. */
export const ARTIFACTS = new URL("../../.artifacts/dashboard/", import.meta.url).pathname;

/**
 * What the functions run in the page (page.evaluate, waitForFunction) use of the browser's
 * globals: this project's tsconfig has no DOM library. A test declares them with these types
 * (`declare const document: PageDocument;`), in its own module.
 */
export interface PageElement {
  readonly id: string;
  readonly textContent: string | null;
  getAttribute(name: string): string | null;
  click(): void;
}
export interface PageDocument {
  querySelector(selector: string): PageElement | null;
  querySelectorAll(selector: string): Iterable<PageElement> & ArrayLike<PageElement>;
  readonly activeElement: PageElement | null;
  readonly documentElement: { readonly scrollWidth: number };
  readonly body: { readonly scrollWidth: number };
}
export interface PageWindow {
  readonly innerWidth: number;
}

/** A page and what went wrong in it: script errors, CSP refusals, console errors. */
export interface OpenedPage {
  readonly page: Page;
  readonly problems: string[];
}

export interface Chromium {
  readonly browser: Browser;
  /**
   * A page of its own context (1280 × 900 unless asked), with its problems collected; when the
   * test that opened it fails, its unanswered requests and problems are logged and a full-page
   * screenshot is saved as `failed-<screenshotPrefix><test name>.png`.
   */
  openPage(options?: { readonly width?: number; readonly height?: number }): Promise<OpenedPage>;
  /** Closes every context opened, then the browser. */
  close(): Promise<void>;
}

/** Launches chromium headless; `screenshotPrefix` names a failed test's screenshot apart from another file's. */
export async function launchChromium(options: { readonly screenshotPrefix?: string } = {}): Promise<Chromium> {
  mkdirSync(ARTIFACTS, { recursive: true });
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  const contexts: BrowserContext[] = [];
  const prefix = options.screenshotPrefix ?? "";
  return {
    browser,
    async openPage({ width = 1280, height = 900 } = {}) {
      const context = await browser.newContext({ viewport: { width, height } });
      contexts.push(context);
      const page = await context.newPage();
      const problems: string[] = [];
      // Requests the page made and was not answered, for a failure's message: what it waited on.
      const pending = new Map<unknown, string>();
      page.on("request", (request) => void pending.set(request, `${new Date().toISOString()} ${request.method()} ${request.url()}`));
      page.on("requestfinished", (request) => void pending.delete(request));
      page.on("requestfailed", (request) => void pending.delete(request));
      page.on("pageerror", (error) => problems.push(`pageerror: ${error.message}`));
      page.on("console", (message) => {
        if (message.type() === "error") problems.push(`console: ${message.text()}`);
      });
      onTestFailed(async ({ task }) => {
        console.error(`${task.name}: the page's unanswered requests:`, [...pending.values()], "problems:", problems);
        await page
          .screenshot({ path: join(ARTIFACTS, `failed-${prefix}${task.name.replace(/[^a-z0-9]+/gi, "-").slice(0, 60)}.png`), fullPage: true })
          .catch(() => undefined);
      });
      return { page, problems };
    },
    async close() {
      for (const context of contexts) await context.close().catch(() => undefined);
      await browser.close();
    },
  };
}
