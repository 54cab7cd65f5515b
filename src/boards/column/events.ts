import { eventParser, type SchemaVersions } from '../domainEvent.js';
import { unreachable } from '../unreachable.js';

/**
 * Events of a column stream (`column-<columnId>`). The column owns the order and
 * membership of its live cards: every change to them is an event here, in the
 * same commit as the card's own event, so the column's version guards its WIP
 * limit and its total order.
 */
export type ColumnEvent =
  | {
      type: 'ColumnCreated';
      data: { columnId: string; boardId: string; name: string; wipLimit: number | null };
    }
  | { type: 'WipLimitSet'; data: { wipLimit: number | null } }
  /** A card joins the column's live cards at `rank` (added, or moved in from another column). */
  | { type: 'CardEntered'; data: { cardId: string; rank: string } }
  /** A card moved out to another column. */
  | { type: 'CardLeft'; data: { cardId: string } }
  /** A card moved within the column. */
  | { type: 'CardRepositioned'; data: { cardId: string; rank: string } }
  /** These cards were archived: no longer live, they join the column's archived cards. */
  | { type: 'CardsArchived'; data: { cardIds: readonly string[] } }
  /**
   * An archived card of this column was restored, into this column or into `toColumnId`:
   * it leaves the column's archived cards. Written to the column the card was archived
   * from (archived or not), in the commit of the card's `CardRestored`, so that the
   * change names this column's `archivedCards` at its new version. Restores written
   * before this event existed have none.
   */
  | { type: 'ArchivedCardRestored'; data: { cardId: string; toColumnId: string } }
  /** Every listed card gets a new, shorter rank; the order does not change. */
  | { type: 'CardsRebalanced'; data: { ranks: Record<string, string> } }
  | { type: 'ColumnRenamed'; data: { name: string } }
  /** The column (empty of live cards) is archived: it leaves its board's column order. */
  | { type: 'ColumnArchived'; data: { columnId: string } };

export const columnEventSchemaVersions: SchemaVersions<ColumnEvent> = {
  ColumnCreated: 1,
  WipLimitSet: 1,
  CardEntered: 1,
  CardLeft: 1,
  CardRepositioned: 1,
  CardsArchived: 1,
  ArchivedCardRestored: 1,
  CardsRebalanced: 1,
  ColumnRenamed: 1,
  ColumnArchived: 1,
};

/**
 * Fields of the GraphQL `Column` type that events can change. `version` changes
 * with every event and is not listed.
 */
export type ColumnField =
  'board' | 'name' | 'wipLimit' | 'cards' | 'cardCount' | 'archivedCards' | 'archived';

/** The `Column` fields an event touches. */
export function columnEventFields(event: ColumnEvent): readonly ColumnField[] {
  switch (event.type) {
    case 'ColumnCreated':
      return ['board', 'name', 'wipLimit', 'cards', 'cardCount', 'archivedCards', 'archived'];
    case 'WipLimitSet':
      return ['wipLimit'];
    case 'CardEntered':
    case 'CardLeft':
      return ['cards', 'cardCount'];
    case 'CardsArchived':
      return ['cards', 'cardCount', 'archivedCards'];
    case 'ArchivedCardRestored':
      return ['archivedCards'];
    case 'CardRepositioned':
    case 'CardsRebalanced':
      return ['cards'];
    case 'ColumnRenamed':
      return ['name'];
    case 'ColumnArchived':
      return ['archived'];
    default:
      return unreachable(event);
  }
}

/** A stored event of a column stream as a `ColumnEvent`; throws on an unknown type. */
export const parseColumnEvent = eventParser<ColumnEvent>(columnEventSchemaVersions);
