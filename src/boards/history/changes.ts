/**
 * What each event of a card, column or board stream means in that resource's history:
 * one mapping per aggregate, an exhaustive switch over its event types, so a new event
 * type does not typecheck until it says what it changes.
 */
import { boardEventSchemaVersions, parseBoardEvent, type BoardEvent } from '../board/events.js';
import {
  cardChangeFields,
  cardEventSchemaVersions,
  givenChanges,
  newCardDefaults,
  parseCardEvent,
  type CardChangeField,
  type CardChanges,
  type CardEvent,
} from '../card/events.js';
import { columnEventSchemaVersions, parseColumnEvent, type ColumnEvent } from '../column/events.js';
import { BoardRole } from '../board/access.js';
import type { ResourceType } from '../errors.js';
import { StreamKind, toStreamName } from '../streams.js';
import { unreachable } from '../unreachable.js';

/** A resource a history value points at; shown to clients as its global ID. */
export interface HistoryRef {
  ref: ResourceType;
  id: string;
}

/** A field's value in history, before it is written as JSON text. */
export type HistoryValue =
  | string
  | number
  | boolean
  | null
  | HistoryRef
  | readonly HistoryValue[]
  | { readonly [key: string]: HistoryValue };

/**
 * One field an event changed. `from: PREVIOUS` means "the value the last earlier event
 * that set this field gave it" (null when none did), which the history reader looks up;
 * otherwise the event itself says what was there before.
 */
export interface HistoryFieldChange {
  field: string;
  from: HistoryValue | typeof PREVIOUS;
  to: HistoryValue;
  /**
   * What `from: PREVIOUS` is looked up by, when the field holds one value per something
   * (a board's `role` is one per member: `role:<userId>`). @default the field
   */
  key?: string;
}

/** What a change's `from: PREVIOUS` is looked up by. */
export const previousKey = (change: HistoryFieldChange): string => change.key ?? change.field;

/** See {@link HistoryFieldChange.from}. */
export const PREVIOUS = Symbol('previous value of the field');

/** One event as a history entry, before `from` values are looked up. */
export interface RenderedEvent {
  /** What happened, e.g. `CardEdited` or, on a column, `CardAdded`. */
  operation: string;
  changes: HistoryFieldChange[];
}

/** How one kind of resource's stream reads as history. */
export interface HistorySpec {
  kind: 'Card' | 'Column' | 'Board';
  stream(id: string): string;
  render(event: { type: string; data: Record<string, unknown> }): RenderedEvent;
}

const ref = (type: ResourceType, id: string): HistoryRef => ({ ref: type, id });
const set = (field: string, to: HistoryValue): HistoryFieldChange => ({
  field,
  from: PREVIOUS,
  to,
});
/** A value where there was none: a field of a new resource, or an element added to a list. */
const created = (field: string, to: HistoryValue): HistoryFieldChange => ({
  field,
  from: null,
  to,
});
/** An element that left the list `field`. */
const removed = (field: string, from: HistoryValue): HistoryFieldChange => ({
  field,
  from,
  to: null,
});
/** Where an element of a ranked list (a column's cards, a board's columns) now stands. */
const placed = (type: 'Card' | 'Column', id: string, rank: string): HistoryFieldChange => {
  const field = type === 'Card' ? 'card' : 'column';
  return created(field, { [field]: ref(type, id), rank });
};
/**
 * A member's role: given (a new member, or the board's creator) from none, or changed
 * from the role the member's last earlier role event gave (each member's role is its
 * own value, looked up by `role:<userId>`).
 */
const role = (userId: string, to: string, given: boolean): HistoryFieldChange => ({
  field: 'role',
  key: `role:${userId}`,
  from: given ? null : PREVIOUS,
  to: { user: ref('User', userId), role: to },
});

/** How a column's history names its events where they differ from the event type. */
const columnOperationNames = { CardEntered: 'CardAdded', CardLeft: 'CardRemoved' } as const;
type ColumnOperation<T extends ColumnEvent['type']> = T extends keyof typeof columnOperationNames
  ? (typeof columnOperationNames)[T]
  : T;
const columnOperation = <T extends ColumnEvent['type']>(type: T): ColumnOperation<T> =>
  ((columnOperationNames as Record<string, string>)[type] ?? type) as ColumnOperation<T>;

/**
 * Every `operation` a history entry can show, by the kind of resource: each kind's event
 * types (a column's `CardEntered` and `CardLeft` as `CardAdded` and `CardRemoved`). The
 * README lists these (a test checks it).
 */
export const historyOperations = {
  Card: Object.keys(cardEventSchemaVersions),
  Column: (Object.keys(columnEventSchemaVersions) as ColumnEvent['type'][]).map(columnOperation),
  Board: Object.keys(boardEventSchemaVersions),
} as const satisfies Record<HistorySpec['kind'], readonly string[]>;

/** An operation of {@link historyOperations}. */
type HistoryOperation =
  CardEvent['type'] | BoardEvent['type'] | ColumnOperation<ColumnEvent['type']>;

/** What `operation` changed, field by field. */
const rendered = (
  operation: HistoryOperation,
  ...changes: HistoryFieldChange[]
): RenderedEvent => ({ operation, changes });
/** The resource was archived (`true`) or restored. */
const archived = (to: boolean): HistoryFieldChange => ({ field: 'archived', from: !to, to });

const cardChangeKeys = Object.keys(cardChangeFields) as (keyof CardChanges)[];

/** The value of `key` in `changes` as history shows it: an id as a reference. */
function cardValue(key: keyof CardChanges, changes: CardChanges): HistoryValue {
  const value = changes[key] ?? null;
  const { refersTo }: CardChangeField = cardChangeFields[key];
  return refersTo && typeof value === 'string' ? ref(refersTo, value) : value;
}

function renderCard(event: CardEvent): RenderedEvent {
  switch (event.type) {
    case 'CardCreated': {
      const d = event.data;
      const card = { ...newCardDefaults, ...d };
      return rendered(
        event.type,
        created('board', ref('Board', d.boardId)),
        created('column', ref('Column', d.columnId)),
        ...cardChangeKeys.map((key) => created(cardChangeFields[key].field, cardValue(key, card))),
        created('archived', false),
        created('rank', d.rank),
      );
    }
    case 'CardEdited': {
      const { changes } = event.data;
      return rendered(
        event.type,
        ...givenChanges(changes).map((key) =>
          set(cardChangeFields[key].field, cardValue(key, changes)),
        ),
      );
    }
    case 'CardMoved': {
      const { fromColumnId, toColumnId, rank } = event.data;
      const changes: HistoryFieldChange[] = [];
      if (fromColumnId !== toColumnId) {
        changes.push({
          field: 'column',
          from: ref('Column', fromColumnId),
          to: ref('Column', toColumnId),
        });
      }
      changes.push(set('rank', rank));
      return rendered(event.type, ...changes);
    }
    case 'CardArchived':
      return rendered(event.type, archived(true));
    case 'CardRestored': {
      const { columnId, rank } = event.data;
      return rendered(
        event.type,
        archived(false),
        set('column', ref('Column', columnId)),
        set('rank', rank),
      );
    }
    default:
      return unreachable(event);
  }
}

function renderColumn(event: ColumnEvent): RenderedEvent {
  switch (event.type) {
    case 'ColumnCreated': {
      const d = event.data;
      return rendered(
        event.type,
        created('board', ref('Board', d.boardId)),
        created('name', d.name),
        created('wipLimit', d.wipLimit),
      );
    }
    case 'WipLimitSet':
      return rendered(event.type, set('wipLimit', event.data.wipLimit));
    case 'CardEntered':
      return rendered(columnOperation(event.type), created('card', ref('Card', event.data.cardId)));
    case 'CardLeft':
      return rendered(columnOperation(event.type), removed('card', ref('Card', event.data.cardId)));
    case 'CardsArchived':
      return rendered(
        event.type,
        ...event.data.cardIds.map((id) => removed('card', ref('Card', id))),
      );
    case 'ArchivedCardRestored':
      // Restored into `toColumnId`, which shows it as `CardAdded` (this one, or another).
      return rendered(
        event.type,
        removed('archivedCard', ref('Card', event.data.cardId)),
        created('restoredTo', ref('Column', event.data.toColumnId)),
      );
    case 'CardRepositioned':
      return rendered(event.type, placed('Card', event.data.cardId, event.data.rank));
    case 'CardsRebalanced':
      // New ranks, the same order: nothing a reader of the column sees changed.
      return rendered(event.type);
    case 'ColumnRenamed':
      return rendered(event.type, set('name', event.data.name));
    case 'ColumnArchived':
      return rendered(event.type, archived(true));
    default:
      return unreachable(event);
  }
}

function renderBoard(event: BoardEvent): RenderedEvent {
  switch (event.type) {
    case 'BoardCreated':
      return rendered(
        event.type,
        created('name', event.data.name),
        created('owner', ref('User', event.data.ownerId)),
        created('member', ref('User', event.data.ownerId)),
        role(event.data.ownerId, BoardRole.Owner, true),
      );
    case 'BoardRenamed':
      return rendered(event.type, set('name', event.data.name));
    case 'MemberAdded':
      return rendered(
        event.type,
        created('member', ref('User', event.data.userId)),
        role(event.data.userId, event.data.role, true),
      );
    case 'MemberRoleChanged':
      return rendered(event.type, role(event.data.userId, event.data.role, false));
    case 'MemberRemoved':
      return rendered(event.type, removed('member', ref('User', event.data.userId)));
    case 'ColumnPlaced':
      return rendered(event.type, placed('Column', event.data.columnId, event.data.rank));
    case 'ColumnsRebalanced':
      return rendered(event.type);
    case 'ColumnRemoved':
      // The column was archived: it leaves the board's columns.
      return rendered(event.type, removed('column', ref('Column', event.data.columnId)));
    case 'BoardArchived':
      return rendered(event.type, archived(true));
    case 'BoardRestored':
      return rendered(event.type, archived(false));
    default:
      return unreachable(event);
  }
}

/** The history of each kind of resource, by the GraphQL type that shows it. */
export const historySpecs = {
  Card: {
    kind: 'Card',
    stream: (id) => toStreamName(StreamKind.Card, id),
    render: (event) => renderCard(parseCardEvent(event)),
  },
  Column: {
    kind: 'Column',
    stream: (id) => toStreamName(StreamKind.Column, id),
    render: (event) => renderColumn(parseColumnEvent(event)),
  },
  Board: {
    kind: 'Board',
    stream: (id) => toStreamName(StreamKind.Board, id),
    render: (event) => renderBoard(parseBoardEvent(event)),
  },
} as const satisfies Record<HistorySpec['kind'], HistorySpec>;
