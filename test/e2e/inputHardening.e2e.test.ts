import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { createApp, type App } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { openMemoryStorage } from '../../src/storage.js';

/** Every log record the server writes, parsed. */
const records: { level: number; msg: string }[] = [];
let app: App;
let url: string;

async function gql(query: string, variables: Record<string, unknown> = {}, authorization?: string) {
  const response = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(authorization ? { authorization } : {}),
    },
    body: JSON.stringify({ query, variables }),
  });
  return { status: response.status, body: (await response.json()) as Record<string, any> };
}

const REGISTER = `mutation ($input: RegisterUserInput!) {
  registerUser(input: $input) {
    __typename
    ... on RegisterUserSuccess { token user { id } }
    ... on ValidationError { field message }
  }
}`;

let token: string;
let columnId: string;
let boardId: string;

beforeAll(async () => {
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean))
        records.push(JSON.parse(line));
      done();
    },
  });
  app = await createApp(loadConfig({ STORE: 'memory' }), {
    storage: openMemoryStorage({}),
    logger: pino({ level: 'debug' }, sink),
    live: { replayPageSize: 1 },
  });
  ({ url } = await app.start(0));
  const registered = await gql(REGISTER, { input: { username: 'hardy', displayName: 'Hardy' } });
  token = registered.body.data.registerUser.token;
  const board = await gql(
    `mutation { createBoard(input: { name: "B" }) { ... on CreateBoardSuccess { board { id } } } }`,
    {},
    `Bearer ${token}`,
  );
  boardId = board.body.data.createBoard.board.id;
  const column = await gql(
    `mutation ($b: ID!) { addColumn(input: { boardId: $b, name: "C", expectedVersion: 1 }) { ... on AddColumnSuccess { column { id } } } }`,
    { b: boardId },
    `Bearer ${token}`,
  );
  columnId = column.body.data.addColumn.column.id;
});

afterAll(async () => {
  await app?.stop();
});

describe('input and credential hardening over HTTP', () => {
  it('accepts the bearer scheme in any letter case', async () => {
    for (const scheme of ['Bearer', 'bearer', 'BEARER', 'bEaReR']) {
      const { body } = await gql('{ me { username } }', {}, `${scheme} ${token}`);
      expect(body.data.me).toEqual({ username: 'hardy' });
    }
  });

  it('answers a request with an unknown or malformed token UNAUTHENTICATED instead of acting anonymous', async () => {
    for (const header of [`Bearer ${'x'.repeat(43)}`, 'Bearer short', `Basic ${token}`]) {
      const { status, body } = await gql('{ me { username } }', {}, header);
      expect(status).toBe(401);
      expect(body.data).toBeUndefined();
      expect(body.errors[0].extensions.code).toBe('UNAUTHENTICATED');
    }
    // No header at all is anonymous, as before.
    expect((await gql('{ me { username } }')).body.data).toEqual({ me: null });
  });

  it('binds a registration idempotency key to its input: another input gets a ValidationError and no token', async () => {
    const input = { username: 'victim', displayName: 'Victim', idempotencyKey: 'reg-key-1' };
    const first = await gql(REGISTER, { input });
    const firstToken = first.body.data.registerUser.token as string;
    const takeover = await gql(REGISTER, {
      input: { ...input, username: 'VICTIM', displayName: 'Mallory' },
    });
    expect(takeover.body.data.registerUser).toMatchObject({
      __typename: 'ValidationError',
      field: 'input.idempotencyKey',
    });
    expect(JSON.stringify(takeover.body)).not.toContain(firstToken);
    const replay = await gql(REGISTER, { input });
    expect(replay.body.data.registerUser.token).toBe(firstToken);
  });

  it.each([
    ['a control character', 'To\u0007do'],
    ['a line break', 'two\nlines'],
    ['a bidi override', 'abc\u202Edef'],
    ['a bidi isolate', 'abc\u2066def'],
    ['a lone surrogate', 'abc\uD800'],
  ])(
    'refuses a board name, card title and display name with %s, naming the field, writing nothing',
    async (_what, text) => {
      const before = await app.storage.store.headPosition();
      const rename = await gql(
        `mutation ($b: ID!, $n: String!) { renameBoard(input: { boardId: $b, name: $n, expectedVersion: 2 }) { __typename ... on ValidationError { field message } } }`,
        { b: boardId, n: text },
        `Bearer ${token}`,
      );
      expect(rename.body.data.renameBoard).toMatchObject({
        __typename: 'ValidationError',
        field: 'input.name',
      });
      const card = await gql(
        `mutation ($c: ID!, $t: String!) { addCard(input: { columnId: $c, title: $t }) { __typename ... on ValidationError { field } } }`,
        { c: columnId, t: text },
        `Bearer ${token}`,
      );
      expect(card.body.data.addCard).toMatchObject({
        __typename: 'ValidationError',
        field: 'input.title',
      });
      const user = await gql(REGISTER, { input: { username: 'textual', displayName: text } });
      expect(user.body.data.registerUser).toMatchObject({
        __typename: 'ValidationError',
        field: 'input.displayName',
      });
      expect(await app.storage.store.headPosition()).toBe(before);
    },
  );

  it('counts lengths in characters (code points) and says so', async () => {
    const add = (title: string) =>
      gql(
        `mutation ($c: ID!, $t: String!) { addCard(input: { columnId: $c, title: $t }) { __typename ... on ValidationError { message } } }`,
        { c: columnId, t: title },
        `Bearer ${token}`,
      );
    // 200 emoji are 400 UTF-16 code units but 200 characters.
    expect((await add('😀'.repeat(200))).body.data.addCard.__typename).toBe('AddCardSuccess');
    const tooLong = (await add('😀'.repeat(201))).body.data.addCard;
    expect(tooLong.__typename).toBe('ValidationError');
    expect(tooLong.message).toContain('200 characters (Unicode code points');
  });

  it.each([
    ['after: "garbage"', 'after'],
    ['before: "not-a-cursor"', 'before'],
    ['first: -1', 'first'],
  ])(
    'refuses Column.cards(%s) with a VALIDATION error instead of starting over',
    async (args, field) => {
      const { body } = await gql(
        `query ($id: ID!) { node(id: $id) { ... on Column { cards(${args}) { edges { node { id } } } } } }`,
        { id: columnId },
        `Bearer ${token}`,
      );
      expect(body.errors[0].extensions).toMatchObject({ code: 'VALIDATION', field });
      expect(body.errors[0].message).toMatch(new RegExp(`^${field}: `));
    },
  );

  it('logs clients that leave during a subscription replay at debug level, never as errors', async () => {
    for (let i = 0; i < 30; i += 1) {
      await gql(
        `mutation ($b: ID!, $n: String!, $v: Int!) { renameBoard(input: { boardId: $b, name: $n, expectedVersion: $v }) { __typename } }`,
        { b: boardId, n: `Name ${i}`, v: 2 + i },
        `Bearer ${token}`,
      );
    }
    // Subscribe from the start (a replay one entry per page) and hang up at once.
    for (let i = 0; i < 10; i += 1) {
      const socket = new WebSocket(`${url.replace('http', 'ws')}/graphql`, 'graphql-transport-ws');
      await new Promise((done) => socket.once('open', done));
      socket.send(
        JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${token}` } }),
      );
      await new Promise((done) => socket.once('message', done));
      socket.send(
        JSON.stringify({
          id: '1',
          type: 'subscribe',
          payload: {
            query: `subscription ($b: ID!) { boardChanges(boardId: $b, after: "0") { cursor } }`,
            variables: { b: boardId },
          },
        }),
      );
      await new Promise((done) => socket.once('message', done));
      socket.terminate();
    }
    await sleep(500);
    expect(records.filter((r) => r.level >= 50).map((r) => r.msg)).toEqual([]);
  });
});
