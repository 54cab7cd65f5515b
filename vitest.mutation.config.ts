import { defineConfig, mergeConfig } from 'vitest/config';
import base from './vitest.config.js';

/**
 * The tests `npm run test:mutation` runs against each mutant of the mongo adapters: the
 * tiers that drive them through the real driver (wire, and the simulator when present),
 * the port contracts and the adapters' unit tests. Nothing else reaches them.
 */
export default mergeConfig(
  base,
  defineConfig({
    test: {
      include: [
        'test/wire/**/*.test.ts',
        'test/sim/**/*.test.ts',
        'test/contract/**/*.test.ts',
        // The unit tests of the mongo adapters (filters, error translation, append paths).
        'test/unit/*[Mm]ongo*.test.ts',
      ],
    },
  }),
);
