import { eventParser, type SchemaVersions } from '../domainEvent.js';
import type { ResourceType } from '../errors.js';
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

/** A `Card` field an edit sets, for one key of `CardChanges`. */
export interface CardChangeField {
  /** The field of the GraphQL `Card` type the key sets. */
  field: string;
  /** For an id: the type of resource it names (history shows a reference to it). */
  refersTo?: ResourceType;
}

/**
 * Every key of `CardChanges` and the `Card` field it sets: the one list that the
 * card's state, its read document, the `Card` fields an event touches (live
 * invalidation, merges) and its history are derived from.
 */
export const cardChangeFields = {
  title: { field: 'title' },
  description: { field: 'description' },
  assigneeId: { field: 'assignee', refersTo: 'User' },
  labels: { field: 'labels' },
  done: { field: 'done' },
} as const satisfies Record<keyof CardChanges, CardChangeField>;

/** What `CardCreated` gives a new card. */
export type CardCreatedData = Extract<CardEvent, { type: 'CardCreated' }>['data'];

/** What a new card holds for each key of `CardChanges` that `CardCreated` does not give. */
export const newCardDefaults: {
  [K in Exclude<keyof CardChanges, keyof CardCreatedData>]-?: Exclude<CardChanges[K], undefined>;
} = { assigneeId: null, labels: [], done: false };

/**
 * Fields of the GraphQL `Card` type that events can change, all of which `CardCreated`
 * touches. `version` changes with every event and is not listed.
 */
export type CardField =
  'board' | 'column' | (typeof cardChangeFields)[keyof CardChanges]['field'] | 'archived' | 'rank';
export const cardFields: readonly CardField[] = [
  'board',
  'column',
  ...Object.values(cardChangeFields).map((change) => change.field),
  'archived',
  'rank',
];

/** The keys `changes` gives (not undefined), in the order of {@link cardChangeFields}. */
export function givenChanges(changes: CardChanges): (keyof CardChanges)[] {
  return (Object.keys(cardChangeFields) as (keyof CardChanges)[]).filter(
    (key) => changes[key] !== undefined,
  );
}

/** `changes` without its undefined keys: what an edit sets. */
export function definedChanges(changes: CardChanges): CardChanges {
  return Object.fromEntries(givenChanges(changes).map((key) => [key, changes[key]]));
}

/** The `Card` fields an edit with these changes sets, e.g. `{title, assigneeId}` -> `['title', 'assignee']`. */
export function cardFieldsOfChanges(changes: CardChanges): CardField[] {
  return givenChanges(changes).map((key) => cardChangeFields[key].field);
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
export const parseCardEvent = eventParser<CardEvent>(cardEventSchemaVersions);
