import { castEvent, type SchemaVersions } from '../domainEvent.js';
import { unreachable } from '../unreachable.js';

/**
 * Events of a board stream (`board-<boardId>`). The board owns its members and the
 * order of its columns; the owner is a member from `BoardCreated` on.
 */
export type BoardEvent =
  | { type: 'BoardCreated'; data: { boardId: string; name: string; ownerId: string } }
  | { type: 'BoardRenamed'; data: { name: string } }
  | { type: 'MemberAdded'; data: { userId: string } }
  /** A column takes this rank among the board's columns (added or moved). */
  | { type: 'ColumnPlaced'; data: { columnId: string; rank: string } }
  /** Every listed column gets a new, shorter rank; the order does not change. */
  | { type: 'ColumnsRebalanced'; data: { ranks: Record<string, string> } }
  /** The column was archived: it leaves the board's column order. */
  | { type: 'ColumnRemoved'; data: { columnId: string } }
  /** The board is archived: read-only, out of `boards`, until restored. */
  | { type: 'BoardArchived'; data: { boardId: string } }
  /** The board is live again. */
  | { type: 'BoardRestored'; data: { boardId: string } };

export const boardEventSchemaVersions: SchemaVersions<BoardEvent> = {
  BoardCreated: 1,
  BoardRenamed: 1,
  MemberAdded: 1,
  ColumnPlaced: 1,
  ColumnsRebalanced: 1,
  ColumnRemoved: 1,
  BoardArchived: 1,
  BoardRestored: 1,
};

/**
 * Fields of the GraphQL `Board` type that events can change. `version` and
 * `updatedAt` change with every event and are not listed.
 */
export type BoardField = 'name' | 'members' | 'columns' | 'archived';

/** The `Board` fields an event touches. */
export function boardEventFields(event: BoardEvent): readonly BoardField[] {
  switch (event.type) {
    case 'BoardCreated':
      return ['name', 'members', 'columns', 'archived'];
    case 'BoardRenamed':
      return ['name'];
    case 'MemberAdded':
      return ['members'];
    case 'ColumnPlaced':
    case 'ColumnsRebalanced':
    case 'ColumnRemoved':
      return ['columns'];
    case 'BoardArchived':
    case 'BoardRestored':
      return ['archived'];
    default:
      return unreachable(event);
  }
}

/** A stored event of a board stream as a `BoardEvent`; throws on an unknown type. */
export function parseBoardEvent(event: {
  type: string;
  data: Record<string, unknown>;
}): BoardEvent {
  return castEvent(boardEventSchemaVersions, event);
}
