import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildDemo } from '../../scripts/build-demo.js';
import {
  createDemoPage,
  DEMO_JS_GZIP_LIMIT_BYTES,
  DEMO_PATHS,
  DEMO_SECURITY_HEADERS,
  type DemoManifest,
} from '../../src/demo/demoPage.js';

/** Serves `createDemoPage(dir)` alone on a free port. */
async function serve(dir: string): Promise<{ url: string; server: Server }> {
  const page = createDemoPage(dir);
  const server = createServer((req, res) => {
    const { pathname } = new URL(req.url ?? '/', 'http://localhost');
    void page.serve(req, res, pathname).then((handled) => {
      if (!handled) res.writeHead(404).end();
    });
  });
  // No idle timeout: on a loaded machine the next request could race the 5 s default.
  server.keepAliveTimeout = 0;
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

describe('the /demo bundle and how it is served', () => {
  const dir = mkdtempSync(join(tmpdir(), 'corkboard-demo-'));
  let manifest: DemoManifest;
  let served: { url: string; server: Server };
  beforeAll(async () => {
    manifest = await buildDemo(dir);
    served = await serve(dir);
  });
  afterAll(() => {
    served?.server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it(`keeps the page's JavaScript under ${DEMO_JS_GZIP_LIMIT_BYTES / 1024} KiB gzipped`, () => {
    const js = readFileSync(join(dir, manifest.js));
    expect(manifest.jsBytes).toBe(js.length);
    expect(gzipSync(js, { level: 9 }).length).toBe(manifest.jsGzipBytes);
    expect(manifest.jsGzipBytes).toBeLessThanOrEqual(DEMO_JS_GZIP_LIMIT_BYTES);
  });

  it('serves the page with a strict CSP, linking only its own hashed files, gzipped when asked', async () => {
    const page = await fetch(`${served.url}${DEMO_PATHS.page}`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-security-policy')).toBe(
      DEMO_SECURITY_HEADERS['content-security-policy'],
    );
    expect(page.headers.get('content-security-policy')).not.toContain('unsafe');
    const html = await page.text();
    const links = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]);
    expect(links).toEqual([
      'data:,',
      `${DEMO_PATHS.assets}${manifest.css}`,
      `${DEMO_PATHS.assets}${manifest.js}`,
    ]);
    expect(html).not.toMatch(/<script>|<style>/);
    const script = await fetch(`${served.url}${DEMO_PATHS.assets}${manifest.js}`, {
      headers: { 'accept-encoding': 'gzip' },
    });
    expect(script.status).toBe(200);
    expect(script.headers.get('content-encoding')).toBe('gzip');
    expect(script.headers.get('cache-control')).toContain('immutable');
    expect(Buffer.from(await script.arrayBuffer())).toEqual(readFileSync(join(dir, manifest.js)));
    expect((await fetch(`${served.url}${DEMO_PATHS.assets}nope.js`)).status).toBe(404);
    expect((await fetch(`${served.url}${DEMO_PATHS.page}`, { method: 'POST' })).status).toBe(405);
  });

  it('says how to build the page when there is no bundle', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'corkboard-demo-empty-'));
    const bare = await serve(empty);
    try {
      const page = await fetch(`${bare.url}${DEMO_PATHS.page}`);
      expect(page.status).toBe(503);
      expect(await page.text()).toContain('npm run build');
    } finally {
      bare.server.close();
      rmSync(empty, { recursive: true, force: true });
    }
  });
});
