import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exchange, postGraphQL } from '../support/rawHttp.js';
import { REPO_ROOT, startServerProcess, type ServerProcess } from '../support/serverProcess.js';
import { GRAPHIQL_ASSET_PATH } from '../../src/http/graphiqlAssets.js';

const run = promisify(execFile);

describe('the production build (npm run build, node dist/main.js) with NODE_ENV=production', () => {
  let s: ServerProcess;
  let allowed: ServerProcess;

  beforeAll(async () => {
    await run('npm', ['run', 'build', '--silent'], { cwd: REPO_ROOT });
    const command = [process.execPath, 'dist/main.js'];
    [s, allowed] = await Promise.all([
      startServerProcess({ command, env: { NODE_ENV: 'production' } }),
      startServerProcess({
        command,
        env: { NODE_ENV: 'production', CORS_ORIGINS: 'https://app.example.com' },
      }),
    ]);
  }, 240_000);

  afterAll(async () => {
    await Promise.all([s?.kill(), allowed?.kill()]);
  });

  it('starts from compiled JavaScript and answers a query', async () => {
    const answer = await postGraphQL(s.url, '{ boards { id } }');
    expect(JSON.parse(answer.body.toString())).toEqual({ data: { boards: [] } });
  });

  it('suggests no field names and answers no introspection', async () => {
    const typo = JSON.parse((await postGraphQL(s.url, '{ board { id } }')).body.toString());
    expect(typo.errors[0].message).not.toMatch(/Did you mean/);
    const introspection = JSON.parse(
      (await postGraphQL(s.url, '{ __schema { types { name } } }')).body.toString(),
    );
    expect(introspection.data).toBeUndefined();
    expect(introspection.errors.length).toBeGreaterThan(0);
  });

  it('serves no GraphiQL', async () => {
    const page = await exchange(`${s.url}/graphql`, { headers: { accept: 'text/html' } });
    // The GraphiQL page links its bundle under this path; nothing here may.
    expect(page.body.toString()).not.toContain(GRAPHIQL_ASSET_PATH);
  });

  it('refuses a mutation sent as a form post or a header-less GET (CSRF)', async () => {
    const mutation = `mutation { registerUser(input: { username: "csrf", displayName: "x" }) { __typename } }`;
    const form = await exchange(`${s.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `query=${encodeURIComponent(mutation)}`,
    });
    expect(form.status).toBe(403);
    const get = await exchange(`${s.url}/graphql?query=${encodeURIComponent('{ boards { id } }')}`);
    expect(get.status).toBe(403);
    const withHeader = await exchange(
      `${s.url}/graphql?query=${encodeURIComponent('{ boards { id } }')}`,
      { headers: { 'x-graphql-yoga-csrf': '1' } },
    );
    expect(withHeader.status).toBe(200);
  });

  it('allows only the configured origins and never with credentials (CORS)', async () => {
    const preflight = (server: ServerProcess, origin: string) =>
      exchange(`${server.url}/graphql`, {
        method: 'OPTIONS',
        headers: {
          origin,
          'access-control-request-method': 'POST',
          'access-control-request-headers': 'content-type, authorization',
        },
      });
    const denied = await preflight(s, 'https://evil.example');
    expect(denied.headers['access-control-allow-origin']).toBeUndefined();
    const listed = await preflight(allowed, 'https://app.example.com');
    expect(listed.headers['access-control-allow-origin']).toBe('https://app.example.com');
    expect(listed.headers['access-control-allow-credentials']).not.toBe('true');
    const other = await preflight(allowed, 'https://evil.example');
    expect(other.headers['access-control-allow-origin']).not.toBe('https://evil.example');
    expect(other.headers['access-control-allow-credentials']).not.toBe('true');
  });
});
