import { spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { DEMO_PATHS } from '../../src/demo/demoPage.js';
import { REPO_ROOT, startServerProcess, type ServerProcess } from '../support/serverProcess.js';
import { until } from '../support/until.js';

/** Waits until `check` holds (the banner is written just after the server answers). */

describe('what the server process writes at start', () => {
  const started: ServerProcess[] = [];
  afterEach(async () => {
    for (const p of started.splice(0)) await p.kill();
  });

  it('never writes a generated admin token into the log stream on stdout; in development it goes to stderr', async () => {
    const server = await startServerProcess({ env: { LOG_LEVEL: 'info', ADMIN_TOKEN: '' } });
    started.push(server);
    await until(() => server.stderr().includes('#token='));
    const token = /#token=([A-Za-z0-9_-]+)/.exec(server.stderr())![1]!;
    expect(token.length).toBeGreaterThanOrEqual(32);
    await until(() => server.stdout().includes('Admin:'));
    expect(server.stdout()).not.toContain(token);
    expect(server.stdout()).toContain('storage ready'); // the JSON log is on stdout
  });

  it('prints the /demo URL beside GraphiQL', async () => {
    const server = await startServerProcess({ env: { LOG_LEVEL: 'warn' } });
    started.push(server);
    await until(() => server.stdout().includes('Admin:'));
    expect(server.stdout()).toMatch(
      new RegExp(`GraphiQL: (http://\\S+)/graphql\\n  Demo: +\\1${DEMO_PATHS.page}\\n`),
    );
  });

  it('writes a generated admin token nowhere in production (no terminal)', async () => {
    const server = await startServerProcess({
      env: { LOG_LEVEL: 'info', ADMIN_TOKEN: '', NODE_ENV: 'production', STORE: 'memory' },
    });
    started.push(server);
    await until(() => server.stdout().includes('Admin:'));
    await sleep(200);
    expect(server.output()).not.toContain('#token=');
    expect(server.output()).not.toMatch(/ADMIN_TOKEN=[A-Za-z0-9_-]{32}/);
  });

  it('refuses to start in production without a database unless STORE=memory says so', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
      cwd: REPO_ROOT,
      env: { ...process.env, NODE_ENV: 'production', STORE: '', MONGODB_URI: '', PORT: '0' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    const code = await new Promise<number | null>((done) => child.once('exit', done));
    expect(code).toBe(1);
    expect(stderr).toContain('MONGODB_URI');
    expect(stderr).toContain('STORE=memory');
    expect(stderr.trim().split('\n')).toHaveLength(1);
  });
});
