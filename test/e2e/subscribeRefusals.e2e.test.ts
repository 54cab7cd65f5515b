/**
 * Every "you may not subscribe" known before a stream starts reaches a graphql-ws client the
 * same way: one `error` message for the subscription, with the refusal's code (and, for a
 * former member, how the membership ended), no `next`, no `complete`; the socket goes on.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AccessEndReason } from '../../src/sdk/liveErrorCodes.js';
import { mutationDocument } from '../support/mutationDocument.js';
import { openSocket, until, type Received } from '../support/rawSocket.js';
import { startTestServer, type TestServer } from '../support/server.js';

const CREATE_BOARD = mutationDocument('createBoard', 'CreateBoardSuccess', 'board { id version }');
const ADD_MEMBER = mutationDocument('addMember', 'AddMemberSuccess', 'board { id version }');
const REMOVE_MEMBER = mutationDocument(
  'removeMember',
  'RemoveMemberSuccess',
  'board { id version }',
);
const CHANGES = `subscription ($boardId: ID!, $after: Cursor) {
  boardChanges(boardId: $boardId, after: $after) { cursor operation }
}`;

describe('refused subscribes over graphql-ws', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer();
  });
  afterAll(async () => {
    await s.close();
  });

  /** Waits for `received`'s answer and for a later query's on the same socket. */
  async function settled(socket: Awaited<ReturnType<typeof openSocket>>, ...all: Received[]) {
    await until(
      () => all.every((r) => r.error !== null || r.next.length > 0 || r.complete),
      'the answers',
    );
    // The socket still serves: and anything sent after the answers has arrived by now.
    const after = socket.subscribe('after', '{ __typename }', {});
    await until(() => after.complete, 'a query after the refusals');
    expect(after.next).toEqual([{ data: { __typename: 'Query' } }]);
  }

  it('refuses a removed member, subscribing or resuming, with an error message saying why', async () => {
    const alice = await s.register('alice');
    const bob = await s.register('bob');
    let board = (await s.gql(CREATE_BOARD, { input: { name: 'Private' } }, alice.token)).data!
      .createBoard.board as { id: string; version: number };
    board = (
      await s.gql(
        ADD_MEMBER,
        { input: { boardId: board.id, username: 'bob', expectedVersion: board.version } },
        alice.token,
      )
    ).data!.addMember.board;
    const removed = await s.gql(
      REMOVE_MEMBER,
      { input: { boardId: board.id, userId: bob.id, expectedVersion: board.version } },
      alice.token,
    );
    expect(removed.data!.removeMember.__typename).toBe('RemoveMemberSuccess');

    const socket = await openSocket(s, bob.token);
    const fresh = socket.subscribe('fresh', CHANGES, { boardId: board.id });
    const resumed = socket.subscribe('resumed', CHANGES, { boardId: board.id, after: '0' });
    await settled(socket, fresh, resumed);
    for (const received of [fresh, resumed]) {
      expect(received.next).toEqual([]);
      expect(received.complete).toBe(false);
      expect(received.error).toMatchObject([
        {
          message: `Board ${board.id} not found`,
          extensions: { code: 'NOT_FOUND', reason: AccessEndReason.Removed },
        },
      ]);
    }
  });

  it('refuses a non-member, an unknown board, an anonymous caller and missing variables the same way', async () => {
    const alice = await s.register('carol');
    const dave = await s.register('dave');
    const board = (await s.gql(CREATE_BOARD, { input: { name: 'Hers' } }, alice.token)).data!
      .createBoard.board as { id: string };
    const socket = await openSocket(s, dave.token);
    const outsider = socket.subscribe('outsider', CHANGES, { boardId: board.id });
    const unknown = socket.subscribe('unknown', CHANGES, {
      boardId: Buffer.from('Board:nope').toString('base64'),
    });
    const noBoard = socket.subscribe('noBoard', CHANGES, {});
    const anonymousSocket = await openSocket(s, null);
    const anonymous = anonymousSocket.subscribe('anonymous', CHANGES, { boardId: board.id });
    await settled(socket, outsider, unknown, noBoard);
    await settled(anonymousSocket, anonymous);
    for (const [received, code] of [
      [outsider, 'NOT_FOUND'],
      [unknown, 'NOT_FOUND'],
      [anonymous, 'UNAUTHENTICATED'],
      [noBoard, 'BAD_USER_INPUT'],
    ] as const) {
      expect(received.next).toEqual([]);
      expect(received.complete).toBe(false);
      expect(received.error).toMatchObject([{ extensions: { code } }]);
      expect(received.error![0].extensions).not.toHaveProperty('reason');
    }
  });
});
