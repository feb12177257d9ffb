/**
 * A simulation's progress bars on stderr (cli-progress): redrawn in place on a terminal; a line
 * every NOT_TTY_LINE_MS when stderr is a file or a pipe, as in CI or under a test.
 */
import { MultiBar, Presets } from "cli-progress";

/** A line every 5 s when stderr is not a terminal: a log of a day-long run stays readable, and a stalled one shows. */
export const NOT_TTY_LINE_MS = 5_000;

/**
 * Bars in `format` (cli-progress placeholders: `{bar}`, `{value}`, `{total}` and the payload's
 * keys); null when progress is off, so callers write `bars?.create(…)`.
 */
export function progressBars(enabled: boolean, format: string): MultiBar | null {
  if (!enabled) return null;
  return new MultiBar(
    { stream: process.stderr, clearOnComplete: false, hideCursor: true, noTTYOutput: true, notTTYSchedule: NOT_TTY_LINE_MS, format },
    Presets.shades_classic,
  );
}
