import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeStaticAsset, sendStaticAsset, type StaticAsset } from '../http/staticAssets.js';

/**
 * The `/demo` board page: a small React + Apollo Client app on `@corkboard/client`
 * (its source is `src/demo/app`), bundled by `scripts/build-demo.ts` into
 * {@link DEMO_BUNDLE_DIR} and served from there with a strict CSP. Nothing is loaded
 * from elsewhere, so it works offline on loopback.
 */

/** Where the page and its files are served. */
export const DEMO_PATHS = {
  page: '/demo',
  /** Prefix of the bundle's files (content-hashed names). */
  assets: '/demo/assets/',
} as const;

/** The most the page's JavaScript may weigh gzipped; the build fails above it. */
export const DEMO_JS_GZIP_LIMIT_BYTES = 250 * 1024;

/**
 * Where the bundle is written and read: `dist/demo-ui` of the repository, the same
 * folder for `src/` run through tsx (`npm start`) and for compiled `dist/` (both lie
 * two levels below the repository's root).
 */
export const DEMO_BUNDLE_DIR = fileURLToPath(new URL('../../dist/demo-ui/', import.meta.url));

/** The file the build writes beside the bundle: which hashed files the page links. */
export const DEMO_MANIFEST = 'manifest.json';

/** What the build records of the bundle it wrote. */
export interface DemoManifest {
  /** File names under {@link DEMO_BUNDLE_DIR}, content-hashed. */
  js: string;
  css: string;
  /** Sizes of the JavaScript, in bytes. */
  jsBytes: number;
  jsGzipBytes: number;
}

/**
 * The page's headers: scripts and styles only from this server (no inline script,
 * no inline `<style>`, no eval), connections to this server and its websocket, no
 * framing, no referrer.
 */
export const DEMO_SECURITY_HEADERS = {
  'content-security-policy': [
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "connect-src 'self' ws: wss:",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; '),
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
} as const;

function pageHtml(manifest: DemoManifest): string {
  return `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    <title>Corkboard demo</title>
    <link rel="icon" href="data:," />
    <link rel="stylesheet" href="${DEMO_PATHS.assets}${manifest.css}" />
  </head>
  <body>
    <noscript>The Corkboard demo needs JavaScript.</noscript>
    <div id="root"></div>
    <script src="${DEMO_PATHS.assets}${manifest.js}"></script>
  </body>
</html>
`;
}

const NOT_BUILT = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Corkboard demo</title></head>
<body><p>The demo is not built: run <code>npm run build</code> (or <code>npm start</code>, which builds it first).</p></body>
</html>
`;

/** Answers the demo's requests; false for any other path. */
export interface DemoPage {
  serve(req: IncomingMessage, res: ServerResponse, pathname: string): Promise<boolean>;
}

/**
 * Serves `/demo` from the bundle in `dir` (read once, on the first request, and kept
 * compressed in memory). Without a bundle the page says how to build it (HTTP 503).
 */
export function createDemoPage(dir: string = DEMO_BUNDLE_DIR): DemoPage {
  let loaded: Promise<{ html: StaticAsset; files: Map<string, StaticAsset> } | null> | undefined;
  const load = () =>
    (loaded ??= (async () => {
      let manifest: DemoManifest;
      try {
        manifest = JSON.parse(await readFile(join(dir, DEMO_MANIFEST), 'utf8')) as DemoManifest;
      } catch {
        loaded = undefined; // built later: look again on the next request
        return null;
      }
      const [js, css, html] = await Promise.all([
        readFile(join(dir, manifest.js)).then((b) =>
          makeStaticAsset('text/javascript; charset=utf-8', b),
        ),
        readFile(join(dir, manifest.css)).then((b) =>
          makeStaticAsset('text/css; charset=utf-8', b),
        ),
        makeStaticAsset('text/html; charset=utf-8', Buffer.from(pageHtml(manifest))),
      ]);
      return {
        html,
        files: new Map([
          [manifest.js, js],
          [manifest.css, css],
        ]),
      };
    })());
  return {
    async serve(req, res, pathname) {
      const page = pathname === DEMO_PATHS.page || pathname === `${DEMO_PATHS.page}/`;
      if (!page && !pathname.startsWith(DEMO_PATHS.assets)) return false;
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { allow: 'GET, HEAD' });
        res.end();
        return true;
      }
      const bundle = await load();
      if (!bundle) {
        res.writeHead(page ? 503 : 404, {
          ...DEMO_SECURITY_HEADERS,
          'content-type': 'text/html; charset=utf-8',
          'cache-control': 'no-store',
        });
        res.end(page ? NOT_BUILT : undefined);
        return true;
      }
      if (page) {
        sendStaticAsset(req, res, bundle.html, 'no-cache', DEMO_SECURITY_HEADERS);
        return true;
      }
      const file = bundle.files.get(pathname.slice(DEMO_PATHS.assets.length));
      if (!file) {
        res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' });
        res.end('not found');
        return true;
      }
      sendStaticAsset(req, res, file, 'public, max-age=31536000, immutable', DEMO_SECURITY_HEADERS);
      return true;
    },
  };
}
