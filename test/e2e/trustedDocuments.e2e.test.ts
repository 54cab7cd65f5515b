import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { TRUSTED_DOCUMENTS, TrustedDocumentCode } from '../../src/graphql/trustedDocuments.js';
import { CorkboardRequestError } from '../../src/sdk/CorkboardRequestError.js';
import {
  createCorkboardClient,
  type CorkboardClient,
} from '../../src/sdk/createCorkboardClient.js';
import { persistedQueryExtensions } from '../../src/sdk/documentIds.js';
import { MeDocument } from '../../src/sdk/generated/graphql.js';
import { expectSuccess } from '../support/expectSuccess.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { openSocket, until } from '../support/rawSocket.js';
import { ALL_TRANSPORTS, errorsOf, transports } from '../support/transports.js';

// TRUSTED_DOCUMENTS=only: the server runs the operations of its manifest (sent by id) and
// nothing else, on every transport; the admin token still runs the admin panel's own
// documents. With `allow` (the default) both documents and ids run.

/** The manifest id codegen embedded in the `Me` query. */
const ME_ID = (MeDocument as unknown as { __meta__: { hash: string } }).__meta__.hash;
const byId = (id: string) => ({ extensions: JSON.stringify(persistedQueryExtensions(id)) });
const AD_HOC = { query: 'query { me { id username } }' };
/** The text of manifest document `id`, as persisted-documents.json holds it (its SHA-256 is the id). */
const manifestText = (id: string): string =>
  (
    JSON.parse(
      readFileSync(
        new URL('../../src/sdk/generated/trusted/persisted-documents.json', import.meta.url),
        'utf8',
      ),
    ) as Record<string, string>
  )[id]!;

/** A client of `s` that sends the SDK's operations by id. */
function sdkClient(s: TestServer, token?: string): CorkboardClient {
  return createCorkboardClient({
    url: `${s.url}/graphql`,
    ...(token ? { token } : {}),
    webSocketImpl: WebSocket,
    documentIds: true,
  });
}

async function registerWithIds(s: TestServer, username: string) {
  const registered = expectSuccess(
    await sdkClient(s).registerUser({ input: { username, displayName: username } }),
    'RegisterUserSuccess',
  );
  return { token: registered.token, id: registered.user.id };
}

describe('the operations manifest', () => {
  it('holds every document the SDK ships, by the ids codegen wrote in persisted-documents.json', async () => {
    const manifest = JSON.parse(
      await readFile(
        new URL('../../src/sdk/generated/trusted/persisted-documents.json', import.meta.url),
        'utf8',
      ),
    ) as Record<string, string>;
    expect([...TRUSTED_DOCUMENTS.keys()].sort()).toEqual(Object.keys(manifest).sort());
    expect(Object.keys(manifest).every((id) => /^sha256:[0-9a-f]{64}$/.test(id))).toBe(true);
  });
});

describe('TRUSTED_DOCUMENTS=only', () => {
  let s: TestServer;
  let token: string;
  beforeAll(async () => {
    s = await startTestServer({ env: { TRUSTED_DOCUMENTS: 'only' } });
    ({ token } = await registerWithIds(s, 'trusted'));
  });
  afterAll(async () => {
    await s.close();
  });

  it('refuses an ad-hoc document on every transport with PERSISTED_QUERY_ONLY, running nothing', async () => {
    for (const transport of ALL_TRANSPORTS) {
      const answer = await transports[transport](s, token, AD_HOC);
      expect(answer.body, transport).not.toHaveProperty('data');
      expect(errorsOf(answer), transport).toEqual([
        {
          message: expect.stringContaining('TRUSTED_DOCUMENTS=only') as string,
          extensions: { code: TrustedDocumentCode.Only },
        },
      ]);
      if (transport !== 'ws') expect(answer.status, transport).toBe(400);
    }
  });

  it('refuses an ad-hoc mutation on every transport that carries mutations, writing nothing', async () => {
    const boards = async () => (await sdkClient(s, token).boards()).length;
    const before = await boards();
    for (const transport of ['post', 'multipart', 'sse', 'ws'] as const) {
      const answer = await transports[transport](s, token, {
        query: 'mutation { createBoard(input: { name: "ad hoc" }) { __typename } }',
      });
      expect(errorsOf(answer)[0]?.extensions, transport).toEqual({
        code: TrustedDocumentCode.Only,
      });
    }
    expect(await boards()).toBe(before);
  });

  it('runs a manifest document sent by its id on every transport', async () => {
    for (const transport of ALL_TRANSPORTS) {
      const answer = await transports[transport](s, token, byId(ME_ID));
      expect(answer.body.errors, transport).toBeUndefined();
      expect(answer.body.data, transport).toEqual({
        me: { id: expect.any(String) as string, username: 'trusted', displayName: 'trusted' },
      });
    }
  });

  it('runs a manifest id sent as the graphql-ws query itself (the graphql-ws recipe)', async () => {
    const socket = await openSocket(s, token);
    const received = socket.subscribe('me', ME_ID, {});
    await until(() => received.next.length > 0 || received.error !== null, 'the answer');
    expect(received.next[0]).toMatchObject({ data: { me: { username: 'trusted' } } });
  });

  it('refuses an id that is not in the manifest with PERSISTED_QUERY_NOT_IN_LIST on every transport', async () => {
    const unknown = `sha256:${'0'.repeat(64)}`;
    for (const transport of ALL_TRANSPORTS) {
      const answer = await transports[transport](s, token, byId(unknown));
      expect(answer.body, transport).not.toHaveProperty('data');
      expect(errorsOf(answer)[0]?.extensions, transport).toEqual({
        code: TrustedDocumentCode.NotInList,
      });
    }
  });

  it('runs a manifest id sent with its own document, and refuses it with another, on every transport', async () => {
    for (const transport of ALL_TRANSPORTS) {
      const same = await transports[transport](s, token, {
        query: manifestText(ME_ID),
        ...byId(ME_ID),
      });
      expect(same.body.errors, transport).toBeUndefined();
      expect(same.body.data, transport).toMatchObject({ me: { username: 'trusted' } });
      const other = await transports[transport](s, token, { ...AD_HOC, ...byId(ME_ID) });
      expect(errorsOf(other)[0]?.extensions, transport).toEqual({
        code: TrustedDocumentCode.Mismatch,
      });
    }
  });

  it('works through the SDK sending ids: queries, mutations and a live subscription', async () => {
    const client = sdkClient(s, token);
    const board = expectSuccess(
      await client.createBoard({ input: { name: 'By id' } }),
      'CreateBoardSuccess',
    ).board;
    expect((await client.boards()).map((b) => b.id)).toContain(board.id);
    const abort = new AbortController();
    const changes = client.boardChanges(board.id, { signal: abort.signal });
    const first = changes.next();
    await until(() => s.app.live.stats().subscribers > 0, 'the subscription');
    expectSuccess(
      await client.addColumn({
        input: { boardId: board.id, name: 'Todo', expectedVersion: board.version },
      }),
      'AddColumnSuccess',
    );
    const change = await first;
    expect(change.value).toMatchObject({ operation: 'addColumn' });
    abort.abort();
    await changes.return(undefined);
  });

  it('refuses the SDK sending documents, with a typed error the client can read', async () => {
    const client = createCorkboardClient({ url: `${s.url}/graphql`, token });
    const refused = await client.me().catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(CorkboardRequestError);
    expect((refused as CorkboardRequestError).errors[0]?.extensions).toEqual({
      code: TrustedDocumentCode.Only,
    });
  });

  it('runs the admin panel its own documents with the admin token, over HTTP and the websocket', async () => {
    const admin = s.app.admin.token;
    const cancel = await transports.post(s, admin, {
      query: 'mutation { cancelRebuild { __typename } }',
    });
    expect(cancel.body).toEqual({
      data: { cancelRebuild: { __typename: 'CancelRebuildSuccess' } },
    });
    const socket = await openSocket(s, admin);
    const status = socket.subscribe(
      'status',
      'subscription AdminStatus { projectorStatus { activeGeneration } }',
      {},
    );
    await until(() => status.next.length > 0 || status.error !== null, 'the status');
    expect(status.error).toBeNull();
    expect(status.next[0]).toMatchObject({
      data: { projectorStatus: { activeGeneration: expect.any(String) as string } },
    });
  });

  it('serves no GraphiQL and answers no introspection', async () => {
    const page = await fetch(`${s.url}/graphql`, { headers: { accept: 'text/html' } });
    expect(page.headers.get('content-type') ?? '').not.toContain('text/html');
    expect(await page.text()).not.toMatch(/graphiql/i);
    const introspection = await transports.post(s, token, {
      query: '{ __schema { types { name } } }',
    });
    expect(introspection.body).not.toHaveProperty('data');
  });
});

describe('TRUSTED_DOCUMENTS=allow (the default)', () => {
  let s: TestServer;
  let token: string;
  beforeAll(async () => {
    s = await startTestServer();
    ({ token } = await s.register('allowed'));
  });
  afterAll(async () => {
    await s.close();
  });

  it('runs ad-hoc documents and manifest ids alike, on every transport', async () => {
    for (const transport of ALL_TRANSPORTS) {
      for (const op of [AD_HOC, byId(ME_ID)]) {
        const answer = await transports[transport](s, token, op);
        expect(answer.body.errors, transport).toBeUndefined();
        expect(answer.body.data, transport).toMatchObject({ me: { username: 'allowed' } });
      }
    }
  });

  it("refuses an unknown id even with a document, and a document that is not its id's, on every transport", async () => {
    const unknownId = `sha256:${'0'.repeat(64)}`;
    const meText = manifestText(ME_ID);
    for (const transport of ALL_TRANSPORTS) {
      const unknown = await transports[transport](s, token, { ...AD_HOC, ...byId(unknownId) });
      expect(unknown.body, transport).not.toHaveProperty('data');
      expect(errorsOf(unknown)[0]?.extensions, transport).toEqual({
        code: TrustedDocumentCode.NotInList,
      });
      const other = await transports[transport](s, token, { ...AD_HOC, ...byId(ME_ID) });
      expect(other.body, transport).not.toHaveProperty('data');
      expect(errorsOf(other)[0]?.extensions, transport).toEqual({
        code: TrustedDocumentCode.Mismatch,
      });
      // The id's own document with it: the id runs.
      const same = await transports[transport](s, token, { query: meText, ...byId(ME_ID) });
      expect(same.body.errors, transport).toBeUndefined();
      expect(same.body.data, transport).toMatchObject({ me: { username: 'allowed' } });
    }
  });

  it('serves the SDK whether it sends ids or documents', async () => {
    expect((await sdkClient(s, token).me())?.username).toBe('allowed');
    const plain = createCorkboardClient({ url: `${s.url}/graphql`, token });
    expect((await plain.me())?.username).toBe('allowed');
  });
});
