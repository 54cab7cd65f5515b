/**
 * `archiveBoard` racing the members' writes, over each storage adapter (memory, and mongo
 * on the replica set or the simulator): no write of a member commits after the archive's
 * commit, whatever was under way when it committed; every write that did not commit before
 * it answers `BoardArchivedError`. And the member limit that keeps the archive's commit
 * (the board plus every member's membership stream) within the store's cap.
 */
import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { membershipId } from '../../src/boards/board/access.js';
import { MAX_BOARD_MEMBERS } from '../../src/boards/board/decide.js';
import type { CommandResult } from '../../src/boards/commandHandling/results.js';
import { createBoardCommands, type BoardCommands } from '../../src/boards/commands.js';
import {
  BoardArchivedError,
  ValidationError,
  VersionConflictError,
  type DomainError,
} from '../../src/boards/errors.js';
import { toStreamName } from '../../src/boards/streams.js';
import { appendLimits } from '../../src/eventstore/validation.js';
import {
  NO_STREAM,
  type AppendRequest,
  type EventStore,
  type StreamAppend,
} from '../../src/eventstore/types.js';
import { storeAdapters } from '../support/storeAdapters.js';
import { withOverrides } from '../support/storeOverrides.js';

const adapters = storeAdapters();

/** Members writing at once, each on a column of their own. */
const WRITERS = 3;
/** Writes each member has in flight: adds, moves and renames, a third each. */
const WRITES_EACH = 12;

function ok<S>(result: CommandResult<S, DomainError>): S {
  if (!result.ok)
    throw new Error(`expected success, got ${result.error.name}: ${result.error.message}`);
  return result.value;
}

/**
 * `store`, whose appends other than `archiveBoard`'s wait, once `archiveBoard` has started,
 * until its append has returned; and whose `archiveBoard` append waits until `heldToCommit`
 * writes wait. So those writes were decided on the live board and reach the store only
 * after the archive committed: the race at its worst, every time.
 */
function holdWritesAcrossTheArchive(store: EventStore, heldToCommit: number) {
  let archiving = false;
  let held = 0;
  let reached!: () => void;
  const enoughHeld = new Promise<void>((resolve) => (reached = resolve));
  let release!: () => void;
  const archived = new Promise<void>((resolve) => (release = resolve));
  const append = async (request: AppendRequest, options?: { signal?: AbortSignal }) => {
    if (request.metadata?.operation === 'archiveBoard') {
      await enoughHeld;
      try {
        return await store.append(request, options);
      } finally {
        release();
      }
    }
    if (archiving) {
      held += 1;
      if (held >= heldToCommit) reached();
      await archived;
    }
    return store.append(request, options);
  };
  const gated = withOverrides(store, { append });
  return {
    store: gated,
    /** From now on, writes' appends wait for the archive's. */
    startArchiving: () => {
      archiving = true;
    },
    held: () => held,
  };
}

/**
 * `store`, whose reads of the writers' membership streams wait, once `archiveBoard` has
 * started, until its append has returned, while their reads of the board go ahead; and whose
 * `archiveBoard` append waits until `heldToCommit` such reads wait and no board read is in
 * flight. So those writes read the board live, and their own membership stream (the one
 * their commit asserts) only after the archive committed: a read torn across the commit.
 */
function tearReadsAcrossTheArchive(store: EventStore, heldToCommit: number, exempt: string) {
  let archiving = false;
  let held = 0;
  let boardReads = 0;
  let release!: () => void;
  const archived = new Promise<void>((resolve) => (release = resolve));
  const readStream: EventStore['readStream'] = async (stream, options) => {
    if (archiving && stream.startsWith('membership-') && stream !== exempt) {
      held += 1;
      await archived;
    }
    if (!archiving || !stream.startsWith('board-')) return store.readStream(stream, options);
    boardReads += 1;
    try {
      return await store.readStream(stream, options);
    } finally {
      boardReads -= 1;
    }
  };
  const append = async (request: AppendRequest, options?: { signal?: AbortSignal }) => {
    if (request.metadata?.operation !== 'archiveBoard') return store.append(request, options);
    // Until enough writes wait on their membership stream and every board read they made
    // with it has returned (reads start a tick apart: look again after one).
    for (;;) {
      await new Promise((resolve) => setImmediate(resolve));
      if (held >= heldToCommit && boardReads === 0) break;
    }
    try {
      return await store.append(request, options);
    } finally {
      release();
    }
  };
  const gated = withOverrides(store, { append, readStream });
  return {
    store: gated,
    startArchiving: () => {
      archiving = true;
    },
    held: () => held,
  };
}

describe.each(adapters)('archiveBoard racing members’ writes on the $name store', (adapter) => {
  let store: EventStore;

  beforeEach(async () => {
    store = await adapter.createEventStore();
  });
  afterEach(async () => {
    await store.close();
  });

  const commandsOn = (on: EventStore): BoardCommands =>
    createBoardCommands({ store: on, now: () => new Date(), newId: randomUUID });

  /** An owner and `WRITERS` editors, each editor with a column of their own holding 4 cards. */
  async function teamBoard(commands: BoardCommands) {
    const suffix = randomUUID().slice(0, 8);
    const register = async (name: string) =>
      ok(await commands.registerUser(null, { username: `${name}_${suffix}`, displayName: name }))
        .user.id;
    const owner = await register('owner');
    const created = ok(await commands.createBoard(owner, { name: 'Launch' }));
    const boardId = created.board.id;
    let version = created.board.version;
    const writers: {
      userId: string;
      columnId: string;
      /** The column's version once its cards are in. */
      columnVersion: number;
      cards: { id: string; version: number }[];
    }[] = [];
    for (let i = 0; i < WRITERS; i += 1) {
      const userId = await register(`editor${i}`);
      version = ok(
        await commands.addMember(owner, {
          boardId,
          username: `editor${i}_${suffix}`,
          expectedVersion: version,
        }),
      ).board.version;
      const added = ok(
        await commands.addColumn(owner, {
          boardId,
          name: `Column ${i}`,
          wipLimit: null,
          expectedVersion: version,
        }),
      );
      version = added.board.version;
      const columnId = added.column.id;
      const cards = [];
      for (let c = 0; c < 4; c += 1) {
        cards.push(ok(await commands.addCard(userId, { columnId, title: `Card ${c}` })).card);
      }
      const columnVersion = await store.streamVersion(toStreamName('column', columnId));
      writers.push({ userId, columnId, columnVersion, cards });
    }
    return { owner, boardId, version, writers };
  }

  type Write = Promise<CommandResult<{ position?: number | null | undefined }, DomainError>>;

  /** `WRITES_EACH` writes of each writer, all sent at once: adds, moves, renames. */
  function allWrites(commands: BoardCommands, team: Awaited<ReturnType<typeof teamBoard>>) {
    return team.writers.flatMap(({ userId, columnId, columnVersion, cards }, w): Write[] =>
      Array.from({ length: WRITES_EACH }, (_, i): Write => {
        const card = cards[i % cards.length]!;
        switch (i % 3) {
          case 0:
            return commands.addCard(userId, { columnId, title: `race ${w}.${i}` });
          case 1:
            // Right before the column's first card (that card itself: after the last), from
            // the version the client saw: a move that writes on the board as set up (a move
            // to the place a card holds writes nothing, so nothing would hold it).
            return commands.moveCard(userId, {
              cardId: card.id,
              toColumnId: columnId,
              ...(card === cards[0]
                ? { afterCardId: cards.at(-1)!.id }
                : { beforeCardId: cards[0]!.id }),
              expectedVersion: card.version,
            });
          default:
            return commands.renameColumn(userId, {
              columnId,
              name: `Renamed ${w}.${i}`,
              expectedVersion: columnVersion,
            });
        }
      }),
    );
  }

  /**
   * What every race must leave: no commit at all after the archive's (nothing else writes),
   * each write that succeeded committed before it, and each that failed was refused as
   * archived (or, a rename or move, lost to another write of the same resource).
   */
  async function expectNothingAfter(
    archivedAt: number,
    writes: Awaited<Write>[],
  ): Promise<{ committed: number; refused: number }> {
    expect(await store.readAll({ after: archivedAt })).toEqual([]);
    let committed = 0;
    let refused = 0;
    for (const write of writes) {
      if (write.ok) {
        committed += 1;
        // Null: a move to where the card already was, which writes nothing.
        if (write.value.position !== null) expect(write.value.position!).toBeLessThan(archivedAt);
      } else {
        if (write.error instanceof BoardArchivedError) refused += 1;
        else expect(write.error).toBeInstanceOf(VersionConflictError);
      }
    }
    return { committed, refused };
  }

  it(`lets none of ${WRITERS * WRITES_EACH} writes held across the archive's commit land after it: each is refused as archived`, async () => {
    const gate = holdWritesAcrossTheArchive(store, WRITERS);
    const commands = commandsOn(gate.store);
    const team = await teamBoard(commands);
    gate.startArchiving();
    const archiving = commands.archiveBoard(team.owner, {
      boardId: team.boardId,
      expectedVersion: team.version,
    });
    const writes = await Promise.all(allWrites(commands, team));
    const archive = ok(await archiving);
    // Its own commit, not taken for an earlier one (its membership streams go at any version).
    expect(archive.replayed).toBe(false);
    const archivedAt = archive.position;
    // Each writer had one write decided on the live board and waiting to append while the
    // archive committed (the others waited their turn on the writer's membership stream).
    expect(gate.held()).toBeGreaterThanOrEqual(WRITERS);
    const { committed, refused } = await expectNothingAfter(archivedAt, writes);
    expect(committed).toBe(0);
    expect(refused).toBe(writes.length);
    // The archive's one commit: the board, and each member's membership stream.
    const [commit] = await store.readAll({ after: archivedAt - 1, limit: 1 });
    const members = [team.owner, ...team.writers.map((w) => w.userId)];
    expect(commit!.events.map((e) => [e.stream, e.type]).sort()).toEqual(
      [
        [toStreamName('board', team.boardId), 'BoardArchived'],
        ...members.map((userId) => [
          toStreamName('membership', membershipId(team.boardId, userId)),
          'BoardArchivedForMember',
        ]),
      ].sort(),
    );
  });

  it(`refuses each of ${WRITERS * WRITES_EACH} writes that read the board before the archive's commit and their membership after it`, async () => {
    const setup = commandsOn(store);
    const team = await teamBoard(setup);
    const ownerStream = toStreamName('membership', membershipId(team.boardId, team.owner));
    const gate = tearReadsAcrossTheArchive(store, WRITERS, ownerStream);
    const commands = commandsOn(gate.store);
    gate.startArchiving();
    const archiving = commands.archiveBoard(team.owner, {
      boardId: team.boardId,
      expectedVersion: team.version,
    });
    const writes = await Promise.all(allWrites(commands, team));
    const archivedAt = ok(await archiving).position;
    expect(gate.held()).toBeGreaterThanOrEqual(WRITERS);
    const { committed, refused } = await expectNothingAfter(archivedAt, writes);
    expect(committed).toBe(0);
    expect(refused).toBe(writes.length);
  });

  it(`lets no write land after the archive's commit when ${WRITERS * WRITES_EACH} writes race it freely`, async () => {
    const commands = commandsOn(store);
    const team = await teamBoard(commands);
    const [archived, ...writes] = await Promise.all([
      commands.archiveBoard(team.owner, { boardId: team.boardId, expectedVersion: team.version }),
      ...allWrites(commands, team),
    ]);
    const archivedAt = ok(archived).position;
    const { committed, refused } = await expectNothingAfter(archivedAt, writes);
    expect(committed + refused).toBeGreaterThan(0);
    // The board reads as archived, and a write sent now is refused.
    const again = await commands.addCard(team.writers[0]!.userId, {
      columnId: team.writers[0]!.columnId,
      title: 'late',
    });
    expect(again.ok ? null : again.error).toBeInstanceOf(BoardArchivedError);
  });

  it('keeps a board within the member limit (derived from the append cap): one more addMember is refused and writes nothing, and the archive fits one commit', async () => {
    expect(MAX_BOARD_MEMBERS + 1).toBe(appendLimits.maxEventsPerCommit);
    const commands = commandsOn(store);
    const suffix = randomUUID().slice(0, 8);
    const owner = ok(
      await commands.registerUser(null, { username: `owner_${suffix}`, displayName: 'O' }),
    ).user.id;
    const created = ok(await commands.createBoard(owner, { name: 'Crowd' }));
    const boardId = created.board.id;
    // A board at the limit, written straight to the store (adding 998 members one
    // command at a time would take minutes on the simulator): its creator and the rest,
    // each with their membership stream, as `addMember` writes them.
    const others = Array.from({ length: MAX_BOARD_MEMBERS - 1 }, (_, i) => `member-${i}`);
    for (let start = 0; start < others.length; start += 400) {
      const batch = others.slice(start, start + 400);
      const head = await store.streamVersion(toStreamName('board', boardId));
      await store.append({
        streams: [
          {
            stream: toStreamName('board', boardId),
            expected: head,
            events: batch.map((userId) => ({
              type: 'MemberAdded',
              data: { userId, role: 'VIEWER' },
              schemaVersion: 2,
            })),
          },
          ...batch.map((userId): StreamAppend => ({
            stream: toStreamName('membership', membershipId(boardId, userId)),
            expected: NO_STREAM,
            events: [{ type: 'MembershipGranted', data: { boardId, userId, role: 'VIEWER' } }],
          })),
        ],
      });
    }
    const newcomer = `newcomer_${suffix}`;
    const newcomerId = ok(
      await commands.registerUser(null, { username: newcomer, displayName: 'N' }),
    ).user.id;
    const version = await store.streamVersion(toStreamName('board', boardId));
    const before = await store.readAll({ after: 0, limit: Number.MAX_SAFE_INTEGER });
    const refused = await commands.addMember(owner, {
      boardId,
      username: newcomer,
      expectedVersion: version,
    });
    expect(refused.ok ? null : refused.error).toBeInstanceOf(ValidationError);
    expect(refused.ok ? null : (refused.error as ValidationError).field).toBe('input.boardId');
    expect(await store.readAll({ after: 0, limit: Number.MAX_SAFE_INTEGER })).toHaveLength(
      before.length,
    );
    expect(
      await store.streamVersion(toStreamName('membership', membershipId(boardId, newcomerId))),
    ).toBe(0);
    // At the limit, the archive is one commit of exactly the cap.
    const archived = ok(await commands.archiveBoard(owner, { boardId, expectedVersion: version }));
    const [commit] = await store.readAll({ after: archived.position - 1, limit: 1 });
    expect(commit!.events).toHaveLength(appendLimits.maxEventsPerCommit);
  });
});
