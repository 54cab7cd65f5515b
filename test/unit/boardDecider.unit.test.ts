import { describe, expect, it } from 'vitest';
import { decideBoard, type BoardCommand } from '../../src/boards/board/decide.js';
import { boardEventFields } from '../../src/boards/board/events.js';
import type { ActiveBoard } from '../../src/boards/board/state.js';
import type { Decision } from '../../src/boards/decision.js';
import { ForbiddenError, NotFoundError, ValidationError } from '../../src/boards/errors.js';
import {
  boardEvents,
  boardId,
  contextWithIds,
  crowdedRanks,
  eventsOf,
  given,
  member,
  owner,
  stranger,
  thrown,
} from './deciderTestKit.js';

const boardEventsOf = (decision: Decision) => eventsOf(decision, 'board');

describe('decideBoard', () => {
  it('creates a board owned by its creator, who becomes its first member', () => {
    const decision = decideBoard(
      { type: 'CreateBoard', data: { actorId: owner, name: 'Roadmap' } },
      given.board(),
      contextWithIds('b9'),
    );
    expect(decision).toEqual([
      {
        aggregate: 'board',
        id: 'b9',
        events: [
          { type: 'BoardCreated', data: { boardId: 'b9', name: 'Roadmap', ownerId: owner } },
        ],
      },
    ]);
    const board = given.board(...boardEventsOf(decision));
    expect(board).toMatchObject({ status: 'active', ownerId: owner, memberIds: [owner] });
  });

  it('lets the owner rename the board', () => {
    const decision = decideBoard(
      { type: 'RenameBoard', data: { actorId: owner, boardId, name: 'Plan' } },
      given.board(...boardEvents()),
      contextWithIds(),
    );
    expect(boardEventsOf(decision)).toEqual([{ type: 'BoardRenamed', data: { name: 'Plan' } }]);
  });

  it('forbids a member who is not the owner to rename the board or add members', () => {
    const board = given.board(...boardEvents());
    const rename: BoardCommand = {
      type: 'RenameBoard',
      data: { actorId: member, boardId, name: 'x' },
    };
    const add: BoardCommand = {
      type: 'AddMember',
      data: { actorId: member, boardId, username: 'zed', userId: 'u-zed' },
    };
    expect(thrown(() => decideBoard(rename, board, contextWithIds()))).toBeInstanceOf(
      ForbiddenError,
    );
    expect(thrown(() => decideBoard(add, board, contextWithIds()))).toBeInstanceOf(ForbiddenError);
  });

  it('answers a non-member as if the board did not exist', () => {
    const error = thrown(() =>
      decideBoard(
        { type: 'RenameBoard', data: { actorId: stranger, boardId, name: 'x' } },
        given.board(...boardEvents()),
        contextWithIds(),
      ),
    );
    expect(error).toBeInstanceOf(NotFoundError);
    expect(error).toMatchObject({ id: boardId, resourceType: 'Board' });
  });

  it('adds a registered user as a member', () => {
    const decision = decideBoard(
      { type: 'AddMember', data: { actorId: owner, boardId, username: 'zed', userId: 'u-zed' } },
      given.board(...boardEvents()),
      contextWithIds(),
    );
    expect(boardEventsOf(decision)).toEqual([{ type: 'MemberAdded', data: { userId: 'u-zed' } }]);
  });

  it('refuses to add a username nobody holds, or a member twice', () => {
    const board = given.board(...boardEvents());
    const unknown = thrown(() =>
      decideBoard(
        { type: 'AddMember', data: { actorId: owner, boardId, username: 'nobody', userId: null } },
        board,
        contextWithIds(),
      ),
    );
    expect(unknown).toBeInstanceOf(ValidationError);
    expect(unknown).toMatchObject({ field: 'input.username' });
    const twice = thrown(() =>
      decideBoard(
        { type: 'AddMember', data: { actorId: owner, boardId, username: 'm', userId: member } },
        board,
        contextWithIds(),
      ),
    );
    expect(twice).toMatchObject({ field: 'input.username' });
  });

  it('adds a column at the end of the board by default, creating the column stream', () => {
    const decision = decideBoard(
      {
        type: 'AddColumn',
        data: { actorId: member, boardId, name: 'Done', wipLimit: 3 },
      },
      given.board(...boardEvents(['c1', 'a0'])),
      contextWithIds('c2'),
    );
    expect(decision).toEqual([
      {
        aggregate: 'board',
        id: boardId,
        events: [{ type: 'ColumnPlaced', data: { columnId: 'c2', rank: 'a1' } }],
      },
      {
        aggregate: 'column',
        id: 'c2',
        events: [
          { type: 'ColumnCreated', data: { columnId: 'c2', boardId, name: 'Done', wipLimit: 3 } },
        ],
      },
    ]);
  });

  it('adds a column right after the named column', () => {
    const decision = decideBoard(
      {
        type: 'AddColumn',
        data: { actorId: member, boardId, name: 'Doing', wipLimit: null, afterColumnId: 'c1' },
      },
      given.board(...boardEvents(['c1', 'a0'], ['c3', 'a1'])),
      contextWithIds('c2'),
    );
    const board = given.board(
      ...boardEvents(['c1', 'a0'], ['c3', 'a1']),
      ...boardEventsOf(decision),
    );
    expect((board as ActiveBoard).columns.map((c) => c.id)).toEqual(['c1', 'c2', 'c3']);
  });

  it('rejects placing a column after one that is not on the board', () => {
    const error = thrown(() =>
      decideBoard(
        {
          type: 'AddColumn',
          data: { actorId: member, boardId, name: 'x', wipLimit: null, afterColumnId: 'nope' },
        },
        given.board(...boardEvents(['c1', 'a0'])),
        contextWithIds('c2'),
      ),
    );
    expect(error).toBeInstanceOf(ValidationError);
    expect(error).toMatchObject({ field: 'input.afterColumnId' });
  });

  it('moves a column before the first one', () => {
    const before = boardEvents(['c1', 'a0'], ['c2', 'a1'], ['c3', 'a2']);
    const decision = decideBoard(
      { type: 'MoveColumn', data: { actorId: member, columnId: 'c3', beforeColumnId: 'c1' } },
      given.board(...before),
      contextWithIds(),
    );
    expect(decision).toHaveLength(1);
    const board = given.board(...before, ...boardEventsOf(decision));
    expect((board as ActiveBoard).columns.map((c) => c.id)).toEqual(['c3', 'c1', 'c2']);
  });

  it('moves a column to the end when no neighbour is named', () => {
    const before = boardEvents(['c1', 'a0'], ['c2', 'a1'], ['c3', 'a2']);
    const decision = decideBoard(
      { type: 'MoveColumn', data: { actorId: member, columnId: 'c1' } },
      given.board(...before),
      contextWithIds(),
    );
    const board = given.board(...before, ...boardEventsOf(decision));
    expect((board as ActiveBoard).columns.map((c) => c.id)).toEqual(['c2', 'c3', 'c1']);
  });

  it('does not find a column that is not on the board, nor one on a board the caller is not a member of', () => {
    const board = given.board(...boardEvents(['c1', 'a0']));
    expect(
      thrown(() =>
        decideBoard(
          { type: 'MoveColumn', data: { actorId: member, columnId: 'c9' } },
          board,
          contextWithIds(),
        ),
      ),
    ).toMatchObject({ id: 'c9', resourceType: 'Column' });
    expect(
      thrown(() =>
        decideBoard(
          { type: 'MoveColumn', data: { actorId: stranger, columnId: 'c1' } },
          board,
          contextWithIds(),
        ),
      ),
    ).toMatchObject({ id: 'c1', resourceType: 'Column' });
  });

  it('rebalances the column ranks when a new key would grow past 50 characters', () => {
    const { low, high } = crowdedRanks();
    const before = boardEvents(['c1', low], ['c2', high]);
    const decision = decideBoard(
      {
        type: 'AddColumn',
        data: { actorId: member, boardId, name: 'x', wipLimit: null, afterColumnId: 'c1' },
      },
      given.board(...before),
      contextWithIds('c3'),
    );
    const events = boardEventsOf(decision);
    expect(events.map((e) => e.type)).toEqual(['ColumnsRebalanced', 'ColumnPlaced']);
    const board = given.board(...before, ...events) as ActiveBoard;
    expect(board.columns.map((c) => c.id)).toEqual(['c1', 'c3', 'c2']);
    expect(Math.max(...board.columns.map((c) => c.rank.length))).toBeLessThanOrEqual(3);
  });
});

describe('board event fields', () => {
  it('names the Board fields each event touches', () => {
    expect(boardEventFields({ type: 'BoardRenamed', data: { name: 'x' } })).toEqual(['name']);
    expect(boardEventFields({ type: 'MemberAdded', data: { userId: 'u' } })).toEqual(['members']);
    expect(boardEventFields({ type: 'ColumnPlaced', data: { columnId: 'c', rank: 'a0' } })).toEqual(
      ['columns'],
    );
  });
});
