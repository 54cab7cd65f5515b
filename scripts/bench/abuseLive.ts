/**
 * The live-path attacks of `npm run bench:abuse` (see abuse.ts), each against a fresh
 * server process, speaking graphql-transport-ws over bare `ws` sockets:
 * - ws-id-reuse: on one socket, `subscribe x` + `complete x` back to back, 5,000 times,
 *   then `subscribe x` once more; one change of the board: frames that socket received
 *   for it (the per-connection limit is 20).
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

/** Attacks on the live path, by name, as abuse.ts lists its own. */
export const liveAttacks: [string, (server: ServerProcess) => Promise<string>][] = [
  ['ws-id-reuse 5000', wsIdReuse],
];
