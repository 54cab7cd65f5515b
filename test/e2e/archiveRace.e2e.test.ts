/**
 * `archiveBoard` racing members' writes over GraphQL, from three members' points of view,
 * on memory and on the mongo adapter (MongoDB simulator): every write answers with its
 * success or `BoardArchivedError` (a rename or move may also lose to another write of the
 * same resource), and the event log holds no commit after the archive's.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mutationDocument } from '../support/mutationDocument.js';
import { NO_CLIENT_LIMITS, startTestServer, type TestServer } from '../support/server.js';
import { serverStorages } from '../support/serverStorages.js';

/** Members writing at once, and how many writes each has in flight. */
const WRITERS = ['bob', 'carol', 'dave'];
const WRITES_EACH = 15;

const MUTATION = mutationDocument;
const CREATE_BOARD = MUTATION('createBoard', 'CreateBoardSuccess', 'board { id version }');
const ADD_MEMBER = MUTATION('addMember', 'AddMemberSuccess', 'board { id version }');
const ADD_COLUMN = MUTATION(
  'addColumn',
  'AddColumnSuccess',
  'column { id version } board { id version }',
);
const ADD_CARD = MUTATION('addCard', 'AddCardSuccess', 'card { id version } column { version }');
const MOVE_CARD = MUTATION('moveCard', 'MoveCardSuccess', 'card { id version }');
const RENAME_COLUMN = MUTATION('renameColumn', 'RenameColumnSuccess', 'column { id version }');
const ARCHIVE_BOARD = MUTATION('archiveBoard', 'ArchiveBoardSuccess', 'board { id archived }');

const stores = serverStorages('corkboard_archive_race');

describe.each(stores)('archiveBoard racing members’ writes ($name)', ({ open }) => {
  let s: TestServer;
  let close: () => Promise<void>;

  beforeAll(async () => {
    const opened = await open();
    close = opened.close;
    s = await startTestServer({ storage: opened.storage, env: NO_CLIENT_LIMITS });
  }, 120_000);

  afterAll(async () => {
    await s?.close();
    await close?.();
  });

  it(`lets none of ${WRITERS.length * WRITES_EACH} writes of three members land after the archive's commit`, async () => {
    const alice = await s.register('alice');
    let board = (await s.gql(CREATE_BOARD, { input: { name: 'Launch' } }, alice.token)).data!
      .createBoard.board as { id: string; version: number };
    const writers = [];
    for (const username of WRITERS) {
      const user = await s.register(username);
      board = (
        await s.gql(
          ADD_MEMBER,
          { input: { boardId: board.id, username, expectedVersion: board.version } },
          alice.token,
        )
      ).data!.addMember.board;
      const added = (
        await s.gql(
          ADD_COLUMN,
          { input: { boardId: board.id, name: username, expectedVersion: board.version } },
          alice.token,
        )
      ).data!.addColumn;
      board = added.board;
      const column = added.column as { id: string; version: number };
      const cards: { id: string; version: number }[] = [];
      for (let i = 0; i < 5; i++) {
        const card = (
          await s.gql(ADD_CARD, { input: { columnId: column.id, title: `c${i}` } }, user.token)
        ).data!.addCard;
        cards.push(card.card);
        column.version = card.column.version;
      }
      writers.push({ user, column, cards });
    }

    // Everything in flight at once: each member's adds, moves and renames, the archive
    // sent in the middle.
    const sent: Promise<{
      operation: string;
      input: Record<string, unknown>;
      answer: Awaited<ReturnType<TestServer['gql']>>;
    }>[] = [];
    const send = (
      operation: string,
      query: string,
      input: Record<string, unknown>,
      token: string,
    ) => sent.push(s.gql(query, { input }, token).then((answer) => ({ operation, input, answer })));
    for (let i = 0; i < WRITES_EACH; i++) {
      if (i === Math.floor(WRITES_EACH / 2)) {
        send(
          'archiveBoard',
          ARCHIVE_BOARD,
          { boardId: board.id, expectedVersion: board.version },
          alice.token,
        );
      }
      for (const { user, column, cards } of writers) {
        const card = cards[i % cards.length]!;
        if (i % 3 === 0)
          send('addCard', ADD_CARD, { columnId: column.id, title: `r${i}` }, user.token);
        else if (i % 3 === 1 && i < 3 * cards.length)
          send(
            'moveCard',
            MOVE_CARD,
            { cardId: card.id, toColumnId: column.id, expectedVersion: card.version },
            user.token,
          );
        else
          send(
            'renameColumn',
            RENAME_COLUMN,
            { columnId: column.id, name: `n${i}`, expectedVersion: column.version },
            user.token,
          );
      }
    }
    const answers = await Promise.all(sent);

    const successes = new Map<string, number>();
    for (const { operation, input, answer } of answers) {
      // Never an unexpected error: each answer is the operation's success or a typed error.
      expect(answer.errors, operation).toBeUndefined();
      const payload = (answer.data as Record<string, { __typename: string }>)[operation]!;
      const typename = payload.__typename;
      // A card already at the end of its column stays put: a success that writes nothing.
      const stayed =
        typename === 'MoveCardSuccess' &&
        (payload as unknown as { card: { version: number } }).card?.version ===
          input['expectedVersion'];
      if (stayed) continue;
      if (typename.endsWith('Success')) {
        successes.set(operation, (successes.get(operation) ?? 0) + 1);
      } else {
        expect(['BoardArchivedError', 'VersionConflictError'], operation).toContain(typename);
      }
    }
    expect(successes.get('archiveBoard')).toBe(1);

    // The event log: no write of the board after the archive's commit, and one commit
    // before it for each success reported.
    const commits = [];
    for (let position = 0; ;) {
      const page = await s.storage.store.readAll({ after: position });
      if (page.length === 0) break;
      commits.push(...page);
      position = page.at(-1)!.position;
    }
    const archive = commits.findIndex((c) => c.operation === 'archiveBoard');
    expect(archive).toBeGreaterThanOrEqual(0);
    // Nothing written to the board, its columns, cards or memberships after it (other
    // commits, e.g. a session's use recorded in the background, may follow).
    const boardWrites = commits
      .slice(archive + 1)
      .filter((c) => c.events.some((e) => /^(board|column|card|membership)-/.test(e.stream)));
    expect(boardWrites).toEqual([]);
    const setupAdds = WRITERS.length * 5;
    for (const operation of ['addCard', 'moveCard', 'renameColumn']) {
      const committed = commits.filter((c) => c.operation === operation).length;
      const extra = operation === 'addCard' ? setupAdds : 0;
      expect(committed, operation).toBe((successes.get(operation) ?? 0) + extra);
    }
    // A generous bound: 60 mutations on the simulator on a loaded machine.
  }, 120_000);
});
