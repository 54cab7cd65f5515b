import { defineConfig } from 'vitest/config';
import { BaseSequencer, type TestSpecification } from 'vitest/node';
import base from './vitest.config.js';

/**
 * The tests `npm run test:mutation` runs against each mutant of the mongo adapters: the
 * tiers that drive them through the real driver (wire, and the simulator when present),
 * the port contracts and the adapters' unit tests. Nothing else reaches them. Built from
 * the base config rather than merged with it: a merge would append these to its include.
 *
 * `MUTATION_TESTS=fast` leaves the contract suites out (wire, simulator and unit tests
 * only): a run that fits a loaded 2-core machine, whose score is a lower bound of the
 * full one's. `MUTATION_TEST_FILES=a,b` runs only those test files: for a run on one
 * source file with the tests written for it (a lower bound too).
 */
const fast = process.env.MUTATION_TESTS === 'fast';
const only = process.env.MUTATION_TEST_FILES?.split(',').filter((f) => f !== '');

/** Cheapest tier first: the order files run in when no list gives one. */
const TIERS = ['test/unit/', 'test/wire/', 'test/sim/', 'test/contract/'];

/**
 * Runs test files cheapest first: in the order `MUTATION_TEST_FILES` lists them, else unit,
 * wire, simulator, then contract tests. Stryker stops a mutant's run at its first failing
 * test, so a mutant a wire test kills never waits for a contract suite. (Vitest's own order
 * puts the slowest files first.)
 */
class CheapestFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const rank = (spec: TestSpecification) => {
      const listed = only?.findIndex((f) => spec.moduleId.endsWith(f)) ?? -1;
      if (listed >= 0) return listed;
      const tier = TIERS.findIndex((t) => spec.moduleId.includes(`/${t}`));
      return (only?.length ?? 0) + (tier >= 0 ? tier : TIERS.length);
    };
    return [...files].sort((a, b) => rank(a) - rank(b));
  }
}

export default defineConfig({
  ...base,
  test: {
    ...base.test,
    // A test that times out on a loaded machine (the contract tier's lease and append
    // timings) gets two more tries: otherwise Stryker's initial run stops on it, and a
    // mutant is credited with a failure it did not cause. Only a timeout: a retried test
    // runs again on the state its failed try left (its `beforeAll` is not rerun), so a
    // retry after an assertion failure can pass because of the mutant, e.g. a drop of the
    // active read model generation that also deleted the record marking it due.
    retry: { count: 2, condition: /timed out/ },
    // Stryker's own timeout (from each test's time in the initial run) ends a mutant that
    // hangs; this one only keeps a slow test of the initial run, niced on a loaded machine
    // (an archive move on the simulator took over 30 s at load 25), from failing it.
    testTimeout: 120_000,
    sequence: { ...base.test?.sequence, sequencer: CheapestFirst },
    include: only?.length
      ? only
      : [
          'test/wire/**/*.test.ts',
          'test/sim/**/*.test.ts',
          ...(fast ? [] : ['test/contract/**/*.test.ts']),
          'test/unit/*[Mm]ongo*.test.ts',
          // Unit tests of adapter code that names no adapter: the archive's joined reads and
          // the read-filter translation.
          'test/unit/archiveReads.unit.test.ts',
          'test/unit/readModelIndexes.unit.test.ts',
        ],
  },
});
