/**
 * A member's committed write, retried with its idempotency key after they were removed
 * from the board: the replay answers what the write did (a committed write is never
 * reported as a failure), with the SDK's own documents, and nothing of the board as it
 * is after the removal reaches them through the payload's nested fields (the card's
 * column and board, a column's cards, a board's columns, history).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCorkboardClient } from '../../src/sdk/createCorkboardClient.js';
import { mutationDocument } from '../support/mutationDocument.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { serverStorages } from '../support/serverStorages.js';

const MUTATION = mutationDocument;
const CREATE_BOARD = MUTATION('createBoard', 'CreateBoardSuccess', 'board { id version }');
const ADD_MEMBER = MUTATION('addMember', 'AddMemberSuccess', 'board { id version }');
const ADD_COLUMN = MUTATION('addColumn', 'AddColumnSuccess', 'column { id } board { id version }');
const ADD_CARD = MUTATION('addCard', 'AddCardSuccess', 'card { id version }');
const EDIT_CARD = MUTATION('editCard', 'EditCardSuccess', 'card { id version }');
const RENAME_BOARD = MUTATION('renameBoard', 'RenameBoardSuccess', 'board { id version }');
const REMOVE_MEMBER = MUTATION('removeMember', 'RemoveMemberSuccess', '__typename');
/** What hangs off a card: its column's cards and history, its board's columns and name. */
const EDIT_CARD_DEEP = MUTATION(
  'editCard',
  'EditCardSuccess',
  `replayed card {
    title description version
    history { edges { node { operation version } } }
    column { name cardCount archivedCards { title } cards { edges { node { title } } } history { edges { node { operation } } } }
    board { name columns { name } history { edges { node { operation } } } }
  }`,
);

/** What the owner writes after the removal: none of it may reach the removed member. */
const AFTER = 'after-removal';

describe.each(serverStorages('corkboard_replay_removed'))(
  'a retried write of a member removed since ($name)',
  ({ open }) => {
    let s: TestServer;
    let close: () => Promise<void>;
    beforeAll(async () => {
      const opened = await open();
      close = opened.close;
      s = await startTestServer({ storage: opened.storage });
    }, 120_000);
    afterAll(async () => {
      await s?.close();
      await close?.();
    });

    it('replays what the write did, and nothing written after the removal', async () => {
      const alice = await s.register('alice');
      const bob = await s.register('bob');
      const created = await s.gql(CREATE_BOARD, { input: { name: 'Plan' } }, alice.token);
      const board = created.data?.createBoard.board as { id: string; version: number };
      const added = await s.gql(
        ADD_COLUMN,
        { input: { boardId: board.id, expectedVersion: board.version, name: 'Todo' } },
        alice.token,
      );
      const columnId = added.data?.addColumn.column.id as string;
      const member = await s.gql(
        ADD_MEMBER,
        { input: { boardId: board.id, expectedVersion: 2, username: 'bob' } },
        alice.token,
      );
      expect(member.data?.addMember.__typename).toBe('AddMemberSuccess');

      // Bob's writes, through the SDK (its documents select the card's column and the
      // column's first cards), each with an idempotency key.
      const sdk = createCorkboardClient({ url: `${s.url}/graphql`, token: bob.token });
      const addInput = { columnId, title: 'Bob writes', idempotencyKey: 'bob-add' };
      const first = await sdk.addCard({ input: addInput });
      if (first.__typename !== 'AddCardSuccess') throw new Error(first.__typename);
      const cardId = first.card.id;
      const editInput = {
        cardId,
        expectedVersion: first.card.version,
        description: 'Bob describes',
        idempotencyKey: 'bob-edit',
      };
      const edited = await s.gql(EDIT_CARD_DEEP, { input: editInput }, bob.token);
      expect(edited.errors).toBeUndefined();

      const removed = await s.gql(
        REMOVE_MEMBER,
        { input: { boardId: board.id, expectedVersion: 3, userId: bob.id } },
        alice.token,
      );
      expect(removed.data?.removeMember.__typename).toBe('RemoveMemberSuccess');
      // After the removal: a card, the board's name, Bob's card's description.
      const more = await s.gql(ADD_CARD, { input: { columnId, title: AFTER } }, alice.token);
      expect(more.data?.addCard.__typename).toBe('AddCardSuccess');
      const renamed = await s.gql(
        RENAME_BOARD,
        { input: { boardId: board.id, expectedVersion: 4, name: AFTER } },
        alice.token,
      );
      expect(renamed.data?.renameBoard.__typename).toBe('RenameBoardSuccess');
      const overwritten = await s.gql(
        EDIT_CARD,
        { input: { cardId, expectedVersion: 2, description: AFTER } },
        alice.token,
      );
      expect(overwritten.data?.editCard.__typename).toBe('EditCardSuccess');

      // Bob retries both (say, the answers were lost): each replays what it did.
      const addReplay = await sdk.addCard({ input: addInput });
      expect(addReplay).toMatchObject({
        __typename: 'AddCardSuccess',
        replayed: true,
        card: { id: cardId, title: 'Bob writes', column: { id: columnId } },
        column: { id: columnId, name: 'Todo', cardCount: 1 },
      });
      const editReplay = await s.gql(EDIT_CARD_DEEP, { input: editInput }, bob.token);
      expect(editReplay.errors).toBeUndefined();
      expect(editReplay.data?.editCard).toMatchObject({
        replayed: true,
        card: {
          title: 'Bob writes',
          description: 'Bob describes',
          version: 2,
          history: { edges: [{ node: { version: 2 } }, { node: { version: 1 } }] },
          column: { name: 'Todo', cardCount: 1 },
          board: { name: 'Plan' },
        },
      });
      expect(JSON.stringify([addReplay, editReplay])).not.toContain(AFTER);
    });
  },
);
