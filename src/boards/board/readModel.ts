import type { ReadDoc } from '../../projector/types.js';
import { defineReadModel, docType } from '../../projector/readModel.js';
import { invalidationOf } from '../aggregates.js';
import { stampsAfter, type DocStamps } from '../docStamps.js';
import { boardEventSchemaVersions, parseBoardEvent } from './events.js';
import type { BoardRole } from './access.js';
import { evolveBoard, type ActiveBoard, type BoardState } from './state.js';

/** A member as the board's document holds them: since when (the commit that added them). */
export interface MembershipDoc {
  userId: string;
  role: BoardRole;
  since: Date;
}

/** A board as queries see it: its state, members with roles, columns in board order. */
export type BoardDoc = ReadDoc &
  Omit<ActiveBoard, 'status' | 'boardId' | 'members' | 'columns'> & {
    /** Member user ids in the order they joined (what `boards` finds a member's boards by). */
    members: string[];
    /** The members with their roles, in the same order. */
    memberships: MembershipDoc[];
    /** Columns in board order (ascending rank). */
    columns: { id: string; rank: string }[];
  } & DocStamps;

/**
 * The board's read document: the one place a board's state becomes its document. A member
 * already in `previous` keeps their `since`; a new one is a member since `stamps.updatedAt`.
 */
export function toBoardDoc(
  state: ActiveBoard,
  stamps: DocStamps,
  previous: BoardDoc | null = null,
): BoardDoc {
  const { status: _s, boardId, members, columns, ...data } = state;
  const since = new Map(previous?.memberships.map((m) => [m.userId, m.since]));
  return {
    _id: boardId,
    ...data,
    members: members.map((m) => m.userId),
    memberships: members.map(({ userId, role }) => ({
      userId,
      role,
      since: since.get(userId) ?? stamps.updatedAt,
    })),
    columns: columns.map(({ id, rank }) => ({ id, rank })),
    ...stamps,
  };
}

/** The state a board's read document was made from (`toBoardDoc`'s inverse). */
export function boardStateOf(doc: BoardDoc | null): BoardState {
  if (!doc) return { status: 'absent' };
  const {
    _id,
    _applied,
    members: _m,
    memberships,
    version: _v,
    createdAt: _c,
    updatedAt: _u,
    ...data
  } = doc;
  const members = memberships.map(({ userId, role }) => ({ userId, role }));
  // Documents written before boards could be archived lack the field.
  return { status: 'active', boardId: _id, members, ...data, archived: doc.archived === true };
}

/** The board's document after one more event of its stream, committed at `at`. */
export function nextBoardDoc(
  doc: BoardDoc | null,
  stored: { type: string; data: Record<string, unknown>; version: number; stream: string },
  at: Date,
): BoardDoc {
  const board = evolveBoard(boardStateOf(doc), parseBoardEvent(stored));
  if (board.status === 'absent') {
    throw new Error(`${stored.stream}: ${stored.type} before BoardCreated`);
  }
  return toBoardDoc(board, stampsAfter(doc, stored.version, at), doc);
}

/** Boards: name, members and column order. */
export const boardReadModel = defineReadModel({
  name: 'boards',
  collection: 'boards',
  doc: docType<BoardDoc>(),
  indexes: [{ key: { members: 1, createdAt: -1, _id: 1 } }],
  queries: {
    /** Boards a user is a member of, newest first. */
    ofMember: { filter: (userId: string) => ({ members: userId }), sort: ['createdAt', -1] },
  },
  projection: {
    handles: Object.keys(boardEventSchemaVersions),
    // Members of the board may read all of it: subscribers get it with the change.
    carriesDocuments: true,
    async apply({ commit, update, invalidate }) {
      for (const stored of commit.events) {
        if (!Object.hasOwn(boardEventSchemaVersions, stored.type)) continue;
        const invalidation = invalidationOf(stored);
        const boardId = invalidation.id;
        await update<BoardDoc>(boardReadModel.collection, boardId, stored, (doc) =>
          nextBoardDoc(doc, stored, commit.occurredAt),
        );
        invalidate(boardId, invalidation);
      }
    },
  },
});
