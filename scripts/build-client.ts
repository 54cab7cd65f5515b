/**
 * Builds the `@corkboard/client` package from src/sdk into dist/client: compiled
 * ESM JavaScript and `.d.ts` types (tsconfig.client.json), a package.json with
 * `exports` for `.`, `./apollo` and `./urql`, and the package README
 * (src/sdk/README.md).
 *
 *   npm run build:client && npm pack ./dist/client
 *
 * Runtime dependencies are only what the client itself imports (graphql-ws, and the
 * TypedDocumentNode type its declarations name), at the versions this repository
 * is tested with; `graphql` is a peer, and Apollo Client and urql are optional
 * peers needed only by the subpath that binds them.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'dist/client');

interface RootPackage {
  version: string;
  engines: Record<string, string>;
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
}
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as RootPackage;
const versionOf = (name: string): string => {
  const range = pkg.dependencies[name] ?? pkg.devDependencies[name];
  if (!range) throw new Error(`package.json names no version of ${name}`);
  return range;
};
/** `^4.3.8` -> `^4.0.0`: a peer range that accepts the whole major the bindings are written for. */
const majorOf = (name: string): string => `^${/\d+/.exec(versionOf(name))![0]}.0.0`;

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
execFileSync(
  process.execPath,
  [join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.client.json'],
  {
    cwd: root,
    stdio: 'inherit',
  },
);

const entry = (name: string) => ({ types: `./${name}.d.ts`, default: `./${name}.js` });
const manifest = {
  name: '@corkboard/client',
  version: pkg.version,
  description:
    'Typed client for Corkboard boards: operations, a resumable boardChanges subscription, and live Apollo Client and urql Graphcache caches.',
  type: 'module',
  exports: {
    '.': entry('index'),
    './apollo': entry('apollo'),
    './urql': entry('urql'),
    './package.json': './package.json',
  },
  main: './index.js',
  types: './index.d.ts',
  sideEffects: false,
  engines: pkg.engines,
  dependencies: {
    '@graphql-typed-document-node/core': versionOf('@graphql-typed-document-node/core'),
    'graphql-ws': versionOf('graphql-ws'),
  },
  peerDependencies: {
    graphql: majorOf('graphql'),
    '@apollo/client': majorOf('@apollo/client'),
    '@urql/core': majorOf('@urql/core'),
    '@urql/exchange-graphcache': majorOf('@urql/exchange-graphcache'),
  },
  peerDependenciesMeta: {
    '@apollo/client': { optional: true },
    '@urql/core': { optional: true },
    '@urql/exchange-graphcache': { optional: true },
  },
};
writeFileSync(join(out, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`);
copyFileSync(join(root, 'src/sdk/README.md'), join(out, 'README.md'));
console.log(`built ${manifest.name}@${manifest.version} in ${out}`);
