/**
 * Renaming and archiving columns, restoring cards, archiving and restoring boards: the
 * commands over each storage adapter (memory, and mongo on the replica set or the
 * simulator), with what each one writes, refuses and leaves untouched, and the races
 * that matter (restores into a WIP-limited column, an archive racing a card's arrival).
 */
import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { foldEvents, type AggregateStates } from '../../src/boards/aggregates.js';
import type { CommandResult } from '../../src/boards/commandHandling/results.js';
import { createBoardCommands, type BoardCommands } from '../../src/boards/commands.js';
import {
  BoardArchivedError,
  ColumnNotEmptyError,
  ForbiddenError,
  ValidationError,
  WipLimitReachedError,
  type DomainError,
} from '../../src/boards/errors.js';
import { toStreamName, type StreamKind } from '../../src/boards/streams.js';
import type { EventStore } from '../../src/eventstore/types.js';
import { storeAdapters } from '../support/storeAdapters.js';

const adapters = storeAdapters();

function ok<S>(result: CommandResult<S, DomainError>): S {
  if (!result.ok)
    throw new Error(`expected success, got ${result.error.name}: ${result.error.message}`);
  return result.value;
}

function failure<E extends DomainError>(result: CommandResult<unknown, E>): E {
  if (result.ok) throw new Error('expected a failure, got success');
  return result.error;
}

describe.each(adapters)('archive, restore and rename on the $name store', (adapter) => {
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
  async function column(id: string) {
    const state = await stateOf('column', id);
    if (state.status !== 'active') throw new Error(`column ${id} absent`);
    return state;
  }
  async function board(id: string) {
    const state = await stateOf('board', id);
    if (state.status !== 'active') throw new Error(`board ${id} absent`);
    return state;
  }
  const cardIdsOf = async (columnId: string) =>
    (await column(columnId)).cards.toArray().map((c) => c.id);

  /** An owner, an editor, and columns with the given WIP limits. */
  async function boardWithColumns(...wipLimits: (number | null)[]) {
    const suffix = randomUUID().slice(0, 8);
    const owner = ok(
      await commands.registerUser(null, { username: `owner_${suffix}`, displayName: 'O' }),
    ).user.id;
    const member = ok(
      await commands.registerUser(null, { username: `member_${suffix}`, displayName: 'M' }),
    ).user.id;
    const created = ok(await commands.createBoard(owner, { name: 'Roadmap' }));
    const boardId = created.board.id;
    let version = ok(
      await commands.addMember(owner, {
        boardId,
        username: `member_${suffix}`,
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
    return { owner, member, boardId, columnIds };
  }

  async function addCards(actor: string, columnId: string, count: number) {
    const cards: { id: string; version: number }[] = [];
    for (let i = 0; i < count; i += 1) {
      cards.push(ok(await commands.addCard(actor, { columnId, title: `Card ${i}` })).card);
    }
    return cards;
  }

  async function archive(actor: string, card: { id: string; version: number }) {
    return ok(await commands.archiveCard(actor, { cardId: card.id, expectedVersion: card.version }))
      .card;
  }

  describe('renameColumn', () => {
    it('renames a column, merging over cards that entered it since the client read it', async () => {
      const { member, columnIds } = await boardWithColumns(null);
      const columnId = columnIds[0]!;
      const versionRead = (await store.readStream(toStreamName('column', columnId))).length;
      await addCards(member, columnId, 2);
      const renamed = ok(
        await commands.renameColumn(member, {
          columnId,
          name: 'Doing',
          expectedVersion: versionRead,
        }),
      );
      expect(renamed.column.id).toBe(columnId);
      expect(await column(columnId)).toMatchObject({ name: 'Doing' });
      expect((await column(columnId)).cards.size).toBe(2);
    });

    it('lets exactly one of 20 simultaneous renames at one version through and writes one name', async () => {
      const { member, columnIds } = await boardWithColumns(null);
      const columnId = columnIds[0]!;
      const version = (await store.readStream(toStreamName('column', columnId))).length;
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          commands.renameColumn(member, { columnId, name: `Name ${i}`, expectedVersion: version }),
        ),
      );
      const winners = results.flatMap((r, i) => (r.ok ? [i] : []));
      expect(winners).toHaveLength(1);
      for (const result of results) {
        if (!result.ok) expect(result.error.code).toBe('VERSION_CONFLICT');
      }
      expect((await column(columnId)).name).toBe(`Name ${winners[0]}`);
    });
  });

  describe('archiveColumn', () => {
    it('refuses a column holding live cards with ColumnNotEmptyError and writes nothing', async () => {
      const { member, boardId, columnIds } = await boardWithColumns(null, null);
      const columnId = columnIds[0]!;
      await addCards(member, columnId, 3);
      const head = await store.headPosition();
      const error = failure(
        await commands.archiveColumn(member, {
          columnId,
          expectedVersion: (await store.readStream(toStreamName('column', columnId))).length,
        }),
      );
      expect(error).toBeInstanceOf(ColumnNotEmptyError);
      expect(error).toMatchObject({ code: 'COLUMN_NOT_EMPTY', columnId, cardCount: 3 });
      expect(await store.headPosition()).toBe(head);
      expect((await column(columnId)).archived).toBe(false);
      expect((await board(boardId)).columns.map((c) => c.id)).toEqual(columnIds);
    });

    it('archives an empty column out of the board in one commit, and the column then takes no write', async () => {
      const { member, boardId, columnIds } = await boardWithColumns(null, null);
      const [first, second] = columnIds as [string, string];
      const [card] = await addCards(member, first, 1);
      await archive(member, card!);
      const version = (await store.readStream(toStreamName('column', first))).length;
      const archived = ok(
        await commands.archiveColumn(member, { columnId: first, expectedVersion: version }),
      );
      const [commit] = await store.readAll({ after: archived.position - 1, limit: 1 });
      expect(commit?.events.map((e) => e.type).sort()).toEqual(['ColumnArchived', 'ColumnRemoved']);
      expect((await column(first)).archived).toBe(true);
      expect((await board(boardId)).columns.map((c) => c.id)).toEqual([second]);

      const [other] = await addCards(member, second, 1);
      const head = await store.headPosition();
      const refusals: CommandResult<unknown, DomainError>[] = [
        await commands.addCard(member, { columnId: first, title: 'late' }),
        await commands.moveCard(member, {
          cardId: other!.id,
          toColumnId: first,
          expectedVersion: other!.version,
        }),
        await commands.renameColumn(member, {
          columnId: first,
          name: 'again',
          expectedVersion: version + 1,
        }),
        await commands.archiveColumn(member, { columnId: first, expectedVersion: version + 1 }),
      ];
      for (const refused of refusals) expect(failure(refused)).toBeInstanceOf(ValidationError);
      expect(await store.headPosition()).toBe(head);
      expect(await cardIdsOf(second)).toEqual([other!.id]);
    });

    it('never leaves an archived column holding a live card when its archive races 20 arriving cards', async () => {
      const { member, boardId, columnIds } = await boardWithColumns(null, null);
      const [target, source] = columnIds as [string, string];
      const cards = await addCards(member, source, 20);
      const version = (await store.readStream(toStreamName('column', target))).length;
      const [archived, ...moves] = await Promise.all([
        commands.archiveColumn(member, { columnId: target, expectedVersion: version }),
        ...cards.map((card) =>
          commands.moveCard(member, {
            cardId: card.id,
            toColumnId: target,
            expectedVersion: card.version,
          }),
        ),
      ]);
      const moved = moves.filter((m) => m.ok).length;
      const state = await column(target);
      if (archived.ok) {
        // Archived while empty: every move after it was refused, none entered.
        expect(state.archived).toBe(true);
        expect(state.cards.size).toBe(0);
        expect((await board(boardId)).columns.map((c) => c.id)).toEqual([source]);
      } else {
        expect(archived.error).toBeInstanceOf(ColumnNotEmptyError);
        expect(state.archived).toBe(false);
      }
      expect(state.cards.size).toBe(moved);
      expect((await column(source)).cards.size).toBe(20 - moved);
    });
  });

  describe('restoreCard', () => {
    it('puts a card back at the rank it had when archived', async () => {
      const { member, columnIds } = await boardWithColumns(null);
      const columnId = columnIds[0]!;
      const [a, b, c] = await addCards(member, columnId, 3);
      const archived = await archive(member, b!);
      expect(await cardIdsOf(columnId)).toEqual([a!.id, c!.id]);
      const restored = ok(
        await commands.restoreCard(member, { cardId: b!.id, expectedVersion: archived.version }),
      );
      expect(restored.column.id).toBe(columnId);
      expect(await cardIdsOf(columnId)).toEqual([a!.id, b!.id, c!.id]);
      expect(await stateOf('card', b!.id)).toMatchObject({ status: 'live', columnId });
    });

    it('puts it at the end when a live card holds its old rank now', async () => {
      const { member, columnIds } = await boardWithColumns(null);
      const columnId = columnIds[0]!;
      const [a, b, c] = await addCards(member, columnId, 3);
      const oldRank = (await column(columnId)).cards.rankOf(b!.id);
      const archived = await archive(member, b!);
      // A new card between the two left takes the midpoint: the rank the archived card had.
      const d = ok(
        await commands.addCard(member, { columnId, title: 'd', afterCardId: a!.id }),
      ).card;
      expect((await column(columnId)).cards.rankOf(d.id)).toBe(oldRank);
      ok(await commands.restoreCard(member, { cardId: b!.id, expectedVersion: archived.version }));
      expect(await cardIdsOf(columnId)).toEqual([a!.id, d.id, c!.id, b!.id]);
    });

    it('refuses a restore into a full column with WipLimitReachedError and writes nothing', async () => {
      const { member, owner, columnIds } = await boardWithColumns(2);
      const columnId = columnIds[0]!;
      const [a] = await addCards(member, columnId, 2);
      const archived = await archive(member, a!);
      ok(await commands.addCard(owner, { columnId, title: 'takes the place' }));
      const head = await store.headPosition();
      const error = failure(
        await commands.restoreCard(member, { cardId: a!.id, expectedVersion: archived.version }),
      );
      expect(error).toBeInstanceOf(WipLimitReachedError);
      expect(error).toMatchObject({ wipLimit: 2 });
      expect(await store.headPosition()).toBe(head);
      expect(await stateOf('card', a!.id)).toMatchObject({ status: 'archived' });
    });

    it('needs toColumnId for a card whose column is archived, and restores into it', async () => {
      const { member, columnIds } = await boardWithColumns(null, null);
      const [gone, other] = columnIds as [string, string];
      const [card] = await addCards(member, gone, 1);
      const archived = await archive(member, card!);
      ok(
        await commands.archiveColumn(member, {
          columnId: gone,
          expectedVersion: (await store.readStream(toStreamName('column', gone))).length,
        }),
      );
      const head = await store.headPosition();
      const without = failure(
        await commands.restoreCard(member, { cardId: card!.id, expectedVersion: archived.version }),
      );
      expect(without).toBeInstanceOf(ValidationError);
      expect(without).toMatchObject({ field: 'input.toColumnId' });
      const intoArchived = failure(
        await commands.restoreCard(member, {
          cardId: card!.id,
          toColumnId: gone,
          expectedVersion: archived.version,
        }),
      );
      expect(intoArchived).toMatchObject({ field: 'input.toColumnId' });
      expect(await store.headPosition()).toBe(head);

      ok(
        await commands.restoreCard(member, {
          cardId: card!.id,
          toColumnId: other,
          expectedVersion: archived.version,
        }),
      );
      expect(await cardIdsOf(other)).toEqual([card!.id]);
      expect(await stateOf('card', card!.id)).toMatchObject({ status: 'live', columnId: other });
    });

    it('admits exactly as many of 12 simultaneous restores into a column as its WIP limit leaves room for', async () => {
      const { member, columnIds } = await boardWithColumns(5);
      const columnId = columnIds[0]!;
      const cards = await addCards(member, columnId, 5);
      // 12 archived cards of this column, with one live card left: room for 4.
      const archived = [];
      for (const card of cards.slice(0, 4)) archived.push(await archive(member, card));
      for (let i = 0; i < 8; i += 1) {
        const [card] = await addCards(member, columnId, 1);
        archived.push(await archive(member, card!));
      }
      const results = await Promise.all(
        archived.map((card) =>
          commands.restoreCard(member, { cardId: card.id, expectedVersion: card.version }),
        ),
      );
      expect(results.filter((r) => r.ok)).toHaveLength(4);
      for (const result of results) {
        if (!result.ok) expect(result.error).toBeInstanceOf(WipLimitReachedError);
      }
      expect((await column(columnId)).cards.size).toBe(5);
      const live = await Promise.all(archived.map((card) => stateOf('card', card.id)));
      expect(live.filter((card) => card.status === 'live')).toHaveLength(4);
    });

    it('restores a card once when 10 restores of it race at one version', async () => {
      const { member, columnIds } = await boardWithColumns(null);
      const columnId = columnIds[0]!;
      const [card] = await addCards(member, columnId, 1);
      const archived = await archive(member, card!);
      const results = await Promise.all(
        Array.from({ length: 10 }, () =>
          commands.restoreCard(member, { cardId: card!.id, expectedVersion: archived.version }),
        ),
      );
      expect(results.filter((r) => r.ok)).toHaveLength(1);
      expect(await cardIdsOf(columnId)).toEqual([card!.id]);
    });
  });

  describe('archiveBoard and restoreBoard', () => {
    it('lets only the owner archive and restore a board', async () => {
      const { owner, member, boardId } = await boardWithColumns(null);
      const version = (await store.readStream(toStreamName('board', boardId))).length;
      const head = await store.headPosition();
      expect(
        failure(await commands.archiveBoard(member, { boardId, expectedVersion: version })),
      ).toBeInstanceOf(ForbiddenError);
      expect(await store.headPosition()).toBe(head);
      const archived = ok(
        await commands.archiveBoard(owner, { boardId, expectedVersion: version }),
      );
      expect((await board(boardId)).archived).toBe(true);
      expect(
        failure(
          await commands.restoreBoard(member, {
            boardId,
            expectedVersion: archived.board.version,
          }),
        ),
      ).toBeInstanceOf(ForbiddenError);
      expect((await board(boardId)).archived).toBe(true);
      ok(await commands.restoreBoard(owner, { boardId, expectedVersion: archived.board.version }));
      expect((await board(boardId)).archived).toBe(false);
    });

    it('makes an archived board read-only: every write on it, its columns and cards answers BoardArchivedError and writes nothing', async () => {
      const { owner, member, boardId, columnIds } = await boardWithColumns(null, null);
      const [first, second] = columnIds as [string, string];
      const [card, gone] = await addCards(member, first, 2);
      const goneArchived = await archive(member, gone!);
      const version = (await store.readStream(toStreamName('board', boardId))).length;
      const archived = ok(
        await commands.archiveBoard(owner, { boardId, expectedVersion: version }),
      );
      const columnVersion = (await store.readStream(toStreamName('column', first))).length;
      const head = await store.headPosition();
      const writes = await Promise.all([
        commands.renameBoard(owner, {
          boardId,
          name: 'x',
          expectedVersion: archived.board.version,
        }),
        commands.addColumn(owner, { boardId, name: 'x', expectedVersion: archived.board.version }),
        commands.renameColumn(member, {
          columnId: first,
          name: 'x',
          expectedVersion: columnVersion,
        }),
        commands.setWipLimit(member, {
          columnId: first,
          wipLimit: 3,
          expectedVersion: columnVersion,
        }),
        commands.addCard(member, { columnId: first, title: 'x' }),
        commands.editCard(member, { cardId: card!.id, expectedVersion: card!.version, title: 'x' }),
        commands.moveCard(member, {
          cardId: card!.id,
          toColumnId: second,
          expectedVersion: card!.version,
        }),
        commands.archiveCard(member, { cardId: card!.id, expectedVersion: card!.version }),
        commands.restoreCard(member, { cardId: gone!.id, expectedVersion: goneArchived.version }),
        commands.archiveBoard(owner, { boardId, expectedVersion: archived.board.version }),
      ]);
      for (const write of writes) expect(failure(write)).toBeInstanceOf(BoardArchivedError);
      expect(await store.headPosition()).toBe(head);

      // Restored, the board takes writes again.
      ok(await commands.restoreBoard(owner, { boardId, expectedVersion: archived.board.version }));
      ok(await commands.addCard(member, { columnId: first, title: 'after restore' }));
    });

    it('refuses to restore a board that is not archived (ValidationError on input.boardId)', async () => {
      const { owner, boardId } = await boardWithColumns(null);
      const version = (await store.readStream(toStreamName('board', boardId))).length;
      const error = failure(
        await commands.restoreBoard(owner, { boardId, expectedVersion: version }),
      );
      expect(error).toMatchObject({ code: 'VALIDATION', field: 'input.boardId' });
    });
  });
});
