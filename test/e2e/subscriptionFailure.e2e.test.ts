/**
 * A board subscription that fails on a store read (here its replay's change log read)
 * reaches the client masked: one graphql-ws `error` message with `Unexpected error.` and
 * `INTERNAL_SERVER_ERROR`, nothing of the internal message; the server log has the real
 * error. The socket and its other subscriptions go on.
 */
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rawIdOf } from '../../src/graphql/globalIds.js';
import { openMemoryStorage, type Storage } from '../../src/storage.js';
import { mutationDocument } from '../support/mutationDocument.js';
import { openSocket, until } from '../support/rawSocket.js';
import { startTestServer, type TestServer } from '../support/server.js';

const CREATE_BOARD = mutationDocument('createBoard', 'CreateBoardSuccess', 'board { id version }');
const RENAME_BOARD = mutationDocument('renameBoard', 'RenameBoardSuccess', 'board { id version }');
const CHANGES = `subscription ($boardId: ID!, $after: Cursor) {
  boardChanges(boardId: $boardId, after: $after) { cursor operation }
}`;
const INTERNAL = 'change log unreachable: shard 7 at 10.0.0.7:27017';

describe('a board subscription whose store read fails', () => {
  let s: TestServer;
  let storage: Storage;
  const logged: Record<string, unknown>[] = [];
  /** The board whose change log reads fail (raw id), if any. */
  let failing: string | null = null;
  beforeAll(async () => {
    storage = openMemoryStorage({});
    const { changeLog } = storage.projector;
    const read = changeLog.read.bind(changeLog);
    changeLog.read = (after, options) =>
      failing !== null && options?.scope === failing
        ? Promise.reject(new Error(INTERNAL))
        : read(after, options);
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        logged.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
        done();
      },
    });
    s = await startTestServer({ storage, logger: pino({ level: 'info' }, sink) });
  });
  afterAll(async () => {
    await s.close();
    await storage.close();
  });

  it('ends with the masked error and code over graphql-ws, and logs the real one', async () => {
    const { token } = await s.register('replayer');
    const board = (await s.gql(CREATE_BOARD, { input: { name: 'Flaky' } }, token)).data!.createBoard
      .board as { id: string; version: number };
    const renamed = await s.gql(
      RENAME_BOARD,
      { input: { boardId: board.id, name: 'Flaky 2', expectedVersion: board.version } },
      token,
    );
    expect(renamed.data!.renameBoard.__typename).toBe('RenameBoardSuccess');
    const other = (await s.gql(CREATE_BOARD, { input: { name: 'Steady' } }, token)).data!
      .createBoard.board as { id: string; version: number };

    failing = rawIdOf(board.id, 'Board');
    const socket = await openSocket(s, token);
    const steady = socket.subscribe('steady', CHANGES, { boardId: other.id });
    await until(() => s.app.live.stats().subscribers === 1, 'the steady subscription');
    const replay = socket.subscribe('replay', CHANGES, { boardId: board.id, after: '0' });
    await until(() => replay.error !== null || replay.complete, 'the failure');

    expect(replay.next).toEqual([]);
    expect(replay.complete).toBe(false);
    expect(replay.error).toEqual([
      { message: 'Unexpected error.', extensions: { code: 'INTERNAL_SERVER_ERROR' } },
    ]);
    const frames = socket.frames.join('\n');
    expect(frames).not.toContain('shard 7');
    expect(frames).not.toContain('10.0.0.7');

    const failure = logged.find((l) => l.msg === 'board subscription failed');
    expect(failure).toMatchObject({ boardId: failing, err: { message: INTERNAL } });
    expect((failure!.err as { stack?: string }).stack).toContain(INTERNAL);

    // The socket and its other subscription go on.
    await s.gql(
      RENAME_BOARD,
      { input: { boardId: other.id, name: 'Steady 2', expectedVersion: other.version } },
      token,
    );
    await until(() => steady.next.length === 1, 'the steady change');
    expect(steady.next[0]).toMatchObject({ data: { boardChanges: { operation: 'renameBoard' } } });
    expect(steady.error).toBeNull();
  });
});
