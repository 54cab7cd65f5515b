import { eventParser, type SchemaVersions } from '../domainEvent.js';
import { unreachable } from '../unreachable.js';
import { BoardRole } from './access.js';

/**
 * Events of a board stream (`board-<boardId>`). The board owns its members, their roles
 * and the order of its columns; its creator is an `OWNER` from `BoardCreated` on. Every
 * member event is committed together with the member's own membership stream event.
 */
export type BoardEvent =
  | { type: 'BoardCreated'; data: { boardId: string; name: string; ownerId: string } }
  | { type: 'BoardRenamed'; data: { name: string } }
  /** Schema version 2 added `role`; version 1 events (no role) read as `EDITOR`. */
  | { type: 'MemberAdded'; data: { userId: string; role: BoardRole } }
  | { type: 'MemberRoleChanged'; data: { userId: string; role: BoardRole } }
  /** Removed by an owner, or left (the actor is the member). */
  | { type: 'MemberRemoved'; data: { userId: string } }
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
  MemberAdded: 2,
  MemberRoleChanged: 1,
  MemberRemoved: 1,
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
export type BoardField = 'name' | 'members' | 'memberships' | 'viewerRole' | 'columns' | 'archived';

/** What a change of who is a member, or of a member's role, makes stale. */
const memberFields: readonly BoardField[] = ['members', 'memberships', 'viewerRole'];

/** The `Board` fields an event touches. */
export function boardEventFields(event: BoardEvent): readonly BoardField[] {
  switch (event.type) {
    case 'BoardCreated':
      return ['name', ...memberFields, 'columns', 'archived'];
    case 'BoardRenamed':
      return ['name'];
    case 'MemberAdded':
    case 'MemberRoleChanged':
    case 'MemberRemoved':
      return memberFields;
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

/**
 * A stored event of a board stream as a `BoardEvent`; throws on an unknown type. Lifts
 * `MemberAdded` of schema version 1 (members were all editors then): `role: EDITOR`.
 */
export const parseBoardEvent = eventParser<BoardEvent>(boardEventSchemaVersions, (event) =>
  event.type === 'MemberAdded' && event.data.role === undefined
    ? { type: event.type, data: { ...event.data, role: BoardRole.Editor } }
    : event,
);
