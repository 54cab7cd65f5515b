import { defineConfig } from 'vitest/config';

export default defineConfig({
  resolve: {
    // graphql ships CJS and ESM builds; Pothos and yoga load the CJS one, so tests and
    // src must too, or graphql rejects types "from another module or realm".
    alias: { graphql: 'graphql/index.js' },
  },
  test: {
    include: ['test/**/*.test.ts'],
    // Concurrency tests (many requests in flight, several store instances) take up to
    // 30 s on a loaded 2-core machine; a bound is a guard against a hang, not a timing.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
  },
});
