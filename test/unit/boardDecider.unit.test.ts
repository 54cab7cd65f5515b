import { describe, expect, it } from 'vitest';
import { allowedRoles, BoardRole, membershipId, roleOf } from '../../src/boards/board/access.js';
import { decideBoard, type BoardCommand } from '../../src/boards/board/decide.js';
import {
  boardEventFields,
  parseBoardEvent,
  type BoardEvent,
} from '../../src/boards/board/events.js';
import { evolveBoard, type ActiveBoard } from '../../src/boards/board/state.js';
import type { Decision } from '../../src/boards/decision.js';
import {
  ForbiddenError,
  LastOwnerError,
  NotFoundError,
  ValidationError,
} from '../../src/boards/errors.js';
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
      given.access([]),
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
      {
        aggregate: 'membership',
        id: membershipId('b9', owner),
        events: [
          { type: 'MembershipGranted', data: { boardId: 'b9', userId: owner, role: 'OWNER' } },
        ],
      },
    ]);
    const board = given.board(...boardEventsOf(decision));
    expect(board).toMatchObject({
      status: 'active',
      ownerId: owner,
      members: [{ userId: owner, role: BoardRole.Owner }],
    });
  });

  it('lets the owner rename the board', () => {
    const decision = decideBoard(
      { type: 'RenameBoard', data: { actorId: owner, boardId, name: 'Plan' } },
      given.access(boardEvents()),
      contextWithIds(),
    );
    expect(boardEventsOf(decision)).toEqual([{ type: 'BoardRenamed', data: { name: 'Plan' } }]);
  });

  it('forbids a member who is not the owner to rename the board or add members', () => {
    const board = given.access(boardEvents());
    const rename: BoardCommand = {
      type: 'RenameBoard',
      data: { actorId: member, boardId, name: 'x' },
    };
    const add: BoardCommand = {
      type: 'AddMember',
      data: { actorId: member, boardId, username: 'zed', userId: 'u-zed', role: BoardRole.Editor },
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
        given.access(boardEvents()),
        contextWithIds(),
      ),
    );
    expect(error).toBeInstanceOf(NotFoundError);
    expect(error).toMatchObject({ id: boardId, resourceType: 'Board' });
  });

  it('adds a registered user as a member', () => {
    const decision = decideBoard(
      {
        type: 'AddMember',
        data: { actorId: owner, boardId, username: 'zed', userId: 'u-zed', role: BoardRole.Viewer },
      },
      given.access(boardEvents()),
      contextWithIds(),
    );
    expect(decision).toEqual([
      {
        aggregate: 'board',
        id: boardId,
        events: [{ type: 'MemberAdded', data: { userId: 'u-zed', role: BoardRole.Viewer } }],
      },
      {
        aggregate: 'membership',
        id: membershipId(boardId, 'u-zed'),
        events: [
          {
            type: 'MembershipGranted',
            data: { boardId, userId: 'u-zed', role: BoardRole.Viewer },
          },
        ],
      },
    ]);
  });

  it('refuses to add a username nobody holds, or a member twice', () => {
    const board = given.access(boardEvents());
    const unknown = thrown(() =>
      decideBoard(
        {
          type: 'AddMember',
          data: { actorId: owner, boardId, username: 'nobody', userId: null, role: 'EDITOR' },
        },
        board,
        contextWithIds(),
      ),
    );
    expect(unknown).toBeInstanceOf(ValidationError);
    expect(unknown).toMatchObject({ field: 'input.username' });
    const twice = thrown(() =>
      decideBoard(
        {
          type: 'AddMember',
          data: { actorId: owner, boardId, username: 'm', userId: member, role: 'EDITOR' },
        },
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
      given.access(boardEvents(['c1', 'a0'])),
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
      given.access(boardEvents(['c1', 'a0'], ['c3', 'a1'])),
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
        given.access(boardEvents(['c1', 'a0'])),
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
      given.access(before),
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
      given.access(before),
      contextWithIds(),
    );
    const board = given.board(...before, ...boardEventsOf(decision));
    expect((board as ActiveBoard).columns.map((c) => c.id)).toEqual(['c2', 'c3', 'c1']);
  });

  it('does not find a column that is not on the board, nor one on a board the caller is not a member of', () => {
    const board = given.access(boardEvents(['c1', 'a0']));
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
      given.access(before),
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
    expect(
      boardEventFields({ type: 'MemberAdded', data: { userId: 'u', role: 'EDITOR' } }),
    ).toEqual(['members', 'memberships', 'viewerRole']);
    expect(boardEventFields({ type: 'ColumnPlaced', data: { columnId: 'c', rank: 'a0' } })).toEqual(
      ['columns'],
    );
  });
});

describe('roles and the access policy', () => {
  const viewer = 'u-viewer';
  const withViewer = (): BoardEvent[] => [
    ...boardEvents(['c1', 'a0']),
    { type: 'MemberAdded', data: { userId: viewer, role: BoardRole.Viewer } },
  ];
  const setRole = (actorId: string, userId: string, role: BoardRole): BoardCommand => ({
    type: 'SetMemberRole',
    data: { actorId, boardId, userId, role },
  });
  const remove = (actorId: string, userId: string): BoardCommand => ({
    type: 'RemoveMember',
    data: { actorId, boardId, userId },
  });

  it('gives each role exactly the actions of the policy table', () => {
    expect(allowedRoles).toEqual({
      read: ['OWNER', 'EDITOR', 'VIEWER'],
      edit: ['OWNER', 'EDITOR'],
      manage: ['OWNER'],
      leave: ['OWNER', 'EDITOR', 'VIEWER'],
      restore: ['OWNER'],
    });
  });

  it('forbids a viewer every write, and an editor what only owners do', () => {
    const access = given.access(withViewer());
    const addColumn: BoardCommand = {
      type: 'AddColumn',
      data: { actorId: viewer, boardId, name: 'x', wipLimit: null },
    };
    const moveColumn: BoardCommand = {
      type: 'MoveColumn',
      data: { actorId: viewer, columnId: 'c1' },
    };
    for (const command of [addColumn, moveColumn, setRole(viewer, member, 'VIEWER')]) {
      expect(thrown(() => decideBoard(command, access, contextWithIds('c9')))).toBeInstanceOf(
        ForbiddenError,
      );
    }
    expect(
      thrown(() => decideBoard(setRole(member, viewer, 'EDITOR'), access, contextWithIds())),
    ).toBeInstanceOf(ForbiddenError);
    expect(
      thrown(() => decideBoard(remove(member, viewer), access, contextWithIds())),
    ).toBeInstanceOf(ForbiddenError);
  });

  it('reads a member added before roles existed (no role in the event) as an editor', () => {
    const board = evolveBoard(
      given.board(...boardEvents().slice(0, 1)),
      parseBoardEvent({
        type: 'MemberAdded',
        data: { userId: 'u-old' },
      }),
    );
    expect(roleOf({ board, membership: { status: 'absent' } }, 'u-old')).toBe('EDITOR');
    expect(roleOf({ board, membership: { status: 'absent' } }, owner)).toBe('OWNER');
  });

  it("decides on the actor's membership stream over the board's list when it has one", () => {
    // The board as read still lists the member; their membership stream says they were removed.
    const ended = given.access(boardEvents(['c1', 'a0']), { status: 'ended' });
    const add: BoardCommand = {
      type: 'AddColumn',
      data: { actorId: member, boardId, name: 'x', wipLimit: null },
    };
    expect(thrown(() => decideBoard(add, ended, contextWithIds('c9')))).toMatchObject({
      id: boardId,
      resourceType: 'Board',
    });
    const demoted = given.access(boardEvents(['c1', 'a0']), { status: 'member', role: 'VIEWER' });
    expect(thrown(() => decideBoard(add, demoted, contextWithIds('c9')))).toBeInstanceOf(
      ForbiddenError,
    );
  });

  it('changes a role on the board and on the member stream in one decision', () => {
    const decision = decideBoard(
      setRole(owner, viewer, BoardRole.Editor),
      given.access(withViewer()),
      contextWithIds(),
    );
    expect(decision).toEqual([
      {
        aggregate: 'board',
        id: boardId,
        events: [{ type: 'MemberRoleChanged', data: { userId: viewer, role: 'EDITOR' } }],
      },
      {
        aggregate: 'membership',
        id: membershipId(boardId, viewer),
        events: [{ type: 'MembershipGranted', data: { boardId, userId: viewer, role: 'EDITOR' } }],
      },
    ]);
  });

  it('lets an owner remove anyone and any member leave, ending their membership', () => {
    const access = given.access(withViewer());
    for (const [actor, target] of [
      [owner, member],
      [viewer, viewer],
      [member, member],
    ] as const) {
      const decision = decideBoard(remove(actor, target), access, contextWithIds());
      expect(decision).toEqual([
        {
          aggregate: 'board',
          id: boardId,
          events: [{ type: 'MemberRemoved', data: { userId: target } }],
        },
        {
          aggregate: 'membership',
          id: membershipId(boardId, target),
          events: [{ type: 'MembershipEnded', data: { boardId, userId: target } }],
        },
      ]);
      const after = given.board(...withViewer(), ...boardEventsOf(decision));
      expect(roleOf({ board: after, membership: { status: 'absent' } }, target)).toBeNull();
    }
  });

  it('never removes or demotes the last owner, and does once there is another', () => {
    const access = given.access(withViewer());
    for (const command of [remove(owner, owner), setRole(owner, owner, 'EDITOR')]) {
      const error = thrown(() => decideBoard(command, access, contextWithIds()));
      expect(error).toBeInstanceOf(LastOwnerError);
      expect(error).toMatchObject({ boardId });
    }
    const twoOwners = given.access([
      ...withViewer(),
      { type: 'MemberRoleChanged', data: { userId: member, role: 'OWNER' } },
    ]);
    expect(decideBoard(remove(owner, owner), twoOwners, contextWithIds())).toHaveLength(2);
    expect(decideBoard(setRole(member, owner, 'VIEWER'), twoOwners, contextWithIds())).toHaveLength(
      2,
    );
  });

  it('refuses a role change to the same role, and a non-member as the target', () => {
    const access = given.access(withViewer());
    expect(
      thrown(() => decideBoard(setRole(owner, viewer, 'VIEWER'), access, contextWithIds())),
    ).toMatchObject({ field: 'input.role' });
    expect(
      thrown(() => decideBoard(remove(owner, stranger), access, contextWithIds())),
    ).toMatchObject({ field: 'input.userId' });
    expect(
      thrown(() => decideBoard(remove(stranger, stranger), access, contextWithIds())),
    ).toBeInstanceOf(NotFoundError);
  });
});
