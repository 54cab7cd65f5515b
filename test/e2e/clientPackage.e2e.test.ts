import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../support/server.js';

/**
 * The published form of the client: `npm run build:client`, `npm pack`, installed
 * into an empty folder as a user would (its dependencies from the registry, served
 * from npm's local cache when it has them), then used by plain `node` against a
 * real server and type-checked by `tsc` as a consumer's code.
 */
const run = promisify(execFile);
const repo = resolve(import.meta.dirname, '../..');
const installedVersion = (name: string): string =>
  (
    JSON.parse(readFileSync(join(repo, 'node_modules', name, 'package.json'), 'utf8')) as {
      version: string;
    }
  ).version;

/** A consumer's script: register, subscribe, mutate, receive; and load both bindings. */
const consumerScript = `
import { WebSocket } from 'ws';
import { createCorkboardClient, possibleTypes, BoardDocument } from '@corkboard/client';
import { liveBoard as apolloLiveBoard, corkboardCacheConfig } from '@corkboard/client/apollo';
import { liveBoard as urqlLiveBoard, corkboardGraphcache } from '@corkboard/client/urql';

const url = process.argv[2];
const anonymous = createCorkboardClient({ url });
const registered = await anonymous.registerUser({ input: { username: 'packaged', displayName: 'Packaged' } });
const client = createCorkboardClient({ url, token: registered.token, webSocketImpl: WebSocket });
const { board } = await client.createBoard({ input: { name: 'From the tarball' } });
const abort = new AbortController();
const changes = client.boardChanges(board.id, { signal: abort.signal });
const received = (async () => {
  for await (const change of changes) return change;
})();
// Subscribed before the rename: retry it until the change arrives.
let renamed;
for (let i = 0; !renamed && i < 50; i++) {
  await new Promise((r) => setTimeout(r, 100));
  const result = await client.renameBoard({ input: { boardId: board.id, name: 'Renamed', expectedVersion: board.version } });
  if (result.__typename === 'RenameBoardSuccess') renamed = result;
}
const change = await received;
abort.abort();
console.log(JSON.stringify({
  user: registered.user.username,
  change: { operation: change.operation, boardId: change.boardId, invalidated: change.invalidated },
  boardId: board.id,
  errorMembers: possibleTypes.Error,
  invalidationKeyFields: corkboardCacheConfig.typePolicies.Invalidation.keyFields,
  graphcacheKeys: typeof corkboardGraphcache().keys.Invalidation,
  bindings: [typeof apolloLiveBoard, typeof urqlLiveBoard],
  document: BoardDocument.definitions[0].name.value,
}));
`;

/** A consumer's TypeScript, checked against the installed package's declarations. */
const consumerTypes = `
import { ApolloClient, HttpLink, InMemoryCache } from '@apollo/client';
import { Client, fetchExchange } from '@urql/core';
import { cacheExchange } from '@urql/exchange-graphcache';
import {
  createCorkboardClient,
  MoveCardDocument,
  type BoardChange,
  type MoveCardMutation,
} from '@corkboard/client';
import { corkboardCacheConfig, liveBoard } from '@corkboard/client/apollo';
import { corkboardExchange, corkboardGraphcache, liveBoard as liveUrqlBoard } from '@corkboard/client/urql';

const corkboard = createCorkboardClient({ url: 'http://localhost:4000/graphql', token: 't' });
export async function move(cardId: string, toColumnId: string): Promise<string> {
  const result = await corkboard.moveCard({ input: { cardId, toColumnId, expectedVersion: 1 } });
  switch (result.__typename) {
    case 'MoveCardSuccess':
      return result.to.name;
    case 'VersionConflictError':
      return result.conflicts.map((c) => c.fields.join()).join();
    default:
      return result.message;
  }
}
// @ts-expect-error expectedVersion is an Int
void corkboard.moveCard({ input: { cardId: 'c', toColumnId: 'k', expectedVersion: 'one' } });

const apollo = new ApolloClient({ link: new HttpLink({ uri: '/graphql' }), cache: new InMemoryCache(corkboardCacheConfig) });
const live = liveBoard(apollo, corkboard, 'board', { ownChangeGraceMs: 100 });
export const cursor: string | null = live.cursor;
export const moved: Promise<{ data?: MoveCardMutation | undefined | null }> = apollo.mutate({
  mutation: MoveCardDocument,
  variables: { input: { cardId: 'c', toColumnId: 'k', expectedVersion: 1 } },
});

const urql = new Client({
  url: '/graphql',
  exchanges: [cacheExchange(corkboardGraphcache()), corkboardExchange(corkboard), fetchExchange],
});
liveUrqlBoard(urql, 'board').stop();
export const versions = (change: BoardChange): number[] => change.invalidated.map((i) => i.version);
`;

describe('the packed @corkboard/client', () => {
  let s: TestServer;
  let dir: string;
  let tarball: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'corkboard-client-'));
    await run(process.execPath, ['--import', 'tsx', 'scripts/build-client.ts'], { cwd: repo });
    const packed = await run(
      'npm',
      ['pack', './dist/client', '--pack-destination', dir, '--json'],
      {
        cwd: repo,
      },
    );
    tarball = join(dir, (JSON.parse(packed.stdout) as { filename: string }[])[0]!.filename);
    writeFileSync(
      join(dir, 'package.json'),
      JSON.stringify({ name: 'consumer', private: true, type: 'module' }),
    );
    // Pinned to what this repository installed, so npm's cache serves them.
    const dependencies = [
      'ws',
      '@types/ws',
      '@apollo/client',
      'rxjs',
      '@urql/core',
      '@urql/exchange-graphcache',
    ];
    await run(
      'npm',
      [
        'install',
        '--prefer-offline',
        '--no-audit',
        '--no-fund',
        '--loglevel=error',
        tarball,
        ...dependencies.map((name) => `${name}@${installedVersion(name)}`),
      ],
      { cwd: dir },
    );
    s = await startTestServer();
  }, 240_000);
  afterAll(async () => {
    await s?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('is an ESM package with types, subpath exports, and no server dependency', () => {
    const installed = join(dir, 'node_modules/@corkboard/client');
    const manifest = JSON.parse(readFileSync(join(installed, 'package.json'), 'utf8'));
    expect(manifest).toMatchObject({
      name: '@corkboard/client',
      type: 'module',
      types: './index.d.ts',
      sideEffects: false,
      peerDependencies: { graphql: expect.any(String), '@apollo/client': expect.any(String) },
      peerDependenciesMeta: {
        '@apollo/client': { optional: true },
        '@urql/core': { optional: true },
      },
    });
    expect(Object.keys(manifest.exports)).toEqual(['.', './apollo', './urql', './package.json']);
    expect(Object.keys(manifest.dependencies).sort()).toEqual([
      '@graphql-typed-document-node/core',
      'graphql-ws',
    ]);
    expect(existsSync(join(installed, 'README.md'))).toBe(true);
    for (const file of [
      'index.js',
      'index.d.ts',
      'apollo.js',
      'apollo.d.ts',
      'urql.js',
      'urql.d.ts',
    ]) {
      expect(existsSync(join(installed, file)), file).toBe(true);
    }
    for (const server of ['mongodb', 'graphql-yoga', 'pino', '@pothos/core']) {
      expect(existsSync(join(dir, 'node_modules', server)), server).toBe(false);
    }
  });

  it('registers, subscribes, mutates and receives the change under plain node', async () => {
    writeFileSync(join(dir, 'consumer.mjs'), consumerScript);
    const { stdout } = await run(process.execPath, ['consumer.mjs', `${s.url}/graphql`], {
      cwd: dir,
      timeout: 30_000,
    });
    const out = JSON.parse(stdout.trim().split('\n').at(-1)!);
    expect(out.user).toBe('packaged');
    expect(out.change).toMatchObject({
      operation: 'renameBoard',
      boardId: out.boardId,
      invalidated: [{ typename: 'Board', id: out.boardId, fields: ['name'], version: 2 }],
    });
    expect(out.errorMembers).toContain('VersionConflictError');
    expect(out.invalidationKeyFields).toBe(false);
    expect(out.graphcacheKeys).toBe('function');
    expect(out.bindings).toEqual(['function', 'function']);
    expect(out.document).toBe('Board');
  }, 60_000);

  it("type-checks a consumer's code against the installed declarations", async () => {
    writeFileSync(join(dir, 'consumer.ts'), consumerTypes);
    writeFileSync(
      join(dir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          target: 'ES2022',
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          lib: ['ES2023', 'DOM'],
          strict: true,
          noEmit: true,
          // The libraries' own declarations are theirs to check; the consumer's code is checked.
          skipLibCheck: true,
          types: [],
        },
        files: ['consumer.ts'],
      }),
    );
    const tsc = join(repo, 'node_modules/typescript/bin/tsc');
    const checked = await run(process.execPath, [tsc, '-p', 'tsconfig.json'], { cwd: dir }).then(
      () => 'ok',
      (error: { stdout: string }) => error.stdout,
    );
    expect(checked).toBe('ok');
  }, 120_000);

  it("type-checks its README's Apollo and urql examples as written, imports included", async () => {
    const readme = readFileSync(join(dir, 'node_modules/@corkboard/client/README.md'), 'utf8');
    const exampleUnder = (heading: string) => {
      const section = readme.slice(readme.indexOf(`\n## ${heading}\n`));
      const example = /```ts\n([\s\S]*?)```/.exec(section)?.[1];
      if (!example) throw new Error(`no example under ${heading}`);
      // What the examples take as given: the token from registerUser and a board's ID.
      return `declare const token: string;\ndeclare const boardId: string;\n${example}export {};\n`;
    };
    writeFileSync(join(dir, 'readme-apollo.ts'), exampleUnder('Apollo Client'));
    writeFileSync(join(dir, 'readme-urql.ts'), exampleUnder('urql (Graphcache)'));
    writeFileSync(
      join(dir, 'tsconfig.readme.json'),
      JSON.stringify({
        extends: './tsconfig.json',
        compilerOptions: { types: ['ws'] },
        files: ['readme-apollo.ts', 'readme-urql.ts'],
      }),
    );
    const tsc = join(repo, 'node_modules/typescript/bin/tsc');
    const checked = await run(process.execPath, [tsc, '-p', 'tsconfig.readme.json'], {
      cwd: dir,
    }).then(
      () => 'ok',
      (error: { stdout: string }) => error.stdout,
    );
    expect(checked).toBe('ok');
  }, 120_000);
});
