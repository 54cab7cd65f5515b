import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  css,
  editorWorkerService,
  favicon,
  graphqlWorker,
  js,
  jsonWorker,
} from '@graphql-yoga/render-graphiql/graphiql';
import { GRAPHIQL_BOOT_SCRIPT, GRAPHIQL_CONFIG_ID } from './graphiqlBoot.js';
import { graphqlWsBrowserBuild } from './graphqlWsBrowser.js';
import { makeStaticAsset, sendStaticAsset, type StaticAsset } from './staticAssets.js';

/** Where GraphiQL's bundle is served from. */
export const GRAPHIQL_ASSET_PATH = '/graphiql/';

/**
 * Headers of the page: scripts only from this server (no inline script, no eval),
 * inline styles (the editor sets them), fonts and images also from `data:` URLs (the
 * bundle's stylesheet embeds them), connections to this server and its websocket, no
 * framing. Everything the page needs is served here, so it works offline.
 */
export const GRAPHIQL_SECURITY_HEADERS = {
  'content-security-policy': [
    "default-src 'self'",
    "script-src 'self'",
    "worker-src 'self'",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data:",
    "font-src 'self' data:",
    "connect-src 'self' ws: wss:",
    "object-src 'none'",
    "base-uri 'none'",
    "frame-ancestors 'none'",
  ].join('; '),
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
} as const;

/** A page and the assets it links, as `GraphiQLPage.serve` answers them. */
export interface GraphiQLPage {
  /** Answers a request for the page or one of its assets; false when it is neither. */
  serve(req: IncomingMessage, res: ServerResponse, pathname: string): Promise<boolean>;
}

/** A name that changes whenever the content does, so the file can be cached for good. */
function hashedName(base: string, ext: string, content: string | Buffer): string {
  const hash = createHash('sha256').update(content).digest('hex').slice(0, 12);
  return `${base}.${hash}.${ext}`;
}

/**
 * The stylesheet and scripts of yoga's GraphiQL bundle (`@graphql-yoga/render-graphiql`,
 * ~9 MB), split out of the page it would inline, each compressed once. Shared by every
 * app of the process: they are a pure function of the installed package.
 */
let bundle: Promise<Map<string, StaticAsset>> | undefined;

function graphiqlBundle(): Promise<Map<string, StaticAsset>> {
  bundle ??= (async () => {
    const icon = /^data:([^;,]+);base64,(.*)$/s.exec(favicon);
    const iconBytes = Buffer.from(icon?.[2] ?? '', 'base64');
    const files: [string, string, string | Buffer][] = [
      [hashedName('graphiql', 'css', css), 'text/css; charset=utf-8', css],
      [hashedName('graphiql', 'js', js), 'text/javascript; charset=utf-8', js],
      [
        hashedName('editor.worker', 'js', editorWorkerService),
        'text/javascript; charset=utf-8',
        editorWorkerService,
      ],
      [hashedName('json.worker', 'js', jsonWorker), 'text/javascript; charset=utf-8', jsonWorker],
      [
        hashedName('graphql.worker', 'js', graphqlWorker),
        'text/javascript; charset=utf-8',
        graphqlWorker,
      ],
      [hashedName('favicon', 'ico', iconBytes), icon?.[1] ?? 'image/x-icon', iconBytes],
      [
        hashedName('graphql-ws', 'js', graphqlWsBrowserBuild()),
        'text/javascript; charset=utf-8',
        graphqlWsBrowserBuild(),
      ],
      [
        hashedName('boot', 'js', GRAPHIQL_BOOT_SCRIPT),
        'text/javascript; charset=utf-8',
        GRAPHIQL_BOOT_SCRIPT,
      ],
    ];
    const assets = await Promise.all(files.map(([, type, text]) => makeStaticAsset(type, text)));
    return new Map(files.map(([name], i) => [name, assets[i]!]));
  })();
  return bundle;
}

/** `<` escaped so no value can close the inline script it is written into. */
function scriptJson(value: unknown): string {
  return JSON.stringify(value).replace(/</g, '\\u003c');
}

function pageHtml(
  names: string[],
  title: string,
  endpoint: string,
  options: Record<string, unknown>,
): string {
  const [styles, main, editor, json, graphql, icon, graphqlWs, boot] = names.map(
    (n) => `${GRAPHIQL_ASSET_PATH}${n}`,
  );
  const config = {
    endpoint,
    workers: { editorWorkerService: editor, json, graphql },
    graphiql: options,
  };
  // The boot script reads the JSON block (data, not script), sets up the editor's
  // workers, and renders GraphiQL once the scripts after it have loaded.
  return `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <title>${title.replace(/[<&"]/g, '')}</title>
    <link rel="icon" href="${icon}" />
    <link rel="stylesheet" href="${styles}" />
  </head>
  <body id="body" class="no-focus-outline">
    <noscript>You need to enable JavaScript to run this app.</noscript>
    <div id="root"></div>
    <script type="application/json" id="${GRAPHIQL_CONFIG_ID}">${scriptJson(config)}</script>
    <script src="${boot}"></script>
    <script src="${graphqlWs}"></script>
    <script src="${main}"></script>
  </body>
</html>
`;
}

/**
 * GraphiQL rendered once: a page of a few kB (no-cache, revalidated by ETag) that links
 * the bundle's stylesheet, script and Monaco workers as separate files with content
 * hashes in their names, served precompressed (brotli or gzip, by `accept-encoding`)
 * and cacheable for a year. Yoga's own renderer inlines the whole 9 MB bundle into every
 * page it sends, so a few hundred concurrent page loads exhausted the heap. The page
 * has no inline script (`GRAPHIQL_SECURITY_HEADERS`): its boot script, served beside
 * the bundle, starts GraphiQL with the fetcher that signs every tab in at once
 * (`graphiqlBoot.ts`).
 */
export function createGraphiQLPage(options: {
  title: string;
  /** Where the page answers: the GraphQL endpoint, for `accept: text/html` GETs. */
  pagePath: string;
  /** GraphiQL's props for `YogaGraphiQL.renderYogaGraphiQL`; the boot script adds the fetcher. */
  graphiql: Record<string, unknown>;
}): GraphiQLPage {
  let page: Promise<{ assets: Map<string, StaticAsset>; html: StaticAsset }> | undefined;
  const rendered = () =>
    (page ??= graphiqlBundle().then(async (assets) => ({
      assets,
      html: await makeStaticAsset(
        'text/html; charset=utf-8',
        pageHtml([...assets.keys()], options.title, options.pagePath, options.graphiql),
      ),
    })));
  return {
    async serve(req, res, pathname) {
      if (req.method !== 'GET' && req.method !== 'HEAD') return false;
      if (pathname.startsWith(GRAPHIQL_ASSET_PATH)) {
        const asset = (await rendered()).assets.get(pathname.slice(GRAPHIQL_ASSET_PATH.length));
        if (!asset) return false;
        sendStaticAsset(req, res, asset, 'public, max-age=31536000, immutable');
        return true;
      }
      const wantsPage =
        (pathname === options.pagePath || pathname === `${options.pagePath}/`) &&
        String(req.headers.accept ?? '').includes('text/html');
      if (!wantsPage) return false;
      sendStaticAsset(req, res, (await rendered()).html, 'no-cache', GRAPHIQL_SECURITY_HEADERS);
      return true;
    },
  };
}
