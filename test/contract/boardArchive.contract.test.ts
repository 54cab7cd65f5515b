/**
 * Archiving old boards end to end below the API: board commands, the projector with the
 * `boardPlacements` read model, and the archive sweeper with the board plan, on memory and
 * on the mongo adapters (simulator or MONGODB_URI). Which commits sit where is read from
 * the store itself (memory: its hot positions; mongo: `commits` and `archive_commits`).
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { boardPlacementReadModel } from '../../src/boards/archive/readModel.js';
import { boardStreams, createBoardArchivePlan } from '../../src/boards/archive/plan.js';
import type { CommandResult } from '../../src/boards/commandHandling/results.js';
import { createBoardCommands, type BoardCommands } from '../../src/boards/commands.js';
import type { DomainError } from '../../src/boards/errors.js';
import { historySpecs } from '../../src/boards/history/changes.js';
import { readHistory } from '../../src/boards/history/readHistory.js';
import { boardReadModel, cardReadModel, projections } from '../../src/boards/readModel.js';
import { archiveRecordStream } from '../../src/boards/streams.js';
import {
  ArchiveSweeper,
  type ArchivePlan,
  type ArchiveSweeperOptions,
} from '../../src/eventstore/archiveSweeper.js';
import type { Commit, EventStore } from '../../src/eventstore/types.js';
import { ProjectorRuntime } from '../../src/projector/ProjectorRuntime.js';
import { projectorAdapters, type ReadSide } from '../support/projectorAdapters.js';
import { until } from '../support/until.js';

const DAY_MS = 24 * 60 * 60 * 1000;
const logger = pino({ level: 'silent' });

function ok<S>(result: CommandResult<S, DomainError>): S {
  if (!result.ok) throw new Error(`expected success, got ${result.error.name}`);
  return result.value;
}

/** The store with `hooks` run around its moves (to race them with commands). */
function withMoveHooks(
  store: EventStore,
  hooks: { beforeMove?: () => Promise<void>; afterMove?: () => Promise<void> },
): EventStore {
  return new Proxy(store, {
    get(target, key, receiver) {
      if (key !== 'archiveStreams') {
        const value: unknown = Reflect.get(target, key, receiver);
        return typeof value === 'function' ? value.bind(target) : value;
      }
      return async (...args: Parameters<EventStore['archiveStreams']>) => {
        await hooks.beforeMove?.();
        const moved = await target.archiveStreams(...args);
        await hooks.afterMove?.();
        return moved;
      };
    },
  });
}

describe.each(projectorAdapters())('archiving old boards ($name)', (adapter) => {
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanup.splice(0).reverse()) await c();
  });

  interface World {
    side: ReadSide;
    commands: BoardCommands;
    projector: ProjectorRuntime;
    owner: string;
    /** Waits until the projector has applied every commit. */
    settle(): Promise<void>;
    /** A sweeper over the board plan whose clock reads `archiveAfterDays` after `at()`. */
    sweeper(options?: Partial<ArchiveSweeperOptions> & { at?: () => Date }): ArchiveSweeper;
  }

  async function world(): Promise<World> {
    const side = await adapter.open();
    cleanup.push(() => side.close());
    const commands = createBoardCommands({
      store: side.store,
      now: () => new Date(),
      newId: randomUUID,
    });
    const projector = new ProjectorRuntime({
      store: side.store,
      storage: side.storage,
      projections,
      logger,
      leaseTtlMs: 5_000,
    });
    projector.start();
    cleanup.push(() => projector.stop());
    await until(() => projector.active, 30_000, 'the projector to hold its lease');
    const settle = () =>
      until(
        async () => (await side.storage.changeLog.head()) === (await side.store.headPosition()),
        30_000,
        'the projector to catch up',
      );
    const owner = ok(
      await commands.registerUser(null, {
        username: `o${randomUUID().slice(0, 8)}`,
        displayName: 'O',
      }),
    ).user.id;
    return {
      side,
      commands,
      projector,
      owner,
      settle,
      sweeper: ({ at, ...options } = {}) =>
        new ArchiveSweeper({
          store: side.store,
          plan: createBoardArchivePlan({ store: side.store, readModels: side.storage.readModels }),
          archiveAfterMs: 30 * DAY_MS,
          logger,
          now: () => new Date((at?.() ?? new Date()).getTime() + 30 * DAY_MS),
          ...options,
        }),
    };
  }

  /** A board with two columns, four cards (one moved across, one archived) and an archived column. */
  async function boardWithCards(w: World) {
    const { commands, owner } = w;
    const created = ok(await w.commands.createBoard(owner, { name: 'Old plans' }));
    const boardId = created.board.id;
    let version = created.board.version;
    const columnIds: string[] = [];
    for (const name of ['Todo', 'Done', 'Spare']) {
      const added = ok(
        await commands.addColumn(owner, { boardId, name, expectedVersion: version }),
      );
      version = added.board.version;
      columnIds.push(added.column.id);
    }
    const [todo, done, spare] = columnIds as [string, string, string];
    const cards = [];
    for (let i = 0; i < 4; i += 1) {
      cards.push(ok(await commands.addCard(owner, { columnId: todo, title: `Card ${i}` })).card);
    }
    ok(
      await commands.moveCard(owner, {
        cardId: cards[1]!.id,
        toColumnId: done,
        expectedVersion: cards[1]!.version,
      }),
    );
    ok(
      await commands.archiveCard(owner, {
        cardId: cards[2]!.id,
        expectedVersion: cards[2]!.version,
      }),
    );
    const spareColumn = await w.side.store.streamVersion(`column-${spare}`);
    ok(await commands.archiveColumn(owner, { columnId: spare, expectedVersion: spareColumn }));
    version = await w.side.store.streamVersion(`board-${boardId}`);
    const streams = [
      `board-${boardId}`,
      `membership-${boardId}~${owner}`,
      ...columnIds.map((id) => `column-${id}`),
      ...cards.map((c) => `card-${c.id}`),
    ];
    return { boardId, version, streams, cardIds: cards.map((c) => c.id), todo };
  }

  async function archive(w: World, boardId: string): Promise<Date> {
    const version = await w.side.store.streamVersion(`board-${boardId}`);
    ok(await w.commands.archiveBoard(w.owner, { boardId, expectedVersion: version }));
    const events = await w.side.store.readStream(`board-${boardId}`);
    return events.at(-1)!.occurredAt;
  }

  async function restore(w: World, boardId: string): Promise<void> {
    const version = await w.side.store.streamVersion(`board-${boardId}`);
    ok(await w.commands.restoreBoard(w.owner, { boardId, expectedVersion: version }));
  }

  /** Where the commits holding an event of `streams` are, and where all the others are. */
  async function placementOf(side: ReadSide, streams: readonly string[]) {
    const all = await side.store.readAll({ limit: Number.MAX_SAFE_INTEGER });
    const mine = new Set(
      all.filter((c) => c.events.some((e) => streams.includes(e.stream))).map((c) => c.position),
    );
    const { hot, archived } = await side.placement();
    return {
      mineHot: hot.filter((p) => mine.has(p)).length,
      mineArchived: archived.filter((p) => mine.has(p)).length,
      othersArchived: archived.filter((p) => !mine.has(p)).length,
      total: all.length,
    };
  }

  const streamsRead = async (store: EventStore, streams: readonly string[]) =>
    Promise.all(streams.map((s) => store.readStream(s)));

  it('lists every stream of a board from the event log: board, memberships, columns (archived ones too), cards (moved and archived ones too)', async () => {
    const w = await world();
    const board = await boardWithCards(w);
    const listed = await boardStreams(w.side.store, board.boardId);
    expect([...listed.streams].sort()).toEqual([...board.streams].sort());
    expect(listed.since).toBeNull();
    const at = await archive(w, board.boardId);
    expect((await boardStreams(w.side.store, board.boardId)).since).toEqual(at);
  });

  it('moves every stream of a board archived longer than the delay to the archive, and none of a live or recently archived board; reads, history and a rebuild answer as before', async () => {
    const w = await world();
    const old = await boardWithCards(w);
    const live = await boardWithCards(w);
    const recent = await boardWithCards(w);
    await archive(w, old.boardId);
    await sleep(10); // so that the two boards' archive times differ
    const recentAt = await archive(w, recent.boardId);
    await w.settle();
    const before = await streamsRead(w.side.store, old.streams);
    const historyBefore = await readHistory(w.side.store, historySpecs.Card, {
      id: old.cardIds[1]!,
      first: 50,
    });
    const commitsBefore = await w.side.store.readAll({ limit: Number.MAX_SAFE_INTEGER });

    // The sweeper's clock: 30 days after the recent board was archived, less 1 ms.
    const sweeper = w.sweeper({ at: () => new Date(recentAt.getTime() - 1) });
    const first = await sweeper.sweep();
    expect(first).toMatchObject({ archivedGroups: 1, restoredGroups: 0, skippedGroups: 0 });
    expect(first.nextDueAt).toEqual(new Date(recentAt.getTime() + 30 * DAY_MS));

    const placed = await placementOf(w.side, old.streams);
    expect(placed.mineHot).toBe(0);
    expect(placed.mineArchived).toBe(first.commits);
    expect(placed.othersArchived).toBe(0);
    expect(first.commits).toBeGreaterThanOrEqual(12);
    expect(await streamsRead(w.side.store, old.streams)).toEqual(before);
    expect(
      await readHistory(w.side.store, historySpecs.Card, { id: old.cardIds[1]!, first: 50 }),
    ).toEqual(historyBefore);
    // Only the archive record's two commits were added; none moved from another board.
    const commitsAfter = await w.side.store.readAll({ limit: Number.MAX_SAFE_INTEGER });
    expect(commitsAfter.slice(0, commitsBefore.length)).toEqual(commitsBefore);
    expect(
      commitsAfter
        .slice(commitsBefore.length)
        .flatMap((c: Commit) => c.events.map((e) => e.stream)),
    ).toEqual([archiveRecordStream(old.boardId), archiveRecordStream(old.boardId)]);
    expect((await placementOf(w.side, live.streams)).mineArchived).toBe(0);
    expect((await placementOf(w.side, recent.streams)).mineArchived).toBe(0);

    // Recorded as done: the next sweep lists nothing to move.
    await w.settle();
    const view = await w.side.storage.readModels.active();
    expect(await boardPlacementReadModel.documents(view).get(old.boardId)).toMatchObject({
      archived: true,
      placement: 'archive',
      due: 'none',
      recordVersion: 2,
    });
    expect(await sweeper.sweep()).toMatchObject({
      archivedGroups: 0,
      commits: 0,
      skippedGroups: 0,
    });

    // A rebuild replays both places into the same documents.
    const boardDoc = await boardReadModel.documents(view).get(old.boardId);
    const cardDoc = await cardReadModel.documents(view).get(old.cardIds[1]!);
    await w.projector.rebuild();
    const rebuilt = await w.side.storage.readModels.active({ fresh: true });
    expect(rebuilt.generation).not.toBe(view.generation);
    expect(await boardReadModel.documents(rebuilt).get(old.boardId)).toEqual(boardDoc);
    expect(await cardReadModel.documents(rebuilt).get(old.cardIds[1]!)).toEqual(cardDoc);
    expect(await boardPlacementReadModel.documents(rebuilt).get(old.boardId)).toMatchObject({
      placement: 'archive',
      due: 'none',
    });
  });

  it('brings a restored board back to the hot store on the next sweep, writable as before', async () => {
    const w = await world();
    const board = await boardWithCards(w);
    const at = await archive(w, board.boardId);
    await w.settle();
    const sweeper = w.sweeper({ at: () => at });
    expect(await sweeper.sweep()).toMatchObject({ archivedGroups: 1 });
    expect((await placementOf(w.side, board.streams)).mineHot).toBe(0);

    await restore(w, board.boardId);
    await w.settle();
    const back = await sweeper.sweep();
    expect(back).toMatchObject({ restoredGroups: 1, archivedGroups: 0 });
    const placed = await placementOf(w.side, board.streams);
    expect(placed).toMatchObject({ mineArchived: 0, othersArchived: 0 });
    expect(back.commits).toBe(placed.mineHot - 1); // the restore's own commit was hot
    ok(await w.commands.addCard(w.owner, { columnId: board.todo, title: 'Back at work' }));
    await w.settle();
    expect(await sweeper.sweep()).toMatchObject({
      restoredGroups: 0,
      archivedGroups: 0,
      commits: 0,
    });
  });

  it.each([
    ['after the sweep listed it, before it starts', 'listed'],
    ['after its move started, before the commits move', 'beforeMove'],
    ['after the commits moved, before the move is recorded', 'afterMove'],
  ] as const)(
    'a board restored while being swept (%s) ends fully hot, every commit read as before',
    async (_when, racePoint) => {
      const w = await world();
      const board = await boardWithCards(w);
      const at = await archive(w, board.boardId);
      await w.settle();
      const before = await streamsRead(w.side.store, board.streams);
      const race = () => restore(w, board.boardId);
      const plan = createBoardArchivePlan({
        store: w.side.store,
        readModels: w.side.storage.readModels,
      });
      const racingPlan: ArchivePlan =
        racePoint === 'listed'
          ? {
              ...plan,
              due: async (direction, limit, signal) => {
                const due = await plan.due(direction, limit, signal);
                if (direction === 'archive' && due.length > 0) await race();
                return due;
              },
            }
          : plan;
      const store = withMoveHooks(w.side.store, { [racePoint]: race });
      const sweeper = w.sweeper({ store, plan: racingPlan, at: () => at });
      const first = await sweeper.sweep();
      // Restored before the move started: the event log says so, and nothing moves.
      if (racePoint === 'listed')
        expect(first).toMatchObject({ archivedGroups: 0, skippedGroups: 1 });
      await w.settle();
      // At most one more sweep brings back whatever moved.
      await w.sweeper({ at: () => at }).sweep();
      const placed = await placementOf(w.side, board.streams);
      expect(placed).toMatchObject({ mineArchived: 0, othersArchived: 0 });
      const now = await streamsRead(w.side.store, board.streams);
      expect(now.map((events, i) => events.slice(0, before[i]!.length))).toEqual(before);
      await w.settle();
      const view = await w.side.storage.readModels.active();
      expect(await boardPlacementReadModel.documents(view).get(board.boardId)).toMatchObject({
        archived: false,
        due: 'none',
      });
    },
  );

  it('a move cut short leaves the board marked mixed: once restored, the next sweep brings every commit back', async () => {
    const w = await world();
    const board = await boardWithCards(w);
    const at = await archive(w, board.boardId);
    await w.settle();
    const failing = withMoveHooks(w.side.store, {
      afterMove: async () => {
        throw new Error('connection lost');
      },
    });
    await expect(w.sweeper({ store: failing, at: () => at }).sweep()).rejects.toThrow(
      'connection lost',
    );
    expect((await placementOf(w.side, board.streams)).mineHot).toBe(0);
    await restore(w, board.boardId);
    await w.settle();
    expect(await w.sweeper({ at: () => at }).sweep()).toMatchObject({ restoredGroups: 1 });
    expect(await placementOf(w.side, board.streams)).toMatchObject({ mineArchived: 0 });
  });

  it('sweepers of several instances at once move each board once, recorded once', async () => {
    const w = await world();
    const boards = [];
    for (let i = 0; i < 4; i += 1) boards.push(await boardWithCards(w));
    let last = new Date();
    for (const board of boards) last = await archive(w, board.boardId);
    await w.settle();
    // Every sweeper lists the boards before any of them moves one: they all race for all four.
    const plan = createBoardArchivePlan({
      store: w.side.store,
      readModels: w.side.storage.readModels,
    });
    let listed = 0;
    const listingTogether: ArchivePlan = {
      ...plan,
      async due(direction, limit, signal) {
        const due = await plan.due(direction, limit, signal);
        if (direction === 'archive') {
          listed += 1;
          await until(() => listed === 4, 30_000, 'every sweeper to list');
        }
        return due;
      },
    };
    const results = await Promise.all(
      Array.from({ length: 4 }, () => w.sweeper({ plan: listingTogether, at: () => last }).sweep()),
    );
    expect(results.reduce((n, r) => n + r.archivedGroups, 0)).toBe(boards.length);
    expect(results.reduce((n, r) => n + r.skippedGroups, 0)).toBe(3 * boards.length);
    for (const board of boards) {
      expect(await placementOf(w.side, board.streams)).toMatchObject({ mineHot: 0 });
      const record = await w.side.store.readStream(archiveRecordStream(board.boardId));
      expect(record.map((e) => e.type)).toEqual(['ArchiveMoveStarted', 'ArchiveMoveEnded']);
    }
  });

  it('moves at most groupsPerSweep boards per sweep, the rest on the next, and nothing where it may not run', async () => {
    const w = await world();
    const boards = [];
    for (let i = 0; i < 3; i += 1) boards.push(await boardWithCards(w));
    let last = new Date();
    for (const board of boards) last = await archive(w, board.boardId);
    await w.settle();
    const idle = w.sweeper({ at: () => last, mayRun: () => false });
    expect(await idle.sweep()).toMatchObject({ archivedGroups: 0, commits: 0 });
    expect((await w.side.placement()).archived).toEqual([]);
    const sweeper = w.sweeper({ at: () => last, groupsPerSweep: 2 });
    expect(await sweeper.sweep()).toMatchObject({ archivedGroups: 2, full: true });
    await w.settle();
    expect(await sweeper.sweep()).toMatchObject({ archivedGroups: 1, full: false });
    for (const board of boards) {
      expect(await placementOf(w.side, board.streams)).toMatchObject({ mineHot: 0 });
    }
  });
});
