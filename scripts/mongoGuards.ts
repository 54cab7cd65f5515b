/**
 * The mongo adapters' safety guards, each removed on its own, and the test that fails
 * without it: `npm run test:guards` (all), `npm run test:guards -- --only <id>[,<id>]`,
 * `npm run test:guards -- --list` (the table of guards, nothing run).
 *
 * Every guard is a text replacement in one source file (`from` must occur exactly once,
 * so a guard that moved or changed is reported, not silently skipped). For each, a
 * scratch copy of the repository (its own `src`, `test`, configs; `node_modules` linked)
 * gets the replacement and runs vitest with `--bail 1`: first on the guard's `hint` files
 * (where the test that catches it lives, so the run is short), then, if those pass, on
 * the whole default-run mongo tiers (`TIERS`). It prints guard -> killing test, and exits
 * non-zero if any guard survives or is not found. `--files a,b` runs only those test files. `--check` only checks that every guard's
 * code is where the table says (fast; run it after editing an adapter).
 */
import { spawn } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GUARDS, type Guard } from './guardList.js';

/** The test files run against every guard that its hint files do not catch. */
const TIERS = [
  'test/wire',
  'test/sim',
  'test/contract',
  'test/unit/mongoEventStoreAppend.unit.test.ts',
  'test/unit/mongoProjectorFilters.unit.test.ts',
  'test/unit/translateMongoError.unit.test.ts',
];

interface Outcome {
  guard: Guard;
  result: 'killed' | 'survived' | 'not found';
  /** The failing test (file > name), when killed. */
  by?: string;
  seconds: number;
}

/** The files of the repository a test run needs, copied so mutations never touch the clone. */
const COPIED = ['src', 'test', 'schema', 'package.json', 'tsconfig.json', 'vitest.config.ts'];

function scratchCopy(root: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'corkboard-guards-'));
  for (const entry of COPIED) cpSync(join(root, entry), join(dir, entry), { recursive: true });
  symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'), 'dir');
  return dir;
}

/** A test that failed: its file and name, and its title alone (for `-t`). */
interface Failure {
  file: string;
  fullName: string;
  title: string | undefined;
}

/** Runs vitest on `files` in `dir`; resolves to the first failing test, or undefined. */
async function firstFailure(
  dir: string,
  files: string[],
  title?: string,
): Promise<Failure | undefined> {
  const report = join(dir, 'vitest-report.json');
  rmSync(report, { force: true });
  const filter = title === undefined ? [] : ['-t', `^${escapeRegExp(title)}$`];
  const code = await new Promise<number>((resolve) => {
    const child = spawn(
      'npx',
      [
        'vitest',
        'run',
        '--bail',
        '1',
        '--reporter',
        'json',
        '--outputFile',
        report,
        ...filter,
        ...files,
      ],
      { cwd: dir, stdio: 'ignore' },
    );
    child.on('exit', (c) => resolve(c ?? 1));
  });
  if (code === 0) return undefined;
  try {
    const json = JSON.parse(readFileSync(report, 'utf8')) as {
      testResults: {
        name: string;
        message?: string;
        assertionResults: { status: string; fullName: string; title: string }[];
      }[];
    };
    // Files run in parallel: report the failure in the earliest of `files` (the hint
    // order), not whichever file the report happens to list first.
    const rank = (name: string) => {
      const i = files.findIndex((f) => name.slice(dir.length + 1).startsWith(f));
      return i < 0 ? files.length : i;
    };
    const results = [...json.testResults].sort((a, b) => rank(a.name) - rank(b.name));
    for (const result of results) {
      const failed = result.assertionResults.find((a) => a.status === 'failed');
      const file = result.name.slice(dir.length + 1);
      if (failed) return { file, fullName: failed.fullName, title: failed.title };
      if (result.message) {
        return { file, fullName: `(${result.message.split('\n')[0]})`, title: undefined };
      }
    }
  } catch {
    // No report: vitest itself failed (a mutant that does not compile or load).
  }
  return { file: files.join(' '), fullName: `vitest exited with ${code}`, title: undefined };
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * Runs `guard`'s mutant: hint files, then the tiers. A failing test counts only if it
 * passes once the guard is back (so a test that failed for another reason, e.g. load, is
 * not taken for the one that catches the guard); otherwise the search goes on.
 */
async function killer(
  dir: string,
  guard: Guard,
  path: string,
  original: string,
): Promise<{ by: string | undefined; unconfirmed: string[] }> {
  const hint = guard.hint.filter((f) => existsSync(join(dir, f)));
  const unconfirmed: string[] = [];
  for (const files of filesArg ? [filesArg] : [hint, TIERS]) {
    if (files.length === 0) continue;
    writeFileSync(path, original.replace(guard.from, guard.to));
    const failure = await firstFailure(dir, files);
    writeFileSync(path, original);
    if (!failure) continue;
    const name = `${failure.file} > ${failure.fullName}`;
    if (failure.title === undefined) return { by: name, unconfirmed };
    if (!(await firstFailure(dir, [failure.file], failure.title))) {
      return { by: name, unconfirmed };
    }
    unconfirmed.push(`${name} (fails without the mutation too)`);
  }
  return { by: undefined, unconfirmed };
}

const args = process.argv.slice(2);
/** `--files a,b`: run only these test files against each guard (to check a new test). */
const filesArg = args.includes('--files')
  ? args[args.indexOf('--files') + 1]?.split(',')
  : undefined;

async function main(): Promise<void> {
  const onlyArg = args.indexOf('--only');
  const only = onlyArg >= 0 ? new Set(args[onlyArg + 1]?.split(',')) : undefined;
  const guards = only ? GUARDS.filter((g) => only.has(g.id)) : GUARDS;
  if (args.includes('--list')) {
    for (const g of guards) console.info(`${g.id}\t${g.file}\t${g.what}`);
    return;
  }
  const root = process.cwd();
  if (args.includes('--check')) {
    const missing = guards.filter((g) => {
      const text = readFileSync(join(root, g.file), 'utf8');
      const at = text.indexOf(g.from);
      return at < 0 || text.indexOf(g.from, at + 1) >= 0;
    });
    for (const g of missing) console.info(`${g.id}: not found once in ${g.file}`);
    console.info(`${guards.length - missing.length} of ${guards.length} guards found`);
    if (missing.length > 0) process.exitCode = 1;
    return;
  }
  const dir = scratchCopy(root);
  const outcomes: Outcome[] = [];
  try {
    for (const guard of guards) {
      const started = performance.now();
      const path = join(dir, guard.file);
      const original = readFileSync(path, 'utf8');
      const at = original.indexOf(guard.from);
      if (at < 0 || original.indexOf(guard.from, at + 1) >= 0) {
        outcomes.push({ guard, result: 'not found', seconds: 0 });
        console.info(`${guard.id}: NOT FOUND (or found twice) in ${guard.file}`);
        continue;
      }
      try {
        const { by, unconfirmed } = await killer(dir, guard, path, original);
        for (const note of unconfirmed) console.info(`${guard.id}: not counted: ${note}`);
        const seconds = Math.round((performance.now() - started) / 1000);
        outcomes.push({
          guard,
          result: by ? 'killed' : 'survived',
          ...(by ? { by } : {}),
          seconds,
        });
        console.info(`${guard.id}: ${by ? `killed by ${by}` : 'SURVIVED'} (${seconds} s)`);
      } finally {
        writeFileSync(path, original);
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  console.info('\n| guard | what | file | killed by |\n| --- | --- | --- | --- |');
  for (const o of outcomes) {
    const mark = o.guard.reviewed ? ' (reviewed)' : '';
    const by = o.result === 'killed' ? o.by! : `**${o.result}**`;
    console.info(`| \`${o.guard.id}\`${mark} | ${o.guard.what} | ${o.guard.file} | ${by} |`);
  }
  const bad = outcomes.filter((o) => o.result !== 'killed');
  console.info(`\n${outcomes.length - bad.length} of ${outcomes.length} guards caught by a test`);
  if (bad.length > 0) process.exitCode = 1;
}

await main();
