/**
 * A mutation's idempotencyKey has a length bound of its own (`inputLimits.idempotencyKeyMax`):
 * past it, or empty, the mutation is a ValidationError on `input.idempotencyKey` over HTTP,
 * and nothing is written; a key of exactly the bound works, its retry included.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inputLimits } from '../../src/boards/validation.js';
import { mutationDocument } from '../support/mutationDocument.js';
import { startTestServer, type TestServer } from '../support/server.js';

const CREATE_BOARD = mutationDocument(
  'createBoard',
  'CreateBoardSuccess',
  'board { id } replayed',
).replace(
  '... on Error { code message }',
  '... on Error { code message } ... on ValidationError { field }',
);

describe('the length of an idempotency key', () => {
  let s: TestServer;
  let token: string;
  beforeAll(async () => {
    s = await startTestServer();
    ({ token } = await s.register('keyed'));
  });
  afterAll(async () => {
    await s.close();
  });

  it(`refuses a key past ${inputLimits.idempotencyKeyMax} characters, writing nothing`, async () => {
    const head = await s.storage.store.headPosition();
    const key = 'k'.repeat(inputLimits.idempotencyKeyMax + 1);
    const answer = await s.gql(
      CREATE_BOARD,
      { input: { name: 'Long key', idempotencyKey: key } },
      token,
    );
    expect(answer.errors).toBeUndefined();
    expect(answer.data!.createBoard).toEqual({
      __typename: 'ValidationError',
      code: 'VALIDATION',
      field: 'input.idempotencyKey',
      message: expect.stringContaining(
        `at most ${inputLimits.idempotencyKeyMax} characters`,
      ) as string,
    });
    expect(answer.data!.createBoard.message).not.toContain(key);
    expect(await s.storage.store.headPosition()).toBe(head);
    const boards = await s.gql(`query { boards { id } }`, {}, token);
    expect(boards.data!.boards).toEqual([]);
  });

  it('refuses an empty key, writing nothing', async () => {
    const head = await s.storage.store.headPosition();
    const answer = await s.gql(
      CREATE_BOARD,
      { input: { name: 'Empty key', idempotencyKey: '' } },
      token,
    );
    expect(answer.data!.createBoard).toMatchObject({
      __typename: 'ValidationError',
      field: 'input.idempotencyKey',
      message: expect.stringContaining('must not be empty') as string,
    });
    expect(await s.storage.store.headPosition()).toBe(head);
  });

  it('takes a key of exactly the bound, and replays it', async () => {
    const input = { name: 'Max key', idempotencyKey: 'k'.repeat(inputLimits.idempotencyKeyMax) };
    const first = await s.gql(CREATE_BOARD, { input }, token);
    expect(first.data!.createBoard).toMatchObject({
      __typename: 'CreateBoardSuccess',
      replayed: false,
    });
    const again = await s.gql(CREATE_BOARD, { input }, token);
    expect(again.data!.createBoard).toEqual({ ...first.data!.createBoard, replayed: true });
  });
});
