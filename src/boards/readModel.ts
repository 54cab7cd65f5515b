import type { ReadDoc } from '../projector/types.js';

/** Names of the read collections the board projections write and queries read. */
export const ReadCollection = {
  Users: 'users',
  Boards: 'boards',
  Columns: 'columns',
  Cards: 'cards',
} as const;

/** A user as queries see it; found by token hash for authentication. */
export interface UserDoc extends ReadDoc {
  username: string;
  /** NFKC + lowercase form, for lookups by username. */
  usernameKey: string;
  displayName: string;
  tokenHash: string;
  version: number;
  createdAt: Date;
}

export interface BoardDoc extends ReadDoc {
  name: string;
  ownerId: string;
  /** Member user ids, owner first. */
  members: string[];
  /** Columns in board order (ascending rank). */
  columns: { id: string; rank: string }[];
  version: number;
  createdAt: Date;
  updatedAt: Date;
}

export interface ColumnDoc extends ReadDoc {
  boardId: string;
  name: string;
  wipLimit: number | null;
  /** Live cards. */
  cardCount: number;
  version: number;
  createdAt: Date;
  updatedAt: Date;
}

export interface CardDoc extends ReadDoc {
  boardId: string;
  columnId: string;
  title: string;
  description: string;
  assigneeId: string | null;
  labels: string[];
  done: boolean;
  archived: boolean;
  rank: string;
  version: number;
  createdAt: Date;
  updatedAt: Date;
}
