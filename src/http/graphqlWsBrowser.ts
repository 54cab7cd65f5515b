import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

let graphqlWsBundle: string | undefined;

/**
 * graphql-ws's UMD browser build (exposes `graphqlWs`), read once from node_modules:
 * the pages this server serves (`/admin`, GraphiQL) load it from here, not from a CDN.
 */
export function graphqlWsBrowserBuild(): string {
  if (graphqlWsBundle === undefined) {
    const require = createRequire(import.meta.url);
    const root = dirname(require.resolve('graphql-ws/package.json'));
    graphqlWsBundle = readFileSync(join(root, 'umd', 'graphql-ws.min.js'), 'utf8');
  }
  return graphqlWsBundle;
}
