/**
 * A decision too big for one commit is appended as consecutive commits. When a later one
 * cannot be made (the redo on fresh state is refused, or every attempt loses its race),
 * the commits already made stand: the command answers them, with what stopped the rest,
 * never a failure that hides a committed write.
 */
import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineCommand } from '../../src/boards/commandHandling/defineCommand.js';
import {
  handleCommand,
  type CommandRuntime,
} from '../../src/boards/commandHandling/handleCommand.js';
import type { CommandResult } from '../../src/boards/commandHandling/results.js';
import { createBoardCommands } from '../../src/boards/commands.js';
import { ARCHIVE_DONE_CARDS_PER_COMMIT } from '../../src/boards/column/decide.js';
import {
  ErrorCode,
  ForbiddenError,
  ValidationError,
  VersionConflictError,
  type DomainError,
} from '../../src/boards/errors.js';
import { toStreamName } from '../../src/boards/streams.js';
import { MemoryEventStore } from '../../src/eventstore/memory/MemoryEventStore.js';
import { NO_STREAM, type AppendRequest, type EventStore } from '../../src/eventstore/types.js';
import { withOverrides } from '../support/storeOverrides.js';

const stores: EventStore[] = [];
afterEach(async () => {
  await Promise.all(stores.splice(0).map((s) => s.close()));
});

function ok<S>(result: CommandResult<S, DomainError>): S {
  if (!result.ok)
    throw new Error(`expected success, got ${result.error.name}: ${result.error.message}`);
  return result.value;
}

/**
 * `store`, on which `meanwhile` runs right before each append of `operation` after its
 * first (`times` of them at most): another writer's commit landing between two of the
 * operation's commits.
 */
function interleaved(
  store: EventStore,
  operation: string,
  meanwhile: () => Promise<unknown>,
  times = 1,
): EventStore {
  let appends = 0;
  let done = 0;
  const append = async (request: AppendRequest, options?: { signal?: AbortSignal }) => {
    if (request.metadata?.operation === operation) {
      appends += 1;
      if (appends > 1 && done < times) {
        done += 1;
        await meanwhile();
      }
    }
    return store.append(request, options);
  };
  return withOverrides(store, { append });
}

describe('a decision spanning commits, stopped part way', () => {
  /** Renames in one decision: one commit each, since each names the board stream again. */
  const RENAMES = 3;
  const gateId = randomUUID();

  /**
   * Renames board `input.boardId` until it has had `RENAMES` renames, one commit per rename,
   * each asserting the gate board unchanged; refused (Forbidden) once the gate is named
   * 'closed'. What earlier commits did is no longer to do on a redo.
   */
  const renameThrice = defineCommand({
    name: 'renameThrice',
    input: z.object({ boardId: z.string() }),
    errors: [ValidationError, ForbiddenError, VersionConflictError],
    load: async (session, { input }) => {
      const gate = await session.load('board', gateId);
      await session.assertUnchanged(gate.stream);
      return { gate: gate.state, target: await session.load('board', input.boardId) };
    },
    decide: ({ input }, { gate, target }) => {
      if (gate.status === 'active' && gate.name === 'closed') throw new ForbiddenError();
      const left = RENAMES - (target.version - 1);
      return Array.from({ length: left }, (_, i) => ({
        aggregate: 'board' as const,
        id: input.boardId,
        events: [{ type: 'BoardRenamed' as const, data: { name: `name ${i}` } }],
      }));
    },
    succeed: (commit) => ({
      heads: commit.heads,
      position: commit.position,
      stoppedBy: commit.stoppedBy ?? null,
    }),
  });

  async function setUp(meanwhile: (store: EventStore) => Promise<unknown>, times?: number) {
    const store = new MemoryEventStore();
    stores.push(store);
    const boardId = randomUUID();
    for (const id of [gateId, boardId]) {
      await store.append({
        streams: [
          {
            stream: toStreamName('board', id),
            expected: NO_STREAM,
            events: [{ type: 'BoardCreated', data: { boardId: id, name: 'b', ownerId: 'u' } }],
          },
        ],
      });
    }
    const runtime: CommandRuntime = {
      store: interleaved(store, 'renameThrice', () => meanwhile(store), times),
      now: () => new Date(),
      newId: randomUUID,
      retry: { maxAttempts: 3, backoffMs: () => 0 },
      tokenSecret: 'secret',
    };
    const renamesOf = async () =>
      (await store.readStream(toStreamName('board', boardId))).filter(
        (e) => e.type === 'BoardRenamed',
      ).length;
    return { store, runtime, boardId, renamesOf };
  }

  const renameGate = (name: string) => async (store: EventStore) => {
    const stream = toStreamName('board', gateId);
    const version = (await store.readStream(stream)).at(-1)!.version;
    return store.append({
      streams: [{ stream, expected: version, events: [{ type: 'BoardRenamed', data: { name } }] }],
    });
  };

  it('answers the commits made, stopped by the refusal of the redo, when the redo is refused', async () => {
    const { runtime, boardId, renamesOf } = await setUp(renameGate('closed'));
    const answer = ok(await handleCommand(runtime, renameThrice, null, { boardId }));
    expect(await renamesOf()).toBe(1);
    expect(answer).toMatchObject({
      stoppedBy: ErrorCode.Forbidden,
      heads: [{ stream: toStreamName('board', boardId), version: 2 }],
    });
    expect(answer.position).toBe((await runtime.store.headPosition()) - 1);
  });

  it('finishes on the redo, answering every commit of every attempt, when nothing refuses it', async () => {
    const { runtime, boardId, renamesOf } = await setUp(renameGate('still open'));
    const answer = ok(await handleCommand(runtime, renameThrice, null, { boardId }));
    expect(await renamesOf()).toBe(RENAMES);
    expect(answer).toMatchObject({
      stoppedBy: null,
      heads: [{ stream: toStreamName('board', boardId), version: RENAMES + 1 }],
      position: await runtime.store.headPosition(),
    });
  });

  it('answers the commits made, stopped by the conflict, when every attempt loses its race', async () => {
    const { runtime, boardId, renamesOf } = await setUp(renameGate('busy'), Infinity);
    const answer = ok(await handleCommand(runtime, renameThrice, null, { boardId }));
    // The first commit lands; every append after it loses to another rename of the gate.
    expect(await renamesOf()).toBe(1);
    expect(answer).toMatchObject({
      stoppedBy: ErrorCode.VersionConflict,
      heads: [{ stream: toStreamName('board', boardId), version: 2 }],
    });
  });
});

/** Adds `count` cards to column `columnId`, each then marked done. */
async function addDoneCards(
  commands: ReturnType<typeof createBoardCommands>,
  owner: string,
  columnId: string,
  count: number,
): Promise<void> {
  for (let i = 0; i < count; i += 1) {
    const card = ok(await commands.addCard(owner, { columnId, title: `Card ${i}` })).card;
    ok(
      await commands.editCard(owner, {
        cardId: card.id,
        expectedVersion: card.version,
        done: true,
      }),
    );
  }
}

describe('archiveDoneCards retried with its idempotency key after a run of several commits', () => {
  it('answers the whole run again, replayed, and writes nothing', async () => {
    const store = new MemoryEventStore();
    stores.push(store);
    const commands = createBoardCommands({ store, now: () => new Date(), newId: randomUUID });
    const owner = ok(await commands.registerUser(null, { username: 'owner', displayName: 'O' }))
      .user.id;
    const created = ok(await commands.createBoard(owner, { name: 'Big' }));
    const { column } = ok(
      await commands.addColumn(owner, {
        boardId: created.board.id,
        name: 'Done',
        wipLimit: null,
        expectedVersion: created.board.version,
      }),
    );
    const done = ARCHIVE_DONE_CARDS_PER_COMMIT + 10;
    await addDoneCards(commands, owner, column.id, done);
    const request = { columnId: column.id, idempotencyKey: 'archive-done-once' };

    const first = ok(await commands.archiveDoneCards(owner, request));
    const head = await store.headPosition();
    const again = ok(await commands.archiveDoneCards(owner, request));

    expect(first).toMatchObject({ archivedCount: done, complete: true, replayed: false });
    expect(again).toEqual({ ...first, replayed: true });
    expect(await store.headPosition()).toBe(head);
  });
});

describe('archiveDoneCards stopped by archiveBoard between its commits', () => {
  it('answers the cards it archived, not complete, stopped by BOARD_ARCHIVED', async () => {
    const memory = new MemoryEventStore();
    stores.push(memory);
    // Another instance's owner archives the board (its own per-stream writers), once set.
    const elsewhere = createBoardCommands({
      store: memory,
      now: () => new Date(),
      newId: randomUUID,
    });
    const board = { id: '', version: 0, owner: '' };
    const store = interleaved(memory, 'archiveDoneCards', async () =>
      ok(
        await elsewhere.archiveBoard(board.owner, {
          boardId: board.id,
          expectedVersion: board.version,
        }),
      ),
    );
    const commands = createBoardCommands({ store, now: () => new Date(), newId: randomUUID });
    const owner = ok(await commands.registerUser(null, { username: 'owner', displayName: 'O' }))
      .user.id;
    const created = ok(await commands.createBoard(owner, { name: 'Big' }));
    const added = ok(
      await commands.addColumn(owner, {
        boardId: created.board.id,
        name: 'Done',
        wipLimit: null,
        expectedVersion: created.board.version,
      }),
    );
    Object.assign(board, { id: created.board.id, version: added.board.version, owner });
    const columnId = added.column.id;
    await addDoneCards(commands, owner, columnId, ARCHIVE_DONE_CARDS_PER_COMMIT + 10);

    const answer = ok(await commands.archiveDoneCards(owner, { columnId }));

    expect(answer).toMatchObject({
      complete: false,
      stoppedBy: ErrorCode.BoardArchived,
      archivedCount: ARCHIVE_DONE_CARDS_PER_COMMIT,
    });
    expect(answer.archivedCards).toHaveLength(ARCHIVE_DONE_CARDS_PER_COMMIT);
    // What it answers is what the store holds: those cards archived, the rest not.
    const archived = new Set<string>();
    const all = await memory.readAll({ after: 0, limit: 100_000 });
    for (const commit of all) {
      for (const event of commit.events) {
        if (event.type === 'CardArchived') archived.add(event.stream);
      }
    }
    expect([...archived].sort()).toEqual(
      answer.archivedCards.map((c) => toStreamName('card', c.id)).sort(),
    );
    expect(all.at(-1)?.metadata.operation).toBe('archiveBoard');
  });
});
