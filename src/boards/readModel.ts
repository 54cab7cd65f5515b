import type { ReadDoc, ReadIndexes } from '../projector/types.js';
import type { SessionMethod } from './session/events.js';

/** Names of the read collections the board projections write and queries read. */
export const ReadCollection = {
  Users: 'users',
  Boards: 'boards',
  Columns: 'columns',
  Cards: 'cards',
  Sessions: 'sessions',
} as const;

/**
 * Secondary indexes of the board read models: one per query shape in src/boards/reads.ts
 * (MongoDB builds them; the memory store keeps a hash index on each one's first key).
 * A sorted query's index ends with the sort AND the `_id` tie-breaker the adapter adds to
 * every sort (`translateSort`): equality fields, then `{ field: direction, _id: 1 }`, so the
 * server walks the index in order instead of sorting in memory (which fails past 100 MB).
 */
export const boardReadModelIndexes: ReadIndexes = {
  [ReadCollection.Users]: [{ key: { tokenHash: 1 } }, { key: { usernameKey: 1 } }],
  [ReadCollection.Boards]: [{ key: { members: 1, createdAt: -1, _id: 1 } }],
  [ReadCollection.Cards]: [{ key: { boardId: 1, archived: 1, rank: 1, _id: 1 } }],
  [ReadCollection.Sessions]: [
    { key: { tokenHash: 1 } },
    { key: { userId: 1, endedAt: 1, startedAt: -1, _id: 1 } },
  ],
};

export type { BoardDoc } from './board/readModel.js';
export type { CardDoc } from './card/readModel.js';
export type { ColumnDoc } from './column/readModel.js';
export type { UserDoc } from './user/readModel.js';

/** A session of the built-in issuer; found by token hash for authentication. */
export interface SessionDoc extends ReadDoc {
  userId: string;
  tokenHash: string;
  method: SessionMethod;
  startedAt: Date;
  /** Its expiry is this plus `SESSION_TTL` (sliding). */
  lastActiveAt: Date;
  /** When it was signed out or revoked; null while it lasts. */
  endedAt: Date | null;
  version: number;
}
