import { defineConfig } from "vitest/config";

// Integration tests (*.int.test.ts) talk to the real PostgreSQL, Redis and NATS servers and to
// our services over real gRPC; each test file creates its own schema/stream/key prefix.
export default defineConfig({
  test: {
    include: ["**/*.test.ts"],
    exclude: ["node_modules/**", "dist/**"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: "forks",
    maxWorkers: 2,
    reporters: ["default", "./test/support/summary-reporter.ts"],
  },
});
