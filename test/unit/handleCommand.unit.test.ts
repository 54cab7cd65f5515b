import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineCommand } from '../../src/boards/commandHandling/defineCommand.js';
import {
  handleCommand,
  type CommandRuntime,
} from '../../src/boards/commandHandling/handleCommand.js';
import {
  NotFoundError,
  RetriesExhaustedError,
  ValidationError,
  VersionConflictError,
} from '../../src/boards/errors.js';
import { VersionConflict } from '../../src/eventstore/errors.js';
import { MemoryEventStore } from '../../src/eventstore/memory/MemoryEventStore.js';
import type { EventStore } from '../../src/eventstore/types.js';

const stores: EventStore[] = [];
afterEach(async () => {
  await Promise.all(stores.splice(0).map((s) => s.close()));
});

function runtime(store: EventStore = new MemoryEventStore()): CommandRuntime {
  stores.push(store);
  return {
    store,
    now: () => new Date(),
    newId: randomUUID,
    retry: { maxAttempts: 3, backoffMs: () => 0 },
    tokenSecret: 'secret',
  };
}

/** A command that creates a board with the given name, rejecting as `reject` says. */
function boardCommand(
  errors: readonly (typeof ValidationError | typeof NotFoundError | typeof VersionConflictError)[],
  reject: () => void = () => undefined,
) {
  return defineCommand({
    name: 'testCommand',
    input: z.object({ name: z.string().min(1) }),
    errors: errors as [typeof ValidationError],
    load: async () => ({}),
    decide: ({ input }) => {
      reject();
      const boardId = randomUUID();
      return [
        {
          aggregate: 'board',
          id: boardId,
          events: [{ type: 'BoardCreated', data: { boardId, name: input.name, ownerId: 'u' } }],
        },
      ];
    },
    succeed: (commit) => ({ position: commit.position }),
  });
}

describe('handleCommand', () => {
  it('returns invalid input and listed rejections as values', async () => {
    const rt = runtime();
    const invalid = await handleCommand(rt, boardCommand([ValidationError]), null, { name: '' });
    expect(invalid).toMatchObject({ ok: false, error: { field: 'input.name' } });
    const spec = boardCommand([ValidationError, NotFoundError], () => {
      throw new NotFoundError('b', 'Board');
    });
    const rejected = await handleCommand(rt, spec, null, { name: 'x' });
    expect(rejected.ok).toBe(false);
    if (!rejected.ok) expect(rejected.error).toBeInstanceOf(NotFoundError);
    expect(await rt.store.headPosition()).toBe(0);
  });

  it('rejects a domain error its spec does not list: that would be a bug', async () => {
    const spec = boardCommand([ValidationError], () => {
      throw new NotFoundError('b', 'Board');
    });
    await expect(handleCommand(runtime(), spec, null, { name: 'x' })).rejects.toThrow(
      NotFoundError,
    );
  });

  it('reports exhausted retries as a conflict only when the spec lists VersionConflictError', async () => {
    const store = new MemoryEventStore();
    const losing: EventStore = Object.assign(Object.create(store) as EventStore, {
      append: () => Promise.reject(new VersionConflict('board-b', 0, 1)),
      readStream: store.readStream.bind(store),
    });
    const rt = { ...runtime(store), store: losing };
    const listed = await handleCommand(
      rt,
      boardCommand([ValidationError, VersionConflictError]),
      null,
      { name: 'x' },
    );
    expect(listed.ok).toBe(false);
    if (!listed.ok) expect(listed.error).toBeInstanceOf(VersionConflictError);
    await expect(
      handleCommand(rt, boardCommand([ValidationError]), null, { name: 'x' }),
    ).rejects.toThrow(RetriesExhaustedError);
  });
});
