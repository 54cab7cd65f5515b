import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { BoardRole } from '../../src/boards/board/access.js';
import { BoardAccessView } from '../../src/boards/board/accessView.js';
import type { CommandResult } from '../../src/boards/commandHandling/results.js';
import { createBoardCommands } from '../../src/boards/commands.js';
import type { DomainError } from '../../src/boards/errors.js';
import { MemoryEventStore } from '../../src/eventstore/memory/MemoryEventStore.js';
import { NO_STREAM, type EventStore, type ReadStreamOptions } from '../../src/eventstore/types.js';
import type { ChangeLogEntry } from '../../src/projector/types.js';

function ok<S>(result: CommandResult<S, DomainError>): S {
  if (!result.ok) throw new Error(`expected success, got ${result.error.name}`);
  return result.value;
}

/**
 * A board with an owner and an editor, its commands appending through `commandStore`
 * (the view's observed store, or the raw one: another process's commands).
 */
async function boardWithEditor(
  store: EventStore,
  commandStore: EventStore = store,
): Promise<{
  boardId: string;
  owner: string;
  editor: string;
  version: number;
  commands: ReturnType<typeof createBoardCommands>;
}> {
  const commands = createBoardCommands({
    store: commandStore,
    now: () => new Date(),
    newId: randomUUID,
  });
  const register = async (name: string) =>
    ok(await commands.registerUser(null, { username: name, displayName: name })).user.id;
  const owner = await register(`o${randomUUID().slice(0, 8)}`);
  const editorName = `e${randomUUID().slice(0, 8)}`;
  const editor = await register(editorName);
  const created = ok(await commands.createBoard(owner, { name: 'Plan' }));
  const added = ok(
    await commands.addMember(owner, {
      boardId: created.board.id,
      username: editorName,
      expectedVersion: created.board.version,
    }),
  );
  return { boardId: created.board.id, owner, editor, version: added.board.version, commands };
}

const membersChanged = (boardId: string): ChangeLogEntry =>
  ({
    cursor: 1,
    scopes: [boardId],
    operation: 'removeMember',
    actor: null,
    at: new Date(),
    invalidated: [{ typename: 'Board', id: boardId, fields: ['members'], version: 9 }],
  }) as unknown as ChangeLogEntry;

describe('BoardAccessView', () => {
  it('answers roles from the event store, then from its cache without reading again', async () => {
    const store = new MemoryEventStore();
    const view = new BoardAccessView(store);
    const { boardId, owner, editor } = await boardWithEditor(store, view.observe(store));
    expect(await view.roleOf(boardId, owner)).toBe(BoardRole.Owner);
    expect(await view.roleOf(boardId, editor)).toBe(BoardRole.Editor);
    expect(await view.roleOf(boardId, 'nobody')).toBeNull();
    expect(await view.roleOf('no-such-board', owner)).toBeNull();
    const reads = view.storeReads;
    // Cached answers come at once, not as a promise, and read nothing.
    expect(view.roleOf(boardId, editor)).toBe(BoardRole.Editor);
    expect(view.roleOf(boardId, 'nobody')).toBeNull();
    expect(view.storeReads).toBe(reads);
  });

  it("drops a board's answers when this process's append changes its members, before the append returns", async () => {
    const store = new MemoryEventStore();
    const view = new BoardAccessView(store);
    const { boardId, owner, editor, version, commands } = await boardWithEditor(
      store,
      view.observe(store),
    );
    expect(await view.roleOf(boardId, editor)).toBe(BoardRole.Editor);
    const demoted = ok(
      await commands.setMemberRole(owner, {
        boardId,
        userId: editor,
        role: BoardRole.Viewer,
        expectedVersion: version,
      }),
    );
    expect(await view.roleOf(boardId, editor)).toBe(BoardRole.Viewer);
    ok(
      await commands.removeMember(owner, {
        boardId,
        userId: editor,
        expectedVersion: demoted.board.version,
      }),
    );
    expect(await view.roleOf(boardId, editor)).toBeNull();
  });

  it("drops a board's answers on a change log entry naming its members (another process's change)", async () => {
    const store = new MemoryEventStore();
    const view = new BoardAccessView(store);
    // The commands append to the store directly, as another process would.
    const { boardId, owner, editor, version, commands } = await boardWithEditor(store);
    expect(await view.roleOf(boardId, editor)).toBe(BoardRole.Editor);
    ok(await commands.removeMember(owner, { boardId, userId: editor, expectedVersion: version }));
    view.changed(membersChanged('another-board'));
    expect(await view.roleOf(boardId, editor)).toBe(BoardRole.Editor);
    view.changed(membersChanged(boardId));
    expect(await view.roleOf(boardId, editor)).toBeNull();
  });

  it('does not keep what a read in flight during a removal read: the next read goes to the store', async () => {
    const store = new MemoryEventStore();
    let hold: Promise<void> | null = null;
    // The view's reads wait on `hold` after reading, so a removal commits meanwhile.
    const slowStore = new Proxy(store, {
      get(target, property, receiver) {
        if (property === 'readStream') {
          return async (stream: string, options?: ReadStreamOptions) => {
            const events = await target.readStream(stream, options);
            if (hold) await hold;
            return events;
          };
        }
        const value: unknown = Reflect.get(target, property, receiver);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const view = new BoardAccessView(slowStore);
    const { boardId, owner, editor, version, commands } = await boardWithEditor(
      store,
      view.observe(store),
    );
    let release!: () => void;
    hold = new Promise((resolve) => (release = resolve));
    const inFlight = view.roleOf(boardId, editor);
    // Let the read reach the store before the removal commits.
    await new Promise((resolve) => setTimeout(resolve, 20));
    ok(await commands.removeMember(owner, { boardId, userId: editor, expectedVersion: version }));
    hold = null;
    release();
    // It started before the removal returned: it may answer as of before it...
    expect(await inFlight).toBe(BoardRole.Editor);
    // ...but a read that starts after it reads the store again.
    expect(await view.roleOf(boardId, editor)).toBeNull();
  });

  it('takes the role of a member of a board older than membership streams from the board stream', async () => {
    const store = new MemoryEventStore();
    const view = new BoardAccessView(store);
    await store.append({
      streams: [
        {
          stream: 'board-legacy',
          expected: NO_STREAM,
          events: [
            { type: 'BoardCreated', data: { boardId: 'legacy', name: 'Old', ownerId: 'u1' } },
            // Schema version 1: no role; members were all editors then.
            { type: 'MemberAdded', data: { userId: 'u2' }, schemaVersion: 1 },
          ],
        },
      ],
    });
    expect(await view.roleOf('legacy', 'u1')).toBe(BoardRole.Owner);
    expect(await view.roleOf('legacy', 'u2')).toBe(BoardRole.Editor);
    expect(await view.roleOf('legacy', 'u3')).toBeNull();
  });
});
