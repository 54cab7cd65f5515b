/**
 * The live-path attacks of `npm run bench:abuse` (see abuse.ts), each against a fresh
 * server process, speaking graphql-transport-ws over bare `ws` sockets:
 * - ws-id-reuse: on one socket, `subscribe x` + `complete x` back to back, 5,000 times,
 *   then `subscribe x` once more; one change of the board: frames that socket received
 *   for it (the per-connection limit is 20);
 * - paused-sockets: 20 sockets x 20 subscriptions that stop reading (TCP paused), then
 *   one `archiveDoneCards` of 500 done cards (one change naming 501 resources): how the
 *   sockets were closed, and what each received once it read again.
 */
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import WebSocket from 'ws';
import { postGraphQL } from '../../test/support/rawHttp.js';
import type { ServerProcess } from '../../test/support/serverProcess.js';

/** The data of one GraphQL answer over HTTP (throws on errors). */
async function call(
  url: string,
  query: string,
  variables: Record<string, unknown> = {},
  token?: string,
): Promise<Record<string, any>> {
  const answer = await postGraphQL(url, query, variables, token);
  const body = JSON.parse(answer.body.toString()) as { data?: Record<string, any> };
  if (!body.data) throw new Error(`no data: ${answer.body.toString().slice(0, 200)}`);
  return body.data;
}

/** A user, a board of one column; `rename` commits one change of the board. */
async function boardOf(url: string) {
  const username = `live${Date.now()}${Math.floor(Math.random() * 1e6)}`;
  const registered = await call(
    url,
    `mutation ($i: RegisterUserInput!) { registerUser(input: $i) { ... on RegisterUserSuccess { token } } }`,
    { i: { username, displayName: 'Live' } },
  );
  const token = registered.registerUser.token as string;
  const created = await call(
    url,
    `mutation { createBoard(input: { name: "b" }) { ... on CreateBoardSuccess { board { id version } } } }`,
    {},
    token,
  );
  const board = created.createBoard.board as { id: string; version: number };
  const column = await call(
    url,
    `mutation ($b: ID!, $v: Int!) { addColumn(input: { boardId: $b, name: "c", expectedVersion: $v }) { ... on AddColumnSuccess { column { id } board { version } } } }`,
    { b: board.id, v: board.version },
    token,
  );
  board.version = column.addColumn.board.version as number;
  const columnId = column.addColumn.column.id as string;
  const rename = async (name: string) => {
    const renamed = await call(
      url,
      `mutation ($b: ID!, $v: Int!, $n: String!) { renameBoard(input: { boardId: $b, name: $n, expectedVersion: $v }) { ... on RenameBoardSuccess { board { version } } } }`,
      { b: board.id, v: board.version, n: name },
      token,
    );
    board.version = renamed.renameBoard.board.version as number;
  };
  return { token, boardId: board.id, columnId, rename };
}

/** A graphql-ws socket, acknowledged, that counts what it receives. */
async function socketOf(url: string, token: string) {
  const socket = new WebSocket(`${url.replace(/^http/, 'ws')}/graphql`, 'graphql-transport-ws');
  let nexts = 0;
  let bytes = 0;
  let acked = false;
  socket.on('message', (data: Buffer) => {
    bytes += data.length;
    const text = data.toString();
    if (text.includes('"type":"next"')) nexts += 1;
    if (text.includes('connection_ack')) acked = true;
  });
  socket.on('error', () => undefined);
  await once(socket, 'open');
  socket.send(
    JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${token}` } }),
  );
  while (!acked) await sleep(5);
  return {
    socket,
    get nexts() {
      return nexts;
    },
    get bytes() {
      return bytes;
    },
    send: (message: unknown) => socket.send(JSON.stringify(message)),
  };
}

const CHANGES = `subscription ($boardId: ID!) { boardChanges(boardId: $boardId) { cursor operation } }`;

const wsIdReuse = async (server: ServerProcess): Promise<string> => {
  const { token, boardId, rename } = await boardOf(server.url);
  const client = await socketOf(server.url, token);
  const subscribe = {
    id: 'x',
    type: 'subscribe',
    payload: { query: CHANGES, variables: { boardId } },
  };
  for (let round = 0; round < 5_000; round += 1) {
    client.send(subscribe);
    client.send({ id: 'x', type: 'complete' });
    if (round % 50 === 49) await sleep(0);
  }
  client.send(subscribe);
  await sleep(3_000);
  const before = client.nexts;
  await rename('changed');
  await sleep(3_000);
  const frames = client.nexts - before;
  client.socket.terminate();
  return `${frames} frames for one change on the socket`;
};

/** `count` done cards in the column, through the API. */
async function doneCards(url: string, token: string, columnId: string, count: number) {
  const one = async (i: number) => {
    const added = await call(
      url,
      `mutation ($c: ID!, $t: String!) { addCard(input: { columnId: $c, title: $t }) { ... on AddCardSuccess { card { id version } } } }`,
      { c: columnId, t: `card ${i}` },
      token,
    );
    const card = added.addCard.card as { id: string; version: number };
    await call(
      url,
      `mutation ($c: ID!, $v: Int!) { editCard(input: { cardId: $c, expectedVersion: $v, done: true }) { __typename } }`,
      { c: card.id, v: card.version },
      token,
    );
  };
  for (let i = 0; i < count; i += 10) {
    await Promise.all(Array.from({ length: Math.min(10, count - i) }, (_, j) => one(i + j)));
  }
}

const FULL = `subscription ($boardId: ID!) {
  boardChanges(boardId: $boardId) { cursor operation actor { id username } invalidated { typename id fields version } }
}`;

const pausedSockets = async (server: ServerProcess): Promise<string> => {
  const { token, boardId, columnId } = await boardOf(server.url);
  await doneCards(server.url, token, columnId, 500);
  const clients = await Promise.all(Array.from({ length: 20 }, () => socketOf(server.url, token)));
  const codes: number[] = [];
  for (const client of clients) {
    client.socket.on('close', (code: number) => codes.push(code));
    for (let i = 0; i < 20; i += 1) {
      client.send({
        id: `s${i}`,
        type: 'subscribe',
        payload: { query: FULL, variables: { boardId } },
      });
    }
  }
  await sleep(2_000);
  for (const client of clients) client.socket.pause();
  await call(
    server.url,
    `mutation ($c: ID!) { archiveDoneCards(input: { columnId: $c }) { __typename } }`,
    { c: columnId },
    token,
  );
  await sleep(5_000);
  for (const client of clients) client.socket.resume();
  await sleep(3_000);
  const received = clients.map((c) => c.bytes).sort((a, b) => a - b);
  const byCode = new Map<number, number>();
  for (const code of codes) byCode.set(code, (byCode.get(code) ?? 0) + 1);
  for (const client of clients) client.socket.terminate();
  const closes = [...byCode].map(([code, n]) => `${n} closed ${code}`).join(', ') || 'none closed';
  return `${closes}; received per socket ${(received[0]! / 1e6).toFixed(2)}-${(received.at(-1)! / 1e6).toFixed(2)} MB`;
};

/** Attacks on the live path, by name, as abuse.ts lists its own. */
export const liveAttacks: [string, (server: ServerProcess) => Promise<string>][] = [
  ['ws-id-reuse 5000', wsIdReuse],
  ['paused-sockets 20x20', pausedSockets],
];
