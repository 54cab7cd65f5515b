import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { createApp, type App } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import type {
  ReadCollection,
  ReadDoc,
  ReadModelStore,
  ReadView,
} from '../../src/projector/types.js';
import { openMemoryStorage, type Storage } from '../../src/storage.js';

/** A server whose read models can be made to misbehave, with its log lines captured. */
async function serve(wrap: (view: ReadView) => ReadView = (v) => v) {
  const storage = openMemoryStorage({});
  const inner = storage.projector.readModels;
  const readModels: ReadModelStore = {
    active: async (o) => wrap(await inner.active(o)),
    view: (g) => inner.view(g),
    createGeneration: () => inner.createGeneration(),
    activate: (g, e) => inner.activate(g, e),
    dropGeneration: (g) => inner.dropGeneration(g),
  };
  const logs: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      logs.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      done();
    },
  });
  const wrapped: Storage = { ...storage, projector: { ...storage.projector, readModels } };
  const app = await createApp(loadConfig({ LOG_LEVEL: 'error' }), {
    storage: wrapped,
    logger: pino({ level: 'error' }, sink),
  });
  const { url } = await app.start(0);
  return { app, url, logs, storage };
}

const post = (url: string, query: string, init: RequestInit = {}) =>
  fetch(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query }),
    ...init,
  });

describe('GraphQL protocol details', () => {
  const running: { app: App; storage: Storage }[] = [];
  afterEach(async () => {
    for (const { app, storage } of running.splice(0)) {
      await app.stop();
      await storage.close();
    }
  });

  it('masks an unexpected error for the client and logs it with its stack', async () => {
    const server = await serve((view) => ({
      generation: view.generation,
      collection: () => {
        throw new Error('connection to 10.0.0.7 refused (secret detail)');
      },
    }));
    running.push(server);
    const response = await post(server.url, '{ boards { id } }', {
      headers: { 'content-type': 'application/json', authorization: `Bearer ${'x'.repeat(43)}` },
    });
    const body = (await response.json()) as { errors: { message: string }[] };
    expect(body.errors[0]!.message).toBe('Unexpected error.');
    expect(JSON.stringify(body)).not.toContain('secret');
    const logged = server.logs.find((l) => JSON.stringify(l).includes('secret detail'));
    expect(logged).toBeDefined();
    expect(JSON.stringify(logged)).toContain('stack');
  });

  it('answers each of two mutations in one operation with the state after it', async () => {
    const server = await serve();
    running.push(server);
    const call = async (query: string, variables: Record<string, unknown>, token?: string) =>
      (await (
        await fetch(`${server.url}/graphql`, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            ...(token ? { authorization: `Bearer ${token}` } : {}),
          },
          body: JSON.stringify({ query, variables }),
        })
      ).json()) as { data: Record<string, any> };
    const { token } = (
      await call(
        `mutation { registerUser(input: { username: "duo", displayName: "Duo" }) { ... on RegisterUserSuccess { token } } }`,
        {},
      )
    ).data.registerUser;
    const board = (
      await call(
        `mutation { createBoard(input: { name: "b" }) { ... on CreateBoardSuccess { board { id } } } }`,
        {},
        token,
      )
    ).data.createBoard.board;
    const column = (
      await call(
        `mutation ($b: ID!) { addColumn(input: { boardId: $b, name: "c", expectedVersion: 1 }) { ... on AddColumnSuccess { column { id } } } }`,
        { b: board.id },
        token,
      )
    ).data.addColumn.column;
    const card = (
      await call(
        `mutation ($c: ID!) { addCard(input: { columnId: $c, title: "t0" }) { ... on AddCardSuccess { card { id } } } }`,
        { c: column.id },
        token,
      )
    ).data.addCard.card;
    const both = await call(
      `mutation ($id: ID!) {
        first: editCard(input: { cardId: $id, expectedVersion: 1, title: "t1" }) { ... on EditCardSuccess { card { title description version } } }
        second: editCard(input: { cardId: $id, expectedVersion: 2, description: "d2" }) { ... on EditCardSuccess { card { title description version } } }
      }`,
      { id: card.id },
      token,
    );
    expect(both.data).toEqual({
      first: { card: { title: 't1', description: '', version: 2 } },
      second: { card: { title: 't1', description: 'd2', version: 3 } },
    });
  });

  it('refuses a query nested deeper than the limit before running it', async () => {
    const server = await serve();
    running.push(server);
    const deep = `{ boards ${'{ columns { board '.repeat(7)}{ id }${' } }'.repeat(7)} }`;
    const body = (await (await post(server.url, deep)).json()) as { errors: { message: string }[] };
    expect(body.errors[0]!.message).toMatch(/depth/i);
  });

  it('aborts the store reads of a request whose client went away', async () => {
    let readStarted!: () => void;
    const started = new Promise<void>((resolve) => (readStarted = resolve));
    const aborted: unknown[] = [];
    const server = await serve((view) => ({
      generation: view.generation,
      collection: <T extends ReadDoc>(name: string): ReadCollection<T> => {
        const c = view.collection<T>(name);
        return {
          get: c.get.bind(c),
          getMany: c.getMany.bind(c),
          count: c.count.bind(c),
          put: c.put.bind(c),
          putEach: c.putEach.bind(c),
          putMany: c.putMany.bind(c),
          delete: c.delete.bind(c),
          // Token lookups hang until the request's signal fires.
          find: (_filter, options) =>
            new Promise<T[]>((_, reject) => {
              readStarted();
              options?.signal?.addEventListener('abort', () => {
                aborted.push(options.signal?.reason);
                reject(options.signal!.reason as Error);
              });
            }),
        };
      },
    }));
    running.push(server);
    const client = new AbortController();
    const request = post(server.url, '{ me { id } }', {
      signal: client.signal,
      headers: { 'content-type': 'application/json', authorization: `Bearer ${'y'.repeat(43)}` },
    }).catch((e: unknown) => e);
    await started;
    client.abort();
    await request;
    for (let i = 0; i < 100 && aborted.length === 0; i++) await sleep(10);
    expect(aborted).toHaveLength(1);
  });
});
