import { defineConfig, mergeConfig } from 'vitest/config';
import base from './vitest.config.js';

/**
 * The tests `npm run test:mutation` runs against each mutant of the mongo adapters: the
 * tiers that drive them through the real driver (wire, and the simulator when present),
 * the port contracts and the unit tests. End-to-end and browser tests add nothing there.
 */
export default mergeConfig(
  base,
  defineConfig({
    test: {
      include: [
        'test/wire/**/*.test.ts',
        'test/sim/**/*.test.ts',
        'test/contract/**/*.test.ts',
        'test/unit/**/*.test.ts',
      ],
    },
  }),
);
