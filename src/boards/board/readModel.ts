import type { ReadDoc } from '../../projector/types.js';
import type { DocStamps } from '../docStamps.js';
import type { ActiveBoard, BoardState } from './state.js';

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
  return { status: 'active', boardId: _id, memberIds: members, ...data };
}
