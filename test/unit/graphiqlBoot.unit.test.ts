import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import {
  GRAPHIQL_AUTHORIZATION_KEY,
  GRAPHIQL_BOOT_SCRIPT,
  GRAPHIQL_CONFIG_ID,
} from '../../src/http/graphiqlBoot.js';

type Fetcher = (
  params: { query: string; operationName?: string | null; variables?: unknown },
  options?: { headers?: Record<string, string> },
) => unknown;

interface Sent {
  headers: Record<string, string>;
  body: { query: string; operationName?: string };
}

/**
 * Runs the boot script as the page does, with the browser's parts stubbed: the
 * config block, localStorage, fetch (answering `answer(body)`), graphql-ws and
 * GraphiQL's render (which hands over the fetcher).
 */
function boot(answer: (sent: Sent) => { status?: number; body: unknown }) {
  const storage = new Map<string, string>();
  const sent: Sent[] = [];
  const sockets: { connectionParams: unknown; payload: unknown }[] = [];
  let fetcher: Fetcher | undefined;
  let ready: (() => void) | undefined;
  const config = { endpoint: '/graphql', workers: {}, graphiql: { title: 'T' } };
  runInNewContext(GRAPHIQL_BOOT_SCRIPT, {
    URL,
    JSON,
    location: { href: 'http://localhost:4000/graphql' },
    self: {},
    document: {
      getElementById: (id: string) =>
        id === GRAPHIQL_CONFIG_ID ? { textContent: JSON.stringify(config) } : {},
      addEventListener: (_event: string, listener: () => void) => (ready = listener),
    },
    localStorage: {
      getItem: (k: string) => storage.get(k) ?? null,
      setItem: (k: string, v: string) => storage.set(k, v),
      removeItem: (k: string) => storage.delete(k),
    },
    fetch: (_url: string, init: { headers: Record<string, string>; body: string }) => {
      const request = { headers: init.headers, body: JSON.parse(init.body) as Sent['body'] };
      sent.push(request);
      const { status = 200, body } = answer(request);
      return Promise.resolve({ status, text: () => Promise.resolve(JSON.stringify(body)) });
    },
    graphqlWs: {
      createClient: (options: { connectionParams: unknown }) => ({
        subscribe: (payload: unknown) => {
          sockets.push({ connectionParams: options.connectionParams, payload });
          return () => undefined;
        },
        dispose: () => undefined,
      }),
    },
    YogaGraphiQL: {
      renderYogaGraphiQL: (_root: unknown, options: { fetcher: Fetcher }) =>
        (fetcher = options.fetcher),
    },
  });
  ready!();
  return { fetcher: fetcher!, storage, sent, sockets };
}

const authorizationOf = (sent: Sent | undefined) => sent?.headers.Authorization ?? null;

describe('the GraphiQL boot script: one sign-in for every tab', () => {
  it('keeps the token a registration returns and sends it from every tab without a header of its own', async () => {
    const page = boot(({ body }) =>
      body.operationName === 'RegisterUser'
        ? { body: { data: { registerUser: { token: 'tok-1', user: { id: 'u' } } } } }
        : { body: { data: { me: { id: 'u' } } } },
    );
    await page.fetcher({ query: 'mutation RegisterUser { registerUser { token } }' }, {});
    expect(page.storage.get(GRAPHIQL_AUTHORIZATION_KEY)).toBe('Bearer tok-1');
    await page.fetcher({ query: 'query MyBoards { me { id } }' }, { headers: {} });
    expect(authorizationOf(page.sent[1])).toBe('Bearer tok-1');
    // A tab's own header wins for it, and once accepted the other tabs use it too.
    await page.fetcher(
      { query: 'query MyBoards { me { id } }' },
      { headers: { authorization: 'Bearer own' } },
    );
    expect(page.sent[2]!.headers).toEqual(expect.objectContaining({ authorization: 'Bearer own' }));
    expect(authorizationOf(page.sent[2])).toBeNull();
    expect(page.storage.get(GRAPHIQL_AUTHORIZATION_KEY)).toBe('Bearer own');
  });

  it('forgets a shared header the server refuses, and one signed out', async () => {
    let refuse = true;
    const page = boot(() =>
      refuse
        ? {
            status: 401,
            body: { errors: [{ message: 'expired', extensions: { code: 'UNAUTHENTICATED' } }] },
          }
        : { body: { data: { signOut: { __typename: 'SignOutSuccess' } } } },
    );
    page.storage.set(GRAPHIQL_AUTHORIZATION_KEY, 'Bearer dead');
    await page.fetcher({ query: '{ me { id } }' }, {});
    expect(authorizationOf(page.sent[0])).toBe('Bearer dead');
    expect(page.storage.has(GRAPHIQL_AUTHORIZATION_KEY)).toBe(false);
    await page.fetcher({ query: '{ me { id } }' }, {});
    expect(authorizationOf(page.sent[1])).toBeNull();

    refuse = false;
    page.storage.set(GRAPHIQL_AUTHORIZATION_KEY, 'Bearer live');
    await page.fetcher({ query: 'mutation { signOut { __typename } }' }, {});
    expect(page.storage.has(GRAPHIQL_AUTHORIZATION_KEY)).toBe(false);
  });

  it("runs the editor's operation even when GraphiQL still names the previous tab's", async () => {
    const page = boot(() => ({ body: { data: { createBoard: { __typename: 'X' } } } }));
    const query = '# a comment saying query Other {\nmutation CreateBoard { createBoard { id } }';
    await page.fetcher({ query, operationName: 'MyBoards' }, {});
    expect(page.sent[0]!.body.operationName).toBe('CreateBoard');
    // Two operations and a name that is neither: sent as asked (the server says so).
    await page.fetcher({ query: 'query A { a } query B { b }', operationName: 'C' }, {});
    expect(page.sent[1]!.body.operationName).toBe('C');
  });

  it('runs a subscription on a websocket with the shared header in connectionParams', () => {
    const page = boot(() => ({ body: {} }));
    page.storage.set(GRAPHIQL_AUTHORIZATION_KEY, 'Bearer tok');
    const result = page.fetcher(
      { query: 'subscription BoardChanges { boardChanges(boardId: "b") { cursor } }' },
      {},
    ) as { subscribe: (observer: object) => { unsubscribe: () => void } };
    result.subscribe({ next: () => undefined, error: () => undefined, complete: () => undefined });
    expect(page.sent).toEqual([]);
    expect(page.sockets).toEqual([
      {
        connectionParams: { authorization: 'Bearer tok' },
        payload: expect.objectContaining({ operationName: 'BoardChanges' }),
      },
    ]);
  });
});
