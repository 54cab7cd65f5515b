import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { foldEvents, type AggregateStates } from '../../src/boards/aggregates.js';
import type { ActiveBoard } from '../../src/boards/board/state.js';
import type { CardState } from '../../src/boards/card/state.js';
import type { ActiveColumn } from '../../src/boards/column/state.js';
import type { CommandResult } from '../../src/boards/commandHandling/results.js';
import { createBoardCommands, type BoardCommands } from '../../src/boards/commands.js';
import type { DomainError } from '../../src/boards/errors.js';
import {
  ForbiddenError,
  LastOwnerError,
  NotFoundError,
  UnauthenticatedError,
  UsernameTakenError,
  ValidationError,
  VersionConflictError,
  WipLimitReachedError,
} from '../../src/boards/errors.js';
import { toStreamName, type StreamKind } from '../../src/boards/streams.js';
import { hashToken } from '../../src/boards/user/token.js';
import { inputLimits } from '../../src/boards/validation.js';
import type { EventStore } from '../../src/eventstore/types.js';
import { storeAdapters } from '../support/storeAdapters.js';
import { withOverrides } from '../support/storeOverrides.js';

const adapters = storeAdapters();

/** The success value; fails the test with the error otherwise. */
function ok<S>(result: CommandResult<S, DomainError>): S {
  if (!result.ok)
    throw new Error(`expected success, got ${result.error.name}: ${result.error.message}`);
  return result.value;
}

/** The error of a failed result; fails the test on success. */
function failure<E extends DomainError>(result: CommandResult<unknown, E>): E {
  if (result.ok) throw new Error('expected a failure, got success');
  return result.error;
}

/** Casings of `word` that all differ. */
function casings(word: string, count: number): string[] {
  return Array.from({ length: count }, (_, n) =>
    [...word].map((ch, i) => ((n >> i) & 1 ? ch.toUpperCase() : ch.toLowerCase())).join(''),
  );
}

describe.each(adapters)('board commands on the $name store', (adapter) => {
  let store: EventStore;
  let commands: BoardCommands;

  beforeEach(async () => {
    store = await adapter.createEventStore();
    commands = createBoardCommands({ store, now: () => new Date(), newId: randomUUID });
  });

  afterEach(async () => {
    await store.close();
  });

  async function stateOf<K extends StreamKind>(kind: K, id: string): Promise<AggregateStates[K]> {
    return foldEvents(kind, await store.readStream(toStreamName(kind, id)));
  }

  async function activeColumn(id: string): Promise<ActiveColumn> {
    const column = await stateOf('column', id);
    if (column.status !== 'active') throw new Error(`column ${id} absent`);
    return column;
  }

  async function register(username: string): Promise<string> {
    return ok(await commands.registerUser(null, { username, displayName: username })).user.id;
  }

  /** An owner with a board, a second member, and columns with the given WIP limits. */
  async function boardWithColumns(...wipLimits: (number | null)[]) {
    const owner = await register(`owner_${randomUUID().slice(0, 8)}`);
    const memberName = `member_${randomUUID().slice(0, 8)}`;
    const member = await register(memberName);
    const created = ok(await commands.createBoard(owner, { name: 'Roadmap' }));
    const boardId = created.board.id;
    let version = ok(
      await commands.addMember(owner, {
        boardId,
        username: memberName.toUpperCase(),
        expectedVersion: created.board.version,
      }),
    ).board.version;
    const columnIds: string[] = [];
    for (const [i, wipLimit] of wipLimits.entries()) {
      const added = ok(
        await commands.addColumn(owner, {
          boardId,
          name: `Column ${i}`,
          wipLimit,
          expectedVersion: version,
        }),
      );
      version = added.board.version;
      columnIds.push(added.column.id);
    }
    return { owner, member, boardId, boardVersion: version, columnIds };
  }

  async function addCards(actor: string, columnId: string, count: number) {
    const cards: { id: string; version: number }[] = [];
    for (let i = 0; i < count; i += 1) {
      cards.push(ok(await commands.addCard(actor, { columnId, title: `Card ${i}` })).card);
    }
    return cards;
  }

  describe('users', () => {
    it('registers a user whose token is stored only as its hash', async () => {
      const registered = ok(
        await commands.registerUser(null, { username: 'Alice', displayName: ' Alice A. ' }),
      );
      expect(registered).toMatchObject({
        username: 'Alice',
        displayName: 'Alice A.',
        replayed: false,
      });
      expect(Buffer.from(registered.token, 'base64url')).toHaveLength(32);
      const user = await stateOf('user', registered.user.id);
      expect(user).toMatchObject({ status: 'registered' });
      const [session] = (await store.readAll())
        .flatMap((c) => c.events)
        .filter((e) => e.type === 'SessionStarted');
      expect(session?.data).toMatchObject({
        userId: registered.user.id,
        tokenHash: hashToken(registered.token),
        method: 'registration',
      });
      const stored = JSON.stringify(await store.readAll());
      expect(stored).not.toContain(registered.token);
    });

    it('rejects a second registration of the same username in another case', async () => {
      await register('Bob');
      const error = failure(
        await commands.registerUser(null, { username: 'bOB', displayName: 'B' }),
      );
      expect(error).toBeInstanceOf(UsernameTakenError);
      expect(error).toMatchObject({ username: 'bOB' });
    });

    it('lets exactly one of 20 simultaneous registrations of one username in different cases succeed', async () => {
      const results = await Promise.all(
        casings('username', 20).map((username) =>
          commands.registerUser(null, { username, displayName: username }),
        ),
      );
      expect(results.filter((r) => r.ok)).toHaveLength(1);
      const errors = results.flatMap((r) => (r.ok ? [] : [r.error]));
      expect(errors).toHaveLength(19);
      for (const error of errors) expect(error).toBeInstanceOf(UsernameTakenError);
    });

    it('returns the first registration, token included, when it is retried with the same idempotency key', async () => {
      const input = { username: 'carol', displayName: 'Carol', idempotencyKey: 'k-1' };
      const first = ok(await commands.registerUser(null, input));
      const head = await store.headPosition();
      const again = ok(await commands.registerUser(null, input));
      expect(again).toEqual({ ...first, replayed: true });
      expect(await store.headPosition()).toBe(head);
    });

    it('never hands a registration token to another request that reuses the idempotency key', async () => {
      const key = 'register-once';
      const first = ok(
        await commands.registerUser(null, {
          username: 'alice',
          displayName: 'Alice',
          idempotencyKey: key,
        }),
      );
      const head = await store.headPosition();
      // Same normalized username (other letter case), other display name, and the
      // same input with another display name: each at once, as an attacker would.
      const attempts = await Promise.all([
        commands.registerUser(null, {
          username: 'ALICE',
          displayName: 'Mallory',
          idempotencyKey: key,
        }),
        commands.registerUser(null, {
          username: 'Alice',
          displayName: 'Alice',
          idempotencyKey: key,
        }),
        commands.registerUser(null, {
          username: 'alice',
          displayName: 'Mallory',
          idempotencyKey: key,
        }),
      ]);
      for (const attempt of attempts) {
        const error = failure(attempt);
        expect(error).toBeInstanceOf(ValidationError);
        expect(error).toMatchObject({ field: 'input.idempotencyKey' });
        expect(JSON.stringify(error)).not.toContain(first.token);
      }
      expect(await store.headPosition()).toBe(head);
      // The same request by its own caller still replays, with the token it minted.
      const again = ok(
        await commands.registerUser(null, {
          username: 'alice',
          displayName: 'Alice',
          idempotencyKey: key,
        }),
      );
      expect(again).toEqual({ ...first, replayed: true });
    });

    it('rejects an invalid username with a ValidationError on input.username', async () => {
      const error = failure(
        await commands.registerUser(null, { username: 'a b', displayName: 'x' }),
      );
      expect(error).toBeInstanceOf(ValidationError);
      expect(error).toMatchObject({ field: 'input.username' });
    });
  });

  describe('boards and columns', () => {
    it('refuses to create a board for an anonymous caller or an unknown user', async () => {
      expect(failure(await commands.createBoard(null, { name: 'x' }))).toBeInstanceOf(
        UnauthenticatedError,
      );
      expect(failure(await commands.createBoard('nobody', { name: 'x' }))).toBeInstanceOf(
        UnauthenticatedError,
      );
    });

    it('lets only the owner rename a board and hides it from non-members', async () => {
      const { owner, member, boardId, boardVersion } = await boardWithColumns();
      const stranger = await register('stranger');
      const byMember = failure(
        await commands.renameBoard(member, { boardId, name: 'x', expectedVersion: boardVersion }),
      );
      expect(byMember).toBeInstanceOf(ForbiddenError);
      const byStranger = failure(
        await commands.renameBoard(stranger, { boardId, name: 'x', expectedVersion: boardVersion }),
      );
      expect(byStranger).toBeInstanceOf(NotFoundError);
      expect(byStranger).toMatchObject({ id: boardId, resourceType: 'Board' });
      const renamed = ok(
        await commands.renameBoard(owner, { boardId, name: 'Plan', expectedVersion: boardVersion }),
      );
      expect(renamed.board).toEqual({ id: boardId, version: boardVersion + 1 });
      expect(await stateOf('board', boardId)).toMatchObject({ name: 'Plan' });
    });

    it('orders columns as added and moved, with the board version guarding the order', async () => {
      const { owner, member, boardId, boardVersion, columnIds } = await boardWithColumns(
        null,
        null,
        null,
      );
      const [a, b, c] = columnIds as [string, string, string];
      const moved = ok(
        await commands.moveColumn(member, {
          columnId: c,
          beforeColumnId: a,
          expectedVersion: boardVersion,
        }),
      );
      const board = (await stateOf('board', boardId)) as ActiveBoard;
      expect(board.columns.map((col) => col.id)).toEqual([c, a, b]);
      expect(moved.board.version).toBe(boardVersion + 1);

      const stale = failure(
        await commands.moveColumn(owner, { columnId: a, expectedVersion: boardVersion }),
      );
      expect(stale).toBeInstanceOf(VersionConflictError);
      expect(stale).toMatchObject({
        resourceType: 'Board',
        expectedVersion: boardVersion,
        actualVersion: boardVersion + 1,
        conflicts: [{ eventType: 'ColumnPlaced', fields: ['columns'], actor: member }],
      });
    });

    it('merges a rename over a column added since the client read the board', async () => {
      const { owner, boardId, boardVersion } = await boardWithColumns();
      ok(await commands.addColumn(owner, { boardId, name: 'Late', expectedVersion: boardVersion }));
      const renamed = ok(
        await commands.renameBoard(owner, { boardId, name: 'New', expectedVersion: boardVersion }),
      );
      expect(renamed).toMatchObject({ merged: true, board: { version: boardVersion + 2 } });
    });
  });

  describe('cards', () => {
    it('adds cards in the requested order and hides them from non-members', async () => {
      const { member, columnIds } = await boardWithColumns(null);
      const columnId = columnIds[0]!;
      const [first, last] = await addCards(member, columnId, 2);
      const middle = ok(
        await commands.addCard(member, { columnId, title: 'Middle', afterCardId: first!.id }),
      );
      expect((await activeColumn(columnId)).cards.toArray().map((c) => c.id)).toEqual([
        first!.id,
        middle.card.id,
        last!.id,
      ]);
      const stranger = await register('outsider');
      const hidden = failure(await commands.addCard(stranger, { columnId, title: 'x' }));
      expect(hidden).toMatchObject({ code: 'NOT_FOUND', id: columnId, resourceType: 'Column' });
      const edit = failure(
        await commands.editCard(stranger, { cardId: first!.id, expectedVersion: 1, title: 'x' }),
      );
      expect(edit).toMatchObject({ code: 'NOT_FOUND', id: first!.id });
    });

    it('moves a card between columns in one commit over the card and both columns', async () => {
      const { member, columnIds } = await boardWithColumns(null, null);
      const [from, to] = columnIds as [string, string];
      const [card] = await addCards(member, from, 1);
      const moved = ok(
        await commands.moveCard(member, {
          cardId: card!.id,
          toColumnId: to,
          expectedVersion: card!.version,
        }),
      );
      expect(moved.card).toEqual({ id: card!.id, version: 2 });
      expect(moved.from.id).toBe(from);
      expect(moved.to.id).toBe(to);
      const [commit] = await store.readAll({ after: moved.position! - 1, limit: 1 });
      expect(commit?.commitId).toBe(moved.commitId);
      expect(commit?.operation).toBe('moveCard');
      expect(commit?.actor).toBe(member);
      expect(commit?.events.map((e) => [e.stream, e.type])).toEqual([
        [`card-${card!.id}`, 'CardMoved'],
        [`column-${from}`, 'CardLeft'],
        [`column-${to}`, 'CardEntered'],
      ]);
    });

    it('refuses a card entering a full column but lets a card move within it', async () => {
      const { member, columnIds } = await boardWithColumns(2, null);
      const [full, other] = columnIds as [string, string];
      const [a, b] = await addCards(member, full, 2);
      expect(
        failure(await commands.addCard(member, { columnId: full, title: 'x' })),
      ).toBeInstanceOf(WipLimitReachedError);
      const [outside] = await addCards(member, other, 1);
      const entering = failure(
        await commands.moveCard(member, {
          cardId: outside!.id,
          toColumnId: full,
          expectedVersion: 1,
        }),
      );
      expect(entering).toMatchObject({ code: 'WIP_LIMIT_REACHED', columnId: full, wipLimit: 2 });
      const within = ok(
        await commands.moveCard(member, {
          cardId: a!.id,
          toColumnId: full,
          afterCardId: b!.id,
          expectedVersion: a!.version,
        }),
      );
      expect(within.from).toEqual(within.to);
      expect((await activeColumn(full)).cards.toArray().map((c) => c.id)).toEqual([b!.id, a!.id]);
    });

    it('admits exactly as many of 30 simultaneous moves into a column as its WIP limit allows', async () => {
      const { member, columnIds } = await boardWithColumns(null, 3);
      const [source, target] = columnIds as [string, string];
      const cards = await addCards(member, source, 30);
      const results = await Promise.all(
        cards.map((card) =>
          commands.moveCard(member, {
            cardId: card.id,
            toColumnId: target,
            expectedVersion: card.version,
          }),
        ),
      );
      expect(results.filter((r) => r.ok)).toHaveLength(3);
      for (const result of results) {
        if (!result.ok) expect(result.error).toBeInstanceOf(WipLimitReachedError);
      }
      expect((await activeColumn(target)).cards.size).toBe(3);
      expect((await activeColumn(source)).cards.size).toBe(27);
    });

    it('never leaves a column holding more cards than its WIP limit when the limit comes down while 20 cards are added', async () => {
      const { owner, member, columnIds } = await boardWithColumns(null);
      const columnId = columnIds[0]!;
      await addCards(member, columnId, 2);
      const expectedVersion = await store.streamVersion(`column-${columnId}`);
      const [lowered, ...added] = await Promise.all([
        commands.setWipLimit(owner, { columnId, wipLimit: 5, expectedVersion }),
        ...Array.from({ length: 20 }, (_, i) =>
          commands.addCard(member, { columnId, title: `Racing ${i}` }),
        ),
      ]);
      const column = await activeColumn(columnId);
      if (lowered.ok) {
        // The limit landed when the column held at most 5 cards; no card entered past it.
        expect(column.wipLimit).toBe(5);
        expect(column.cards.size).toBeLessThanOrEqual(5);
      } else {
        // More than 5 cards had entered first: the limit is refused and nothing else changes.
        expect(lowered.error).toBeInstanceOf(ValidationError);
        expect(lowered.error).toMatchObject({ field: 'input.wipLimit' });
        expect(column.wipLimit).toBeNull();
        expect(column.cards.size).toBe(22);
      }
      expect(column.cards.size).toBe(2 + added.filter((r) => r.ok).length);
      for (const result of added) {
        if (!result.ok) expect(result.error).toBeInstanceOf(WipLimitReachedError);
      }
      // Lowering below what the column holds is refused, whatever the order was.
      const below = failure(
        await commands.setWipLimit(owner, {
          columnId,
          wipLimit: column.cards.size - 1,
          expectedVersion: await store.streamVersion(`column-${columnId}`),
        }),
      );
      expect(below).toMatchObject({ field: 'input.wipLimit' });
      expect((await activeColumn(columnId)).wipLimit).toBe(column.wipLimit);
    });

    it('lets exactly one of 50 simultaneous title edits at one version succeed and tells the others what changed', async () => {
      const { member, columnIds } = await boardWithColumns(null);
      const [card] = await addCards(member, columnIds[0]!, 1);
      const expectedVersion = card!.version;
      const results = await Promise.all(
        Array.from({ length: 50 }, (_, i) =>
          commands.editCard(member, { cardId: card!.id, expectedVersion, title: `Title ${i}` }),
        ),
      );
      expect(results.filter((r) => r.ok)).toHaveLength(1);
      const errors = results.flatMap((r) => (r.ok ? [] : [r.error]));
      expect(errors).toHaveLength(49);
      for (const error of errors) {
        expect(error).toBeInstanceOf(VersionConflictError);
        expect(error).toMatchObject({
          resourceType: 'Card',
          resourceId: card!.id,
          expectedVersion,
          actualVersion: expectedVersion + 1,
          conflicts: [
            {
              version: expectedVersion + 1,
              eventType: 'CardEdited',
              fields: ['title'],
              actor: member,
            },
          ],
        });
      }
    });

    it('merges simultaneous edits of different fields made at the same version', async () => {
      const { owner, member, columnIds } = await boardWithColumns(null);
      const [card] = await addCards(member, columnIds[0]!, 1);
      const expectedVersion = card!.version;
      const [title, description] = await Promise.all([
        commands.editCard(member, { cardId: card!.id, expectedVersion, title: 'New title' }),
        commands.editCard(owner, {
          cardId: card!.id,
          expectedVersion,
          description: 'New description',
        }),
      ]);
      const merged = [ok(title), ok(description)].map((s) => s.merged).sort();
      expect(merged).toEqual([false, true]);
      expect(await stateOf('card', card!.id)).toMatchObject({
        title: 'New title',
        description: 'New description',
      });
      expect(await store.streamVersion(`card-${card!.id}`)).toBe(expectedVersion + 2);
    });

    it('merges a WIP limit change over cards that entered the column since, but not over another WIP change', async () => {
      const { owner, member, columnIds } = await boardWithColumns(null);
      const columnId = columnIds[0]!;
      const columnVersion = await store.streamVersion(`column-${columnId}`);
      await addCards(member, columnId, 2);
      const set = ok(
        await commands.setWipLimit(owner, {
          columnId,
          wipLimit: 5,
          expectedVersion: columnVersion,
        }),
      );
      expect(set).toMatchObject({ merged: true, column: { version: columnVersion + 3 } });
      const conflict = failure(
        await commands.setWipLimit(member, {
          columnId,
          wipLimit: 3,
          expectedVersion: columnVersion,
        }),
      );
      expect(conflict).toBeInstanceOf(VersionConflictError);
      expect((conflict as VersionConflictError).conflicts.map((c) => c.fields)).toEqual([
        ['cards', 'cardCount'],
        ['cards', 'cardCount'],
        ['wipLimit'],
      ]);
    });

    it('archives a card out of its column and refuses to edit it afterwards', async () => {
      const { member, columnIds } = await boardWithColumns(null);
      const columnId = columnIds[0]!;
      const [card] = await addCards(member, columnId, 1);
      const archived = ok(
        await commands.archiveCard(member, { cardId: card!.id, expectedVersion: card!.version }),
      );
      expect(archived.column.id).toBe(columnId);
      expect((await activeColumn(columnId)).cards.size).toBe(0);
      const edit = failure(
        await commands.editCard(member, { cardId: card!.id, expectedVersion: 2, title: 'x' }),
      );
      expect(edit).toMatchObject({ code: 'VALIDATION', field: 'input.cardId' });
    });

    it('archives every done card of a column in one commit', async () => {
      const { member, columnIds } = await boardWithColumns(null);
      const columnId = columnIds[0]!;
      const cards = await addCards(member, columnId, 4);
      for (const card of [cards[0]!, cards[2]!]) {
        ok(
          await commands.editCard(member, {
            cardId: card.id,
            expectedVersion: card.version,
            done: true,
          }),
        );
      }
      const result = ok(await commands.archiveDoneCards(member, { columnId }));
      expect(result.archivedCount).toBe(2);
      expect(result.archivedCards.map((c) => c.id)).toEqual([cards[0]!.id, cards[2]!.id]);
      const [commit] = await store.readAll({ after: result.position! - 1, limit: 1 });
      expect(commit?.events.map((e) => e.type)).toEqual([
        'CardsArchived',
        'CardArchived',
        'CardArchived',
      ]);
      expect((await activeColumn(columnId)).cards.toArray().map((c) => c.id)).toEqual([
        cards[1]!.id,
        cards[3]!.id,
      ]);
      const nothing = ok(await commands.archiveDoneCards(member, { columnId }));
      expect(nothing).toMatchObject({ archivedCount: 0, commitId: null, position: null });
    });

    it('returns the first card when addCard is retried with the same idempotency key', async () => {
      const { member, owner, columnIds } = await boardWithColumns(null);
      const columnId = columnIds[0]!;
      const input = { columnId, title: 'Once', idempotencyKey: 'add-1' };
      const first = ok(await commands.addCard(member, input));
      const [again, concurrent] = await Promise.all([
        commands.addCard(member, input),
        commands.addCard(member, input),
      ]);
      expect(ok(again)).toEqual({ ...first, replayed: true });
      expect(ok(concurrent)).toEqual({ ...first, replayed: true });
      // Another user's key is another key.
      const theirs = ok(await commands.addCard(owner, input));
      expect(theirs.card.id).not.toBe(first.card.id);
      expect((await activeColumn(columnId)).cards.size).toBe(2);
    });

    it('answers a duplicate that found the key free but read the state its first left with the first result, replayed', async () => {
      const { member, columnIds } = await boardWithColumns(null, null);
      const [from, to] = columnIds as [string, string];
      const card = ok(await commands.addCard(member, { columnId: from, title: 'Racing' })).card;
      // The duplicate looks the key up before the first commits, and reads after it did.
      let lookups = 0;
      let duplicateLookedUp!: () => void;
      const lookedUp = new Promise<void>((resolve) => (duplicateLookedUp = resolve));
      let firstCommitted!: () => void;
      const committed = new Promise<void>((resolve) => (firstCommitted = resolve));
      const racing = withOverrides(store, {
        idempotentResult: async (key, fingerprint, options) => {
          const found = await store.idempotentResult(key, fingerprint, options);
          lookups += 1;
          if (lookups === 2) {
            duplicateLookedUp();
            await committed;
          }
          return found;
        },
        append: async (request, options) => {
          if (request.idempotencyKey !== undefined) await lookedUp;
          const appended = await store.append(request, options);
          if (request.idempotencyKey !== undefined) firstCommitted();
          return appended;
        },
      });
      const racingCommands = createBoardCommands({
        store: racing,
        now: () => new Date(),
        newId: randomUUID,
      });
      const input = {
        cardId: card.id,
        toColumnId: to,
        expectedVersion: card.version,
        idempotencyKey: 'move-once',
      };
      const [first, duplicate] = await Promise.all([
        racingCommands.moveCard(member, input),
        racingCommands.moveCard(member, input),
      ]);
      expect(ok(first).replayed).toBe(false);
      expect(ok(duplicate)).toEqual({ ...ok(first), replayed: true });
      // Moved once.
      expect((await store.readStream(toStreamName('card', card.id))).length).toBe(2);
    });

    it('refuses an addCard that reuses its idempotency key with another title, writing nothing', async () => {
      const { member, columnIds } = await boardWithColumns(null);
      const columnId = columnIds[0]!;
      ok(await commands.addCard(member, { columnId, title: 'First', idempotencyKey: 'add-2' }));
      const reused = await Promise.all(
        Array.from({ length: 5 }, (_, i) =>
          commands.addCard(member, { columnId, title: `Other ${i}`, idempotencyKey: 'add-2' }),
        ),
      );
      for (const result of reused) {
        expect(failure(result)).toMatchObject({ field: 'input.idempotencyKey' });
      }
      expect((await activeColumn(columnId)).cards.size).toBe(1);
    });

    it(`refuses an idempotency key past ${inputLimits.idempotencyKeyMax} characters, writing nothing`, async () => {
      const { member, columnIds } = await boardWithColumns(null);
      const columnId = columnIds[0]!;
      const head = await store.headPosition();
      const idempotencyKey = 'k'.repeat(inputLimits.idempotencyKeyMax + 1);
      const refused = failure(
        await commands.addCard(member, { columnId, title: 'x', idempotencyKey }),
      );
      expect(refused).toBeInstanceOf(ValidationError);
      expect(refused).toMatchObject({ field: 'input.idempotencyKey' });
      expect(await store.headPosition()).toBe(head);
      ok(
        await commands.addCard(member, {
          columnId,
          title: 'x',
          idempotencyKey: idempotencyKey.slice(1),
        }),
      );
      expect((await activeColumn(columnId)).cards.size).toBe(1);
    });

    it('passes the signal to every store call and stops when it is aborted', async () => {
      const { owner, member, boardId, boardVersion, columnIds } = await boardWithColumns(
        null,
        null,
      );
      const [from, to] = columnIds as [string, string];
      const [card] = await addCards(member, from, 1);
      const calls: { method: string; signal: unknown }[] = [];
      const spied: EventStore = {
        headPosition: () => store.headPosition(),
        idempotentResult: (key, fingerprint, options) => {
          calls.push({ method: 'idempotentResult', signal: options?.signal });
          return store.idempotentResult(key, fingerprint, options);
        },
        subscribe: (options) => store.subscribe(options),
        archiveStreams: (streams, options) => store.archiveStreams(streams, options),
        restoreStreams: (streams, options) => store.restoreStreams(streams, options),
        close: () => store.close(),
        append: (request, options) => {
          calls.push({ method: 'append', signal: options?.signal });
          return store.append(request, options);
        },
        readStream: (stream, options) => {
          calls.push({ method: 'readStream', signal: options?.signal });
          return store.readStream(stream, options);
        },
        readStreamBackward: (stream, options) => {
          calls.push({ method: 'readStreamBackward', signal: options.signal });
          return store.readStreamBackward(stream, options);
        },
        streamVersion: (stream, options) => {
          calls.push({ method: 'streamVersion', signal: options?.signal });
          return store.streamVersion(stream, options);
        },
        readAll: (options) => {
          calls.push({ method: 'readAll', signal: options?.signal });
          return store.readAll(options);
        },
      };
      const spiedCommands = createBoardCommands({
        store: spied,
        now: () => new Date(),
        newId: randomUUID,
      });
      const { signal } = new AbortController();
      const options = { signal };
      ok(
        await spiedCommands.moveCard(
          member,
          { cardId: card!.id, toColumnId: to, expectedVersion: 1 },
          options,
        ),
      );
      ok(
        await spiedCommands.renameBoard(
          owner,
          { boardId, name: 'n', expectedVersion: boardVersion },
          options,
        ),
      );
      ok(await spiedCommands.archiveDoneCards(member, { columnId: to }, options));
      const input = { columnId: from, title: 'again', idempotencyKey: 'k' };
      ok(await spiedCommands.addCard(member, input, options));
      ok(await spiedCommands.addCard(member, input, options));
      expect(calls.map((c) => c.method)).toEqual(
        expect.arrayContaining(['append', 'readStream', 'readAll']),
      );
      for (const call of calls) expect(call.signal).toBe(signal);

      const controller = new AbortController();
      controller.abort();
      await expect(
        commands.addCard(member, { columnId: from, title: 'x' }, { signal: controller.signal }),
      ).rejects.toThrow();
      expect((await activeColumn(from)).cards.size).toBe(1);
    });

    it('keeps every column a strict total order through 200 simultaneous random moves', async () => {
      const { member, columnIds } = await boardWithColumns(null, null, null);
      const cards = (await Promise.all(columnIds.map((id) => addCards(member, id, 8)))).flat();
      const homeOf = new Map<string, string>();
      for (const columnId of columnIds) {
        for (const c of (await activeColumn(columnId)).cards) homeOf.set(c.id, columnId);
      }
      let seed = 42;
      const random = (n: number) => {
        seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
        return Math.floor((seed / 2 ** 31) * n);
      };
      const pick = <T>(items: readonly T[]): T => items[random(items.length)]!;
      // Each mover acts like a client: on a version conflict it retries at the version
      // the error reports, keeping its (possibly outdated) choice of neighbour.
      const move = async () => {
        const card = pick(cards);
        const toColumnId = pick(columnIds);
        const neighbours = cards.filter((c) => c.id !== card.id && homeOf.get(c.id) === toColumnId);
        const placement = random(3);
        const neighbour = neighbours.length > 0 ? pick(neighbours).id : undefined;
        let expectedVersion = card.version;
        for (;;) {
          const result = await commands.moveCard(member, {
            cardId: card.id,
            toColumnId,
            expectedVersion,
            ...(placement === 1 && { afterCardId: neighbour }),
            ...(placement === 2 && { beforeCardId: neighbour }),
          });
          if (result.ok || !(result.error instanceof VersionConflictError)) return result;
          if (result.error.resourceType !== 'Card') return result;
          expectedVersion = result.error.actualVersion;
        }
      };
      const results = await Promise.all(Array.from({ length: 200 }, move));
      // More than one move per card succeeded: the columns really were raced.
      expect(results.filter((r) => r.ok).length).toBeGreaterThan(cards.length);
      for (const result of results) {
        if (!result.ok) {
          expect([VersionConflictError, ValidationError]).toContainEqual(result.error.constructor);
        }
      }

      const seen = new Map<string, string>();
      for (const columnId of columnIds) {
        const live = (await activeColumn(columnId)).cards.toArray();
        for (let i = 1; i < live.length; i += 1) {
          expect(live[i - 1]!.rank < live[i]!.rank).toBe(true);
        }
        for (const c of live) {
          expect(seen.has(c.id)).toBe(false);
          seen.set(c.id, columnId);
        }
      }
      expect(seen.size).toBe(cards.length);
      for (const card of cards) {
        const state: CardState = await stateOf('card', card.id);
        expect(state.status).toBe('live');
        if (state.status === 'live') expect(state.columnId).toBe(seen.get(card.id));
      }
    });
  });
  describe('membership and roles', () => {
    /** The board of `boardWithColumns(null)` with a third user added as `role`. */
    async function boardWithRole(role: 'EDITOR' | 'VIEWER' | 'OWNER') {
      const board = await boardWithColumns(null);
      const name = `third_${randomUUID().slice(0, 8)}`;
      const third = await register(name);
      const added = ok(
        await commands.addMember(board.owner, {
          boardId: board.boardId,
          username: name,
          role,
          expectedVersion: board.boardVersion,
        }),
      );
      return { ...board, third, boardVersion: added.board.version };
    }

    it('adds members as editors by default and lets a viewer write nothing', async () => {
      const { owner, member, third, boardId, boardVersion, columnIds } =
        await boardWithRole('VIEWER');
      const board = (await stateOf('board', boardId)) as ActiveBoard;
      expect(board.members).toEqual([
        { userId: owner, role: 'OWNER' },
        { userId: member, role: 'EDITOR' },
        { userId: third, role: 'VIEWER' },
      ]);
      const [column] = columnIds as [string];
      const [card] = await addCards(member, column, 1);
      const writes = [
        commands.addCard(third, { columnId: column, title: 'x' }),
        commands.editCard(third, { cardId: card!.id, expectedVersion: 1, title: 'y' }),
        commands.addColumn(third, { boardId, name: 'z', expectedVersion: boardVersion }),
        commands.setWipLimit(third, { columnId: column, wipLimit: 3, expectedVersion: 2 }),
        commands.archiveCard(third, { cardId: card!.id, expectedVersion: 1 }),
      ];
      for (const result of await Promise.all(writes)) {
        expect(failure(result)).toBeInstanceOf(ForbiddenError);
      }
      expect(await store.streamVersion(toStreamName('card', card!.id))).toBe(1);
    });

    it('lets only owners change roles, and never demotes or removes the last owner', async () => {
      const { owner, member, third, boardId, boardVersion } = await boardWithRole('VIEWER');
      expect(
        failure(
          await commands.setMemberRole(member, {
            boardId,
            userId: third,
            role: 'EDITOR',
            expectedVersion: boardVersion,
          }),
        ),
      ).toBeInstanceOf(ForbiddenError);
      expect(
        failure(
          await commands.removeMember(owner, {
            boardId,
            userId: owner,
            expectedVersion: boardVersion,
          }),
        ),
      ).toBeInstanceOf(LastOwnerError);
      const promoted = ok(
        await commands.setMemberRole(owner, {
          boardId,
          userId: member,
          role: 'OWNER',
          expectedVersion: boardVersion,
        }),
      );
      // Now the first owner may leave, and the second may not.
      const left = ok(
        await commands.removeMember(owner, {
          boardId,
          userId: owner,
          expectedVersion: promoted.board.version,
        }),
      );
      expect(
        failure(
          await commands.setMemberRole(member, {
            boardId,
            userId: member,
            role: 'EDITOR',
            expectedVersion: left.board.version,
          }),
        ),
      ).toBeInstanceOf(LastOwnerError);
      // The one who left sees the board as absent.
      expect(
        failure(await commands.renameBoard(owner, { boardId, name: 'n', expectedVersion: 9 })),
      ).toBeInstanceOf(NotFoundError);
    });

    it('lets exactly one of two owners demoting each other at once succeed', async () => {
      const { owner, member, boardId, boardVersion } = await boardWithRole('EDITOR');
      const promoted = ok(
        await commands.setMemberRole(owner, {
          boardId,
          userId: member,
          role: 'OWNER',
          expectedVersion: boardVersion,
        }),
      ).board.version;
      const results = await Promise.all(
        [
          [owner, member],
          [member, owner],
        ].map(([actor, target]) =>
          commands.setMemberRole(actor!, {
            boardId,
            userId: target!,
            role: 'EDITOR',
            expectedVersion: promoted,
          }),
        ),
      );
      expect(results.filter((r) => r.ok)).toHaveLength(1);
      const board = (await stateOf('board', boardId)) as ActiveBoard;
      expect(board.members.filter((m) => m.role === 'OWNER')).toHaveLength(1);
    });

    it("fails a member's write when their removal commits between its read and its append", async () => {
      const { owner, member, boardId, boardVersion, columnIds } = await boardWithColumns(null);
      const [card] = await addCards(member, columnIds[0]!, 1);
      let removal: Promise<unknown> | undefined;
      // The member's edit has read everything (its membership included) when the owner's
      // removal commits; then its append runs.
      const racing: EventStore = {
        headPosition: () => store.headPosition(),
        idempotentResult: (key, fingerprint, options) =>
          store.idempotentResult(key, fingerprint, options),
        subscribe: (options) => store.subscribe(options),
        close: () => store.close(),
        readStream: (stream, options) => store.readStream(stream, options),
        readStreamBackward: (stream, options) => store.readStreamBackward(stream, options),
        archiveStreams: (streams, options) => store.archiveStreams(streams, options),
        restoreStreams: (streams, options) => store.restoreStreams(streams, options),
        streamVersion: (stream, options) => store.streamVersion(stream, options),
        readAll: (options) => store.readAll(options),
        append: async (request, options) => {
          if (request.metadata?.operation === 'editCard' && !removal) {
            removal = commands.removeMember(owner, {
              boardId,
              userId: member,
              expectedVersion: boardVersion,
            });
            ok((await removal) as CommandResult<unknown, DomainError>);
          }
          return store.append(request, options);
        },
      };
      const racingCommands = createBoardCommands({
        store: racing,
        now: () => new Date(),
        newId: randomUUID,
      });
      const edit = await racingCommands.editCard(member, {
        cardId: card!.id,
        expectedVersion: 1,
        title: 'after the removal',
      });
      expect(removal).toBeDefined();
      expect(failure(edit)).toBeInstanceOf(NotFoundError);
      expect(await store.streamVersion(toStreamName('card', card!.id))).toBe(1);
    });
  });
});
