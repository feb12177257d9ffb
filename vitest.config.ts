import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["{node,gateway,services,devices,simulators,scripts}/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: "forks",
  },
});
