import { describe, expect, it } from 'vitest';
import { foldEvents } from '../../src/boards/aggregates.js';
import { BoardRole, membershipId, roleOf } from '../../src/boards/board/access.js';
import {
  decideBoard,
  MAX_BOARD_MEMBERS,
  type BoardCommand,
} from '../../src/boards/board/decide.js';
import type { BoardEvent } from '../../src/boards/board/events.js';
import { decideCard } from '../../src/boards/card/decide.js';
import { decideColumn } from '../../src/boards/column/decide.js';
import {
  BoardArchivedError,
  ForbiddenError,
  NotFoundError,
  ValidationError,
} from '../../src/boards/errors.js';
import {
  boardEvents,
  boardId,
  cardCreated,
  columnEvents,
  contextWithIds,
  eventsOf,
  given,
  member,
  owner,
  stranger,
  thrown,
} from './deciderTestKit.js';

const archived: BoardEvent = { type: 'BoardArchived', data: { boardId } };
const archive = (actorId: string): BoardCommand => ({
  type: 'ArchiveBoard',
  data: { actorId, boardId },
});
const restore = (actorId: string): BoardCommand => ({
  type: 'RestoreBoard',
  data: { actorId, boardId },
});

describe('archiving and restoring a board', () => {
  it('lets the owner archive the board, and restore it', () => {
    const live = given.board(...boardEvents(['c1', 'a0']));
    const archiving = decideBoard(
      archive(owner),
      { board: live, membership: { status: 'absent' } },
      contextWithIds(),
    );
    expect(eventsOf(archiving, 'board')).toEqual([archived]);
    // The same decision writes each member's membership stream (at whatever version it is
    // at), so that their writes decided on the live board cannot commit after it.
    expect(archiving.filter((c) => c.aggregate === 'membership')).toEqual(
      [owner, member].map((userId) => ({
        aggregate: 'membership',
        id: membershipId(boardId, userId),
        events: [{ type: 'BoardArchivedForMember', data: { boardId, userId } }],
        atAnyVersion: true,
      })),
    );
    const board = given.board(...boardEvents(['c1', 'a0']), ...eventsOf(archiving, 'board'));
    expect(board).toMatchObject({ archived: true, columns: [{ id: 'c1' }] });
    const restoring = decideBoard(
      restore(owner),
      { board: board, membership: { status: 'absent' } },
      contextWithIds(),
    );
    expect(eventsOf(restoring, 'board')).toEqual([{ type: 'BoardRestored', data: { boardId } }]);
    expect(restoring.filter((c) => c.aggregate === 'membership')).toEqual(
      [owner, member].map((userId) => ({
        aggregate: 'membership',
        id: membershipId(boardId, userId),
        events: [{ type: 'BoardRestoredForMember', data: { boardId, userId } }],
        atAnyVersion: true,
      })),
    );
    expect(given.board(...boardEvents(), archived, ...eventsOf(restoring, 'board'))).toMatchObject({
      archived: false,
    });
  });

  it('forbids members who are not the owner to archive or restore, and hides the board from strangers', () => {
    const live = given.board(...boardEvents());
    const gone = given.board(...boardEvents(), archived);
    expect(
      thrown(() =>
        decideBoard(
          archive(member),
          { board: live, membership: { status: 'absent' } },
          contextWithIds(),
        ),
      ),
    ).toBeInstanceOf(ForbiddenError);
    expect(
      thrown(() =>
        decideBoard(
          restore(member),
          { board: gone, membership: { status: 'absent' } },
          contextWithIds(),
        ),
      ),
    ).toBeInstanceOf(ForbiddenError);
    expect(
      thrown(() =>
        decideBoard(
          archive(stranger),
          { board: live, membership: { status: 'absent' } },
          contextWithIds(),
        ),
      ),
    ).toBeInstanceOf(NotFoundError);
    expect(
      thrown(() =>
        decideBoard(
          restore(stranger),
          { board: gone, membership: { status: 'absent' } },
          contextWithIds(),
        ),
      ),
    ).toBeInstanceOf(NotFoundError);
  });

  it("keeps each member's role through the archive's and restore's membership events, and marks their stream archived in between", () => {
    const fence = { type: 'BoardArchivedForMember', data: { boardId, userId: member } };
    const unfence = { type: 'BoardRestoredForMember', data: { boardId, userId: member } };
    const granted = {
      type: 'MembershipGranted',
      data: { boardId, userId: member, role: BoardRole.Viewer },
    };
    expect(foldEvents('membership', [granted, fence])).toEqual({
      status: 'member',
      role: BoardRole.Viewer,
      boardArchived: true,
    });
    expect(foldEvents('membership', [granted, fence, unfence])).toEqual(
      foldEvents('membership', [granted]),
    );
    // A member of a board older than membership streams: their role is still the board's.
    const legacy = foldEvents('membership', [fence]);
    expect(legacy).toEqual({ status: 'absent', boardArchived: true });
    const board = given.board(...boardEvents(), archived);
    expect(roleOf({ board, membership: legacy }, member)).toBe(BoardRole.Editor);
  });

  it('refuses a write whose membership stream says archived although the board it read is live (read before the archive committed, the stream after)', () => {
    const live = given.board(...boardEvents(['c1', 'a0']));
    const fenced = foldEvents('membership', [
      { type: 'MembershipGranted', data: { boardId, userId: member, role: BoardRole.Editor } },
      { type: 'BoardArchivedForMember', data: { boardId, userId: member } },
    ]);
    const adding: BoardCommand = {
      type: 'AddColumn',
      data: { actorId: member, boardId, name: 'Late', wipLimit: null },
    };
    expect(
      thrown(() => decideBoard(adding, { board: live, membership: fenced }, contextWithIds('c2'))),
    ).toBeInstanceOf(BoardArchivedError);
  });

  it('refuses to archive a board with more members than one commit can fence, and lets one at the limit be archived', () => {
    const crowd = (n: number): BoardEvent[] =>
      Array.from({ length: n }, (_, i) => ({
        type: 'MemberAdded',
        data: { userId: `u-${i}`, role: BoardRole.Viewer },
      }));
    // The creator and the member of boardEvents() are two.
    const full = given.board(...boardEvents(), ...crowd(MAX_BOARD_MEMBERS - 2));
    const fits = decideBoard(
      archive(owner),
      { board: full, membership: { status: 'absent' } },
      contextWithIds(),
    );
    expect(fits.reduce((n, c) => n + c.events.length, 0)).toBe(MAX_BOARD_MEMBERS + 1);
    const over = given.board(...boardEvents(), ...crowd(MAX_BOARD_MEMBERS - 1));
    const error = thrown(() =>
      decideBoard(
        archive(owner),
        { board: over, membership: { status: 'absent' } },
        contextWithIds(),
      ),
    );
    expect(error).toBeInstanceOf(ValidationError);
    expect(error).toMatchObject({ field: 'input.boardId' });
  });

  it('refuses to archive an archived board and to restore a live one', () => {
    const gone = given.board(...boardEvents(), archived);
    expect(
      thrown(() =>
        decideBoard(
          archive(owner),
          { board: gone, membership: { status: 'absent' } },
          contextWithIds(),
        ),
      ),
    ).toBeInstanceOf(BoardArchivedError);
    const error = thrown(() =>
      decideBoard(restore(owner), given.access(boardEvents()), contextWithIds()),
    );
    expect(error).toBeInstanceOf(ValidationError);
    expect(error).toMatchObject({ field: 'input.boardId' });
  });

  it('answers BoardArchivedError to every write on an archived board, its columns and its cards', () => {
    const { board, membership } = given.access([...boardEvents(['c1', 'a0']), archived]);
    const access = { board, membership };
    const column = given.column(...columnEvents('c1', null, ['k1', 'a0']));
    const card = given.card(cardCreated('k1', 'c1', 'a0'));
    const columns = new Map([['c1', column]]);
    const writes: (() => unknown)[] = [
      () =>
        decideBoard(
          { type: 'RenameBoard', data: { actorId: owner, boardId, name: 'x' } },
          access,
          contextWithIds(),
        ),
      () =>
        decideBoard(
          {
            type: 'AddMember',
            data: { actorId: owner, boardId, username: 'z', userId: 'u-z', role: 'EDITOR' },
          },
          access,
          contextWithIds(),
        ),
      () =>
        decideBoard(
          { type: 'AddColumn', data: { actorId: member, boardId, name: 'x', wipLimit: null } },
          access,
          contextWithIds('c2'),
        ),
      () =>
        decideBoard(
          { type: 'MoveColumn', data: { actorId: member, columnId: 'c1' } },
          access,
          contextWithIds(),
        ),
      () =>
        decideColumn(
          {
            type: 'AddCard',
            data: { actorId: member, columnId: 'c1', title: 't', description: '' },
          },
          { column, board, membership },
          contextWithIds('k2'),
        ),
      () =>
        decideColumn(
          { type: 'SetWipLimit', data: { actorId: member, columnId: 'c1', wipLimit: 3 } },
          { column, board, membership },
          contextWithIds(),
        ),
      () =>
        decideCard(
          { type: 'EditCard', data: { actorId: member, cardId: 'k1', changes: { title: 'x' } } },
          { card, board, membership, columns },
          contextWithIds(),
        ),
      () =>
        decideCard(
          { type: 'MoveCard', data: { actorId: member, cardId: 'k1', toColumnId: 'c1' } },
          { card, board, membership, columns },
          contextWithIds(),
        ),
      () =>
        decideCard(
          { type: 'ArchiveCard', data: { actorId: member, cardId: 'k1' } },
          { card, board, membership, columns },
          contextWithIds(),
        ),
    ];
    for (const write of writes) expect(thrown(write)).toBeInstanceOf(BoardArchivedError);
    // A stranger still learns nothing: not found, not archived.
    expect(
      thrown(() =>
        decideCard(
          { type: 'EditCard', data: { actorId: stranger, cardId: 'k1', changes: { title: 'x' } } },
          { card, board, membership, columns },
          contextWithIds(),
        ),
      ),
    ).toBeInstanceOf(NotFoundError);
  });
});
