/**
 * Mutation testing of the mongo adapters, file group by file group:
 *
 *   npm run test:mutation:groups                    # every group, one after the other
 *   npm run test:mutation:groups -- --lanes 2       # two groups at a time
 *   npm run test:mutation:groups -- --only feed,changeLog
 *   npm run test:mutation:groups -- --contract      # the contract suites too (slow on the simulator)
 *   npm run test:mutation:groups -- --report        # run nothing: print the score of the last runs
 *   npm run test:mutation:groups -- --report --survivors   # and every mutant left alive
 *   npm run test:mutation:groups -- --list          # the groups, their files and tests
 *   npm run test:mutation:groups -- --only changeLog --without test/wire/projector.wire.test.ts
 *   npm run test:mutation:groups -- --guards        # the reviewed guards' mutants, and who killed them
 *   npm run test:mutation:groups -- --only feed --alive   # only the mutants the last runs left alive
 *
 * Each group mutates a few source files and runs only the test files that reach them, with
 * per-test coverage: a mutant runs only the tests that executed its code. A first pass runs
 * the cheap wire, simulator and unit tests; a second with `--contract` adds the port's
 * contract suites, and (incremental) tests again only the mutants those reach that the
 * first pass left alive. Each group keeps
 * its results in its own Stryker incremental file (`reports/mutation/<group>.json`), so a
 * group stopped half way or a rerun after a test change tests only what changed, and the
 * groups can run side by side. The files of every group together are exactly the files
 * `stryker.config.json` mutates (checked before anything runs). At the end it prints each
 * source file's score and the overall one, computed by mutation-testing-metrics (the
 * library Stryker's own reports use) from the groups' incremental files.
 */
import { spawn } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  writeFileSync,
} from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { calculateMetrics } from 'mutation-testing-metrics';
import { GUARDS } from './guardList.js';

/** A Stryker report's files, as its JSON and incremental files hold them. */
type ReportFiles = Parameters<typeof calculateMetrics>[0];

/**
 * The test files of each port that reach the mongo adapters, cheapest first: they run in
 * this order (vitest.mutation.config.ts), and a mutant's run stops at its first failure.
 */
const EVENT_STORE_TESTS = [
  'test/unit/translateMongoError.unit.test.ts',
  'test/unit/archiveReads.unit.test.ts',
  'test/unit/mongoEventStoreAppend.unit.test.ts',
  'test/wire/append.wire.test.ts',
  'test/wire/streamPages.wire.test.ts',
  // The feed closes abandoned positions (positions.ts) and reads joined (archive.ts).
  'test/wire/feed.wire.test.ts',
  'test/sim/guards.sim.test.ts',
  'test/sim/storeReads.sim.test.ts',
  'test/sim/feedHoles.sim.test.ts',
  'test/sim/archiveMove.sim.test.ts',
];
const EVENT_STORE_CONTRACT = [
  'test/contract/eventStore.contract.test.ts',
  'test/contract/eventStoreArchive.contract.test.ts',
];
const FEED_TESTS = [
  'test/wire/feed.wire.test.ts',
  'test/sim/guards.sim.test.ts',
  'test/sim/feedHoles.sim.test.ts',
  'test/sim/archiveMove.sim.test.ts',
];
const PROJECTOR_TESTS = [
  'test/unit/mongoProjectorFilters.unit.test.ts',
  'test/unit/mongoProjectorStorageOptions.unit.test.ts',
  'test/unit/readModelIndexes.unit.test.ts',
  'test/wire/projector.wire.test.ts',
  'test/sim/guards.sim.test.ts',
  'test/sim/readModels.sim.test.ts',
  'test/sim/projectorStorage.sim.test.ts',
  'test/sim/changeLog.sim.test.ts',
];
const PROJECTOR_CONTRACT = ['test/contract/projector.contract.test.ts'];
const CHANGE_LOG_TESTS = [
  'test/unit/mongoProjectorFilters.unit.test.ts',
  'test/sim/changeLog.sim.test.ts',
  'test/sim/guards.sim.test.ts',
  'test/wire/feed.wire.test.ts',
  'test/wire/projector.wire.test.ts',
];

interface Group {
  name: string;
  /** Source files to mutate. */
  mutate: string[];
  /** The wire, simulator and unit tests that reach them. */
  tests: string[];
  /** The port's contract suites (slow on the simulator): run with `--contract`. */
  contract: string[];
}

const GROUPS: Group[] = [
  {
    name: 'snapshots',
    mutate: ['src/eventstore/snapshots/MongoSnapshotStore.ts'],
    tests: ['test/wire/snapshots.wire.test.ts'],
    contract: ['test/contract/snapshotStore.contract.test.ts'],
  },
  {
    name: 'feed',
    mutate: ['src/eventstore/mongo/feed.ts'],
    tests: FEED_TESTS,
    contract: EVENT_STORE_CONTRACT,
  },
  {
    name: 'changeLog',
    mutate: [
      'src/projector/mongo/MongoChangeLog.ts',
      'src/projector/mongo/MongoChangeLogTail.ts',
      'src/projector/mongo/changeLogWindow.ts',
    ],
    tests: CHANGE_LOG_TESTS,
    contract: PROJECTOR_CONTRACT,
  },
  {
    name: 'append',
    mutate: ['src/eventstore/mongo/appendProtocol.ts', 'src/eventstore/mongo/positions.ts'],
    tests: EVENT_STORE_TESTS,
    contract: EVENT_STORE_CONTRACT,
  },
  {
    name: 'commitWrite',
    mutate: [
      'src/eventstore/mongo/commitWrite.ts',
      'src/eventstore/mongo/translateError.ts',
      'src/eventstore/mongo/schema.ts',
    ],
    tests: EVENT_STORE_TESTS,
    contract: EVENT_STORE_CONTRACT,
  },
  {
    name: 'eventStoreReads',
    mutate: [
      'src/eventstore/mongo/MongoEventStore.ts',
      'src/eventstore/mongo/archive.ts',
      'src/eventstore/mongo/storeReads.ts',
      'src/eventstore/mongo/streamPages.ts',
      'src/eventstore/mongo/documents.ts',
    ],
    tests: EVENT_STORE_TESTS,
    contract: EVENT_STORE_CONTRACT,
  },
  {
    name: 'readModels',
    mutate: [
      'src/projector/mongo/MongoReadCollection.ts',
      'src/projector/mongo/MongoReadModels.ts',
      'src/projector/mongo/translateReadFilter.ts',
      'src/projector/mongo/generations.ts',
    ],
    tests: PROJECTOR_TESTS,
    contract: PROJECTOR_CONTRACT,
  },
  {
    name: 'leases',
    mutate: [
      'src/projector/mongo/MongoLeases.ts',
      'src/projector/mongo/leaseOperations.ts',
      'src/projector/mongo/MongoCheckpoints.ts',
      'src/projector/mongo/MongoProjectorStorage.ts',
      'src/projector/mongo/documents.ts',
      'src/projector/mongo/driverErrors.ts',
    ],
    tests: PROJECTOR_TESTS,
    contract: PROJECTOR_CONTRACT,
  },
];

const REPORT_DIR = 'reports/mutation';
const incrementalFile = (group: Group) => `${REPORT_DIR}/${group.name}.json`;
/** The incremental file of a Stryker run on the reviewed guards' lines only. */
const GUARD_RUN = `${REPORT_DIR}/guards.json`;

/** Files named literally or by a directory pattern (`dir` + `/**` + `/*.ts`, as stryker.config.json has). */
function expand(patterns: string[]): string[] {
  const files = patterns.flatMap((pattern) => {
    const dir = /^(.*)\/\*\*\/\*\.ts$/.exec(pattern)?.[1];
    if (dir === undefined) return [pattern];
    return readdirSync(dir, { recursive: true, encoding: 'utf8' })
      .filter((f) => f.endsWith('.ts'))
      .map((f) => `${dir}/${f}`);
  });
  return [...new Set(files)].sort();
}

/** Every file stryker.config.json mutates is in exactly one group, and no group mutates more. */
function checkScope(): void {
  const config = JSON.parse(readFileSync('stryker.config.json', 'utf8')) as { mutate: string[] };
  const scope = expand(config.mutate);
  const seen = new Map<string, string>();
  const problems: string[] = [];
  for (const group of GROUPS) {
    for (const file of expand(group.mutate)) {
      const other = seen.get(file);
      if (other) problems.push(`${file} is in both ${other} and ${group.name}`);
      seen.set(file, group.name);
      if (!scope.includes(file)) problems.push(`${file} (${group.name}) is outside the scope`);
    }
    for (const test of [...group.tests, ...group.contract]) {
      if (!existsSync(test)) problems.push(`${group.name}'s test file ${test} does not exist`);
    }
  }
  for (const file of scope) if (!seen.has(file)) problems.push(`${file} is in no group`);
  if (problems.length > 0) {
    throw new Error(`mutation groups do not match the scope:\n  ${problems.join('\n  ')}`);
  }
}

function runGroup(
  group: Group,
  contract: boolean,
  extra: string[],
  without: string[] = [],
  alive = false,
): Promise<number> {
  const tests = (contract ? [...group.tests, ...group.contract] : group.tests).filter(
    (t) => !without.includes(t),
  );
  // With `alive`, only the mutants the group's last runs left alive are mutated (by their
  // locations), into a copy of its incremental file that is merged back at the end.
  const incremental = alive ? `${REPORT_DIR}/${group.name}-alive.json` : incrementalFile(group);
  if (alive) copyFileSync(incrementalFile(group), incremental);
  const args = [
    'stryker',
    'run',
    '--mutate',
    alive ? aliveLocations(group).join(',') : expand(group.mutate).join(','),
    '--incremental',
    '--incrementalFile',
    incremental,
    '--tempDirName',
    `.stryker-tmp-${group.name}`,
    '--reporters',
    'clear-text,progress-append-only',
    ...extra,
  ];
  const started = Date.now();
  const load = loadavg()
    .map((l) => l.toFixed(1))
    .join(' ');
  const what =
    (contract ? 'with the contract suites' : 'without the contract suites') +
    (alive ? ', the mutants left alive only' : '');
  console.info(`[${group.name}] start ${new Date().toISOString()} load ${load}, ${what}`);
  return new Promise((resolve) => {
    const child = spawn('npx', args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, MUTATION_TEST_FILES: tests.join(',') },
    });
    const prefix = (chunk: Buffer) =>
      chunk
        .toString()
        .split('\n')
        .filter((line) => line.trim() !== '')
        .map((line) => `[${group.name}] ${line}\n`)
        .join('');
    child.stdout.on('data', (chunk: Buffer) => process.stdout.write(prefix(chunk)));
    child.stderr.on('data', (chunk: Buffer) => process.stderr.write(prefix(chunk)));
    child.on('close', (code) => {
      if (alive && code === 0) mergeAlive(group, incremental);
      const minutes = ((Date.now() - started) / 60_000).toFixed(1);
      const endLoad = loadavg()
        .map((l) => l.toFixed(1))
        .join(' ');
      console.info(`[${group.name}] exit ${code} after ${minutes} min, load ${endLoad}`);
      resolve(code ?? 1);
    });
  });
}

type ReportMutant = ReportFiles[string]['mutants'][number];
interface IncrementalReport {
  files: ReportFiles;
  testFiles?: Record<string, { tests: { id: string; name: string }[] }>;
}

const isAlive = (m: ReportMutant) => m.status === 'Survived' || m.status === 'NoCoverage';
const locationOf = (m: ReportMutant) =>
  `${m.location.start.line}:${m.location.start.column}-${m.location.end.line}:${m.location.end.column}`;

/** `file:line:column-line:column` of every mutant the group's last runs left alive. */
function aliveLocations(group: Group): string[] {
  const report = JSON.parse(readFileSync(incrementalFile(group), 'utf8')) as IncrementalReport;
  const locations = Object.entries(report.files)
    .filter(([name]) => expand(group.mutate).includes(name))
    .flatMap(([name, file]) =>
      // Stryker's --mutate ranges count columns from 0, its reports from 1.
      file.mutants
        .filter(isAlive)
        .map(
          (m) =>
            `${name}:${m.location.start.line}:${m.location.start.column - 1}-${m.location.end.line}:${m.location.end.column}`,
        ),
    );
  return [...new Set(locations)];
}

/**
 * Merges a run on the alive mutants' locations into the group's incremental file: each
 * mutant it tested takes the status it found, the others keep theirs. Test ids differ
 * between runs, so tests are matched by file and name.
 */
function mergeAlive(group: Group, partial: string): void {
  const target = JSON.parse(readFileSync(incrementalFile(group), 'utf8')) as IncrementalReport;
  const part = JSON.parse(readFileSync(partial, 'utf8')) as IncrementalReport;
  const testFiles = (target.testFiles ??= {});
  const named = new Map<string, [string, string]>();
  for (const [file, { tests }] of Object.entries(part.testFiles ?? {})) {
    for (const test of tests) named.set(test.id, [file, test.name]);
  }
  const ids = new Map<string, string>();
  let next = 0;
  for (const [file, { tests }] of Object.entries(testFiles)) {
    for (const test of tests) {
      ids.set(`${file}\0${test.name}`, test.id);
      next = Math.max(next, Number(test.id) + 1);
    }
  }
  const translate = (from: string[] | undefined) =>
    (from ?? []).map((id) => {
      const [file, name] = named.get(id) ?? ['(unknown)', id];
      const key = `${file}\0${name}`;
      let found = ids.get(key);
      if (found === undefined) {
        found = String(next++);
        ids.set(key, found);
        (testFiles[file] ??= { tests: [] }).tests.push({ id: found, name });
      }
      return found;
    });
  const key = (m: ReportMutant) => `${locationOf(m)} ${m.mutatorName} ${m.replacement ?? ''}`;
  for (const [name, file] of Object.entries(part.files)) {
    const into = target.files[name];
    if (!into || into.source !== file.source) {
      throw new Error(`${name} changed since the group's last run: run the group in full`);
    }
    const byKey = new Map(into.mutants.map((m) => [key(m), m]));
    for (const m of file.mutants) {
      const old = byKey.get(key(m));
      // Only the mutants that were alive: one killed before stays killed (a run without the
      // contract suites cannot undo a kill by them).
      if (!old || !isAlive(old)) continue;
      Object.assign(old, {
        status: m.status,
        statusReason: m.statusReason,
        testsCompleted: m.testsCompleted,
        killedBy: translate(m.killedBy),
        coveredBy: translate(m.coveredBy),
      });
    }
  }
  writeFileSync(incrementalFile(group), JSON.stringify(target));
}

const pct = (n: number) => (Number.isNaN(n) ? '   -  ' : `${n.toFixed(1).padStart(5)}%`);

/** The groups' incremental files: each group's own source files, and every test by id. */
function loadReports(): { files: ReportFiles; tests: Map<string, string>; missing: string[] } {
  const files: ReportFiles = {};
  const tests = new Map<string, string>();
  const missing: string[] = [];
  for (const group of GROUPS) {
    const path = incrementalFile(group);
    if (!existsSync(path)) {
      missing.push(group.name);
      continue;
    }
    const result = JSON.parse(readFileSync(path, 'utf8')) as {
      files: ReportFiles;
      testFiles?: Record<string, { tests: { id: string; name: string }[] }>;
    };
    for (const [name, file] of Object.entries(result.files)) {
      // Only the group's own files: a group's report names nothing else, but be sure.
      if (expand(group.mutate).includes(name)) files[name] = file;
    }
    for (const [testFile, { tests: inFile }] of Object.entries(result.testFiles ?? {})) {
      for (const test of inFile) tests.set(test.id, `${testFile} > ${test.name}`);
    }
  }
  return { files, tests, missing };
}

interface Position {
  line: number;
  column: number;
}

const atOrBefore = (a: Position, b: Position) =>
  a.line < b.line || (a.line === b.line && a.column <= b.column);

/** The 1-based line and column of `index` in `text`. */
function positionOf(text: string, index: number): Position {
  const lines = text.slice(0, index).split('\n');
  return { line: lines.length, column: (lines.at(-1) ?? '').length + 1 };
}

/**
 * The guard table: for each guard an outside review removed (scripts/guardList.ts), the
 * mutants Stryker made of its code, their status in the last runs, and a test that killed
 * each. A guard in a file outside the mutated scope is named as such.
 */
function guardTable(): void {
  const { files, tests } = loadReports();
  // A run on the guards' lines alone (see the README), for files whose group has not run
  // and for guards outside the scope.
  if (existsSync(GUARD_RUN)) {
    const run = JSON.parse(readFileSync(GUARD_RUN, 'utf8')) as {
      files: ReportFiles;
      testFiles?: Record<string, { tests: { id: string; name: string }[] }>;
    };
    for (const [name, file] of Object.entries(run.files)) files[name] ??= file;
    for (const [testFile, { tests: inFile }] of Object.entries(run.testFiles ?? {})) {
      for (const test of inFile)
        if (!tests.has(test.id)) tests.set(test.id, `${testFile} > ${test.name}`);
    }
  }
  console.info('| guard | where | mutant | status | killed by |');
  console.info('| --- | --- | --- | --- | --- |');
  for (const guard of GUARDS.filter((g) => g.reviewed)) {
    const report = files[guard.file];
    const source = report?.source ?? readFileSync(guard.file, 'utf8');
    const at = source.indexOf(guard.from);
    const start = positionOf(source, at);
    const end = positionOf(source, at + guard.from.length);
    const where = `${guard.file}:${start.line}`;
    if (!report) {
      const why = expand(JSON.parse(readFileSync('stryker.config.json', 'utf8')).mutate).includes(
        guard.file,
      )
        ? 'its group has not run'
        : 'outside the mutated scope';
      console.info(`| ${guard.id} | ${where} | (${why}) | | |`);
      continue;
    }
    const on = report.mutants.filter(
      (m) => atOrBefore(start, m.location.end) && atOrBefore(m.location.start, end),
    );
    if (on.length === 0) console.info(`| ${guard.id} | ${where} | (no mutant) | | |`);
    for (const m of on) {
      const replacement = (m.replacement ?? '').replace(/\s+/g, ' ').slice(0, 60);
      const by = (m.killedBy ?? []).map((id) => tests.get(id) ?? id)[0] ?? '';
      console.info(
        `| ${guard.id} | ${guard.file}:${m.location.start.line}:${m.location.start.column} | ${m.mutatorName}: \`${replacement}\` | ${m.status} | ${by} |`,
      );
    }
  }
}

/** Prints each file's and the whole scope's score from the groups' incremental files. */
function report(survivors: boolean): void {
  const { files, missing } = loadReports();
  const all = calculateMetrics(files);
  if (survivors) {
    // One line per survivor: where, which mutator, what it became.
    for (const [name, file] of Object.entries(files)) {
      for (const m of file.mutants) {
        if (m.status !== 'Survived' && m.status !== 'NoCoverage') continue;
        const at = `${name}:${m.location.start.line}:${m.location.start.column}`;
        const replacement = (m.replacement ?? '').replace(/\s+/g, ' ').slice(0, 100);
        console.info(
          `${m.status === 'NoCoverage' ? 'nocov' : 'alive'} ${at} ${m.mutatorName}: ${replacement}`,
        );
      }
    }
  }
  // A known fault of the vitest runner: a mutant whose run completed no test at all is
  // reported as Survived. Counted so a score is not read as a test gap it is not.
  const unmeasured = Object.values(files)
    .flatMap((f) => f.mutants)
    .filter((m) => m.status === 'Survived' && m.testsCompleted === 0).length;
  const rows: string[][] = [];
  const visit = (node: typeof all) => {
    if (node.file) {
      const m = node.metrics;
      rows.push([
        node.name,
        String(m.totalValid),
        String(m.killed),
        String(m.timeout),
        String(m.survived),
        String(m.noCoverage),
        String(m.ignored),
        pct(m.mutationScore),
      ]);
    }
    node.childResults.forEach(visit);
  };
  visit(all);
  rows.sort((a, b) => (a[0] ?? '').localeCompare(b[0] ?? ''));
  const m = all.metrics;
  const header = ['file', 'mutants', 'killed', 'timeout', 'survived', 'no cov', 'ignored', 'score'];
  const total = [
    'all files',
    String(m.totalValid),
    String(m.killed),
    String(m.timeout),
    String(m.survived),
    String(m.noCoverage),
    String(m.ignored),
    pct(m.mutationScore),
  ];
  const table = [header, ...rows, total];
  const widths = header.map((_, i) => Math.max(...table.map((r) => (r[i] ?? '').length)));
  for (const row of table) {
    console.info(
      row
        .map((cell, i) => (i === 0 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0)))
        .join('  '),
    );
  }
  if (m.pending > 0) console.info(`${m.pending} mutants pending (a run was stopped)`);
  if (unmeasured > 0) {
    console.info(
      `${unmeasured} of the survivors completed no test in their run (the runner's fault, not a kill)`,
    );
  }
  if (missing.length > 0) console.info(`not run yet: ${missing.join(', ')}`);
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const flag = (name: string) => argv.includes(name);
  const value = (name: string) => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  checkScope();
  if (flag('--guards')) {
    guardTable();
    return;
  }
  if (flag('--list')) {
    for (const group of GROUPS) {
      console.info(
        `${group.name}\n  mutates  ${expand(group.mutate).join(', ')}\n  tests    ${group.tests.join(', ')}\n  contract ${group.contract.join(', ')}`,
      );
    }
    return;
  }
  if (!flag('--report')) {
    const only = value('--only')?.split(',');
    const unknown = only?.filter((n) => !GROUPS.some((g) => g.name === n)) ?? [];
    if (unknown.length > 0) throw new Error(`no such group: ${unknown.join(', ')}`);
    const queue = GROUPS.filter((g) => !only || only.includes(g.name));
    const lanes = Math.max(1, Math.min(Number(value('--lanes') ?? 1), cpus().length));
    // Test files left out of every group's run (a test failing on main fails Stryker's
    // initial run); the scores are then lower bounds.
    const without = value('--without')?.split(',') ?? [];
    // Anything after `--` goes to each Stryker run, e.g. `-- --force` or `-- --timeoutMS 20000`.
    const dashes = argv.indexOf('--');
    const extra = dashes >= 0 ? argv.slice(dashes + 1) : [];
    mkdirSync(REPORT_DIR, { recursive: true });
    const failed: string[] = [];
    await Promise.all(
      Array.from({ length: lanes }, async () => {
        for (let group = queue.shift(); group; group = queue.shift()) {
          const code = await runGroup(group, flag('--contract'), extra, without, flag('--alive'));
          if (code !== 0) failed.push(group.name);
        }
      }),
    );
    if (failed.length > 0) console.info(`groups that did not finish: ${failed.join(', ')}`);
  }
  report(flag('--survivors'));
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
