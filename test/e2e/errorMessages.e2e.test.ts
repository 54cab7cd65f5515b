import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeGlobalID } from '@pothos/plugin-relay';
import { toGlobalId } from '../../src/graphql/globalIds.js';
import { startTestServer, type TestServer } from '../support/server.js';

interface ErrorResult {
  __typename: string;
  message: string;
}

describe('error messages over HTTP', () => {
  let s: TestServer;
  let token: string;
  beforeAll(async () => {
    s = await startTestServer();
    ({ token } = await s.register('messenger'));
  });
  afterAll(async () => {
    await s.close();
  });

  it('names resources by the global IDs clients know, never by internal ids', async () => {
    const created = await s.gql<{ createBoard: { board: { id: string } } }>(
      `mutation { createBoard(input: { name: "Plans" }) { ... on CreateBoardSuccess { board { id } } } }`,
      {},
      token,
    );
    const boardId = created.data!.createBoard.board.id;
    const rawBoardId = decodeGlobalID(boardId).id;

    const stale = await s.gql<{ renameBoard: ErrorResult }>(
      `mutation ($input: RenameBoardInput!) { renameBoard(input: $input) { __typename ... on Error { message } } }`,
      { input: { boardId, name: 'Later', expectedVersion: 0 } },
      token,
    );
    expect(stale.data?.renameBoard).toEqual({
      __typename: 'VersionConflictError',
      message: `Board ${boardId} is at version 1, not 0`,
    });

    const columnId = toGlobalId('Column', 'no-such-column');
    const missing = await s.gql<{ addCard: ErrorResult }>(
      `mutation ($input: AddCardInput!) { addCard(input: $input) { __typename ... on Error { message } } }`,
      { input: { columnId, title: 'x' } },
      token,
    );
    expect(missing.data?.addCard).toEqual({
      __typename: 'NotFoundError',
      message: `Column ${columnId} not found`,
    });
    expect(JSON.stringify([stale, missing])).not.toContain(rawBoardId);
    expect(JSON.stringify(missing)).not.toContain('"Column no-such-column');
  });
});
