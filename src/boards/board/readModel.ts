import type { ReadDoc } from '../../projector/types.js';
import { defineReadModel, docType } from '../../projector/readModel.js';
import { invalidationOf } from '../aggregates.js';
import { stampsAfter, type DocStamps } from '../docStamps.js';
import { boardEventSchemaVersions, parseBoardEvent } from './events.js';
import { evolveBoard, type ActiveBoard, type BoardState } from './state.js';

/** A board as queries see it: its state, members as `members`, columns in board order. */
export type BoardDoc = ReadDoc &
  Omit<ActiveBoard, 'status' | 'boardId' | 'memberIds' | 'columns'> & {
    /** Member user ids, owner first. */
    members: string[];
    /** Columns in board order (ascending rank). */
    columns: { id: string; rank: string }[];
  } & DocStamps;

/** The board's read document: the one place a board's state becomes its document. */
export function toBoardDoc(state: ActiveBoard, stamps: DocStamps): BoardDoc {
  const { status: _s, boardId, memberIds, columns, ...data } = state;
  return {
    _id: boardId,
    ...data,
    members: [...memberIds],
    columns: columns.map(({ id, rank }) => ({ id, rank })),
    ...stamps,
  };
}

/** The state a board's read document was made from (`toBoardDoc`'s inverse). */
export function boardStateOf(doc: BoardDoc | null): BoardState {
  if (!doc) return { status: 'absent' };
  const { _id, _applied, members, version: _v, createdAt: _c, updatedAt: _u, ...data } = doc;
  // Documents written before boards could be archived lack the field.
  return {
    status: 'active',
    boardId: _id,
    memberIds: members,
    ...data,
    archived: doc.archived === true,
  };
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
        const event = parseBoardEvent(stored);
        const invalidation = invalidationOf(stored);
        const boardId = invalidation.id;
        await update<BoardDoc>(boardReadModel.collection, boardId, stored, (doc) => {
          const board = evolveBoard(boardStateOf(doc), event);
          if (board.status === 'absent') {
            throw new Error(`board ${boardId}: ${event.type} before BoardCreated`);
          }
          return toBoardDoc(board, stampsAfter(doc, stored.version, commit.occurredAt));
        });
        invalidate(boardId, invalidation);
      }
    },
  },
});
