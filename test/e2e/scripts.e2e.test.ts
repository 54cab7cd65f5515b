import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../support/server.js';

const run = promisify(execFile);

/** Runs a script with tsx and the given environment; resolves with its exit code and output. */
async function script(path: string, env: Record<string, string>) {
  try {
    const { stdout, stderr } = await run('npx', ['tsx', path], {
      env: { ...process.env, CORKBOARD_URL: '', PORT: '', ADMIN_TOKEN: '', ...env },
      timeout: 60_000,
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('command-line scripts against a running server', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(async () => {
    await server?.close();
  });

  it('npm run rebuild rebuilds the memory store of a running server through the admin API', async () => {
    const alice = await server.register('alice');
    await server.gql(
      `mutation { createBoard(input: { name: "R" }) { __typename } }`,
      {},
      alice.token,
    );
    const before = (await server.storage.projector.readModels.active()).generation;
    const result = await script('scripts/rebuild.ts', {
      PORT: new URL(server.url).port,
      ADMIN_TOKEN: server.app.admin.token,
    });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const after = (await server.storage.projector.readModels.active()).generation;
    expect(after).not.toBe(before);
    expect(result.stdout).toContain(
      `rebuilt 2 commits into generation ${after}; reads now use it (was ${before}).`,
    );
  }, 90_000);

  it('npm run rebuild says in one line that the admin token is wrong', async () => {
    const result = await script('scripts/rebuild.ts', {
      CORKBOARD_URL: `${server.url}/graphql`,
      ADMIN_TOKEN: 'not-the-admin-token-0123456789abcdef',
    });
    expect(result.code).toBe(1);
    // A token that is neither the admin's nor a user's is refused as unauthenticated.
    expect(result.stderr.trim()).toMatch(/^rebuild: The bearer token is malformed or unknown/);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
  }, 90_000);

  it('seed and example-client say in one line, without a stack, that no server answers at PORT', async () => {
    for (const [path, name] of [
      ['scripts/seed.ts', 'seed'],
      ['scripts/example-client.ts', 'example-client'],
    ] as const) {
      // Port 9 (discard) has no Corkboard on it.
      const result = await script(path, { PORT: '9' });
      expect(result.code).toBe(1);
      expect(result.stderr.trim()).toBe(
        `${name}: no Corkboard server answers at http://localhost:9/graphql: start one with \`npm start\` first (or set CORKBOARD_URL / PORT)`,
      );
    }
  }, 120_000);
});
