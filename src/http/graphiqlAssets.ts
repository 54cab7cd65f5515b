import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { promisify } from 'node:util';
import { brotliCompress, constants as zlib, gzip } from 'node:zlib';
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

/** One immutable file, in every encoding it is served in. */
interface Asset {
  contentType: string;
  etag: string;
  identity: Buffer;
  gzip: Buffer;
  br: Buffer;
}

/** A page and the assets it links, as `GraphiQLPage.serve` answers them. */
export interface GraphiQLPage {
  /** Answers a request for the page or one of its assets; false when it is neither. */
  serve(req: IncomingMessage, res: ServerResponse, pathname: string): Promise<boolean>;
}

const brotli = promisify(brotliCompress);
const gzipped = promisify(gzip);

async function makeAsset(contentType: string, content: string | Buffer): Promise<Asset> {
  const identity = typeof content === 'string' ? Buffer.from(content, 'utf8') : content;
  // Compressed once per process, off the event loop (zlib's thread pool). Brotli at a
  // middle quality: a ninth of the size in well under a second, where 11 takes many.
  const [gz, br] = await Promise.all([
    gzipped(identity, { level: 6 }),
    brotli(identity, {
      params: {
        [zlib.BROTLI_PARAM_QUALITY]: 5,
        [zlib.BROTLI_PARAM_SIZE_HINT]: identity.length,
      },
    }),
  ]);
  const etag = `"${createHash('sha256').update(identity).digest('base64url').slice(0, 22)}"`;
  return { contentType, etag, identity, gzip: gz, br };
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
let bundle: Promise<Map<string, Asset>> | undefined;

function graphiqlBundle(): Promise<Map<string, Asset>> {
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
    const assets = await Promise.all(files.map(([, type, text]) => makeAsset(type, text)));
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

/** The best encoding the client accepts of those we have. */
function pickEncoding(req: IncomingMessage): 'br' | 'gzip' | 'identity' {
  const accepted = String(req.headers['accept-encoding'] ?? '');
  const offers = (name: string) =>
    new RegExp(`(^|[\\s,])${name}(\\s*;\\s*q=(?!0(\\.0*)?\\b)[\\d.]+)?\\s*(,|$)`).test(accepted);
  if (offers('br')) return 'br';
  if (offers('gzip')) return 'gzip';
  return 'identity';
}

function send(
  req: IncomingMessage,
  res: ServerResponse,
  asset: Asset,
  cacheControl: string,
  extra: Record<string, string> = {},
): void {
  const common = {
    ...extra,
    etag: asset.etag,
    'cache-control': cacheControl,
    vary: 'accept-encoding',
  };
  if (req.headers['if-none-match'] === asset.etag) {
    res.writeHead(304, common);
    res.end();
    return;
  }
  const encoding = pickEncoding(req);
  const body = encoding === 'identity' ? asset.identity : asset[encoding];
  res.writeHead(200, {
    ...common,
    'content-type': asset.contentType,
    'content-length': body.length,
    ...(encoding === 'identity' ? {} : { 'content-encoding': encoding }),
  });
  res.end(req.method === 'HEAD' ? undefined : body);
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
  let page: Promise<{ assets: Map<string, Asset>; html: Asset }> | undefined;
  const rendered = () =>
    (page ??= graphiqlBundle().then(async (assets) => ({
      assets,
      html: await makeAsset(
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
        send(req, res, asset, 'public, max-age=31536000, immutable');
        return true;
      }
      const wantsPage =
        (pathname === options.pagePath || pathname === `${options.pagePath}/`) &&
        String(req.headers.accept ?? '').includes('text/html');
      if (!wantsPage) return false;
      send(req, res, (await rendered()).html, 'no-cache', GRAPHIQL_SECURITY_HEADERS);
      return true;
    },
  };
}
