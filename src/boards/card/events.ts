import { castEvent, type SchemaVersions } from '../domainEvent.js';
import { unreachable } from '../unreachable.js';

/** The card fields an edit can set; absent keys are left unchanged. */
export type CardChanges = {
  title?: string;
  description?: string;
  /** null unassigns. */
  assigneeId?: string | null;
  labels?: readonly string[];
  done?: boolean;
};

/**
 * Events of a card stream (`card-<cardId>`). Every event that changes which column
 * holds the card, or where, is committed together with the matching column events.
 * `rank` here is the rank the card got at that moment; a later column rebalance
 * changes it in the column stream only (`CardsRebalanced`).
 */
export type CardEvent =
  | {
      type: 'CardCreated';
      data: {
        cardId: string;
        boardId: string;
        columnId: string;
        title: string;
        description: string;
        rank: string;
      };
    }
  | { type: 'CardEdited'; data: { changes: CardChanges } }
  /** `fromColumnId === toColumnId` for a move within one column. */
  | { type: 'CardMoved'; data: { fromColumnId: string; toColumnId: string; rank: string } }
  /**
   * The card leaves its column's live cards. `rank`: its rank there at that moment (the
   * column's, after any rebalance), where `CardRestored` puts it back; absent from
   * events written before restoring existed.
   */
  | { type: 'CardArchived'; data: { rank?: string } }
  /** The archived card is live again, in `columnId` at `rank`. */
  | { type: 'CardRestored'; data: { columnId: string; rank: string } };

export const cardEventSchemaVersions: SchemaVersions<CardEvent> = {
  CardCreated: 1,
  CardEdited: 1,
  CardMoved: 1,
  CardArchived: 1,
  CardRestored: 1,
};

/**
 * Fields of the GraphQL `Card` type that events can change, all of which `CardCreated`
 * touches. `version` changes with every event and is not listed.
 */
export const cardFields = [
  'board',
  'column',
  'title',
  'description',
  'assignee',
  'labels',
  'done',
  'archived',
  'rank',
] as const;
export type CardField = (typeof cardFields)[number];

/** The `Card` field each key of `CardChanges` sets. */
export const cardFieldOfChange: Readonly<Record<keyof CardChanges, CardField>> = {
  title: 'title',
  description: 'description',
  assigneeId: 'assignee',
  labels: 'labels',
  done: 'done',
};

/** The `Card` fields an edit with these changes sets, e.g. `{title, assigneeId}` -> `['title', 'assignee']`. */
export function cardFieldsOfChanges(changes: CardChanges): CardField[] {
  return (Object.keys(cardFieldOfChange) as (keyof CardChanges)[])
    .filter((key) => changes[key] !== undefined)
    .map((key) => cardFieldOfChange[key]);
}

/** The `Card` fields an event touches. */
export function cardEventFields(event: CardEvent): readonly CardField[] {
  switch (event.type) {
    case 'CardCreated':
      return cardFields;
    case 'CardEdited':
      return cardFieldsOfChanges(event.data.changes);
    case 'CardMoved':
      return event.data.fromColumnId === event.data.toColumnId ? ['rank'] : ['column', 'rank'];
    case 'CardArchived':
      return ['archived'];
    case 'CardRestored':
      return ['archived', 'column', 'rank'];
    default:
      return unreachable(event);
  }
}

/** A stored event of a card stream as a `CardEvent`; throws on an unknown type. */
export function parseCardEvent(event: { type: string; data: Record<string, unknown> }): CardEvent {
  return castEvent(cardEventSchemaVersions, event);
}
