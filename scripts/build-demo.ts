/**
 * Builds the `/demo` board page (src/demo/app) into dist/demo-ui with esbuild: one
 * minified script and one stylesheet with content hashes in their names, and the
 * manifest the server reads to link them. Prints the script's size gzipped and fails
 * when it is over DEMO_JS_GZIP_LIMIT_BYTES.
 *
 *   npm run build:demo      (npm run build and npm start run it too)
 *
 * `@corkboard/client` and `@corkboard/client/apollo` resolve to the package's own
 * sources (src/sdk), exactly the entry points the published package exports.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';
import {
  DEMO_BUNDLE_DIR,
  DEMO_JS_GZIP_LIMIT_BYTES,
  DEMO_MANIFEST,
  type DemoManifest,
} from '../src/demo/demoPage.js';

const root = resolve(import.meta.dirname, '..');

/** Bundles the page into `outDir` and answers what it wrote. */
export async function buildDemo(outDir: string = DEMO_BUNDLE_DIR): Promise<DemoManifest> {
  const result = await build({
    entryPoints: [join(root, 'src/demo/app/main.tsx')],
    bundle: true,
    write: false,
    minify: true,
    format: 'iife',
    platform: 'browser',
    target: ['es2022'],
    jsx: 'automatic',
    outdir: outDir,
    legalComments: 'none',
    logLevel: 'warning',
    define: { 'process.env.NODE_ENV': '"production"' },
    conditions: ['production'],
    alias: {
      '@corkboard/client/apollo': join(root, 'src/sdk/apollo.ts'),
      '@corkboard/client': join(root, 'src/sdk/index.ts'),
    },
  });
  const js = result.outputFiles.find((file) => file.path.endsWith('.js'));
  const css = result.outputFiles.find((file) => file.path.endsWith('.css'));
  if (!js || !css) throw new Error('esbuild wrote no script or no stylesheet');
  const hashed = (ext: string, bytes: Uint8Array) =>
    `board.${createHash('sha256').update(bytes).digest('hex').slice(0, 12)}.${ext}`;
  const manifest: DemoManifest = {
    js: hashed('js', js.contents),
    css: hashed('css', css.contents),
    jsBytes: js.contents.length,
    jsGzipBytes: gzipSync(js.contents, { level: 9 }).length,
  };
  if (manifest.jsGzipBytes > DEMO_JS_GZIP_LIMIT_BYTES) {
    throw new Error(
      `the demo's JavaScript is ${manifest.jsGzipBytes} bytes gzipped, over the ${DEMO_JS_GZIP_LIMIT_BYTES}-byte limit`,
    );
  }
  mkdirSync(outDir, { recursive: true });
  for (const old of readdirSync(outDir)) rmSync(join(outDir, old), { force: true });
  writeFileSync(join(outDir, manifest.js), js.contents);
  writeFileSync(join(outDir, manifest.css), css.contents);
  writeFileSync(join(outDir, DEMO_MANIFEST), `${JSON.stringify(manifest, null, 2)}\n`);
  return manifest;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const kib = (bytes: number) => `${(bytes / 1024).toFixed(1)} KiB`;
  const manifest = await buildDemo();
  console.log(
    `demo: ${manifest.js} ${kib(manifest.jsBytes)}, ${kib(manifest.jsGzipBytes)} gzipped (limit ${kib(DEMO_JS_GZIP_LIMIT_BYTES)}); ${manifest.css}`,
  );
}
