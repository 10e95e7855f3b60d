import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // PostgreSQL and SQLite tests isolate themselves (schema / file per test), so files may run in parallel;
    // two cores make more workers pointless.
    maxWorkers: 2,
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
});
