import type { ReadDoc } from '../../projector/types.js';
import { RankedList } from '../rankedList.js';
import { unreachable } from '../unreachable.js';
import { defineReadModel, docType } from '../../projector/readModel.js';
import { invalidationOf } from '../aggregates.js';
import { idOfStream } from '../streams.js';
import { stampsAfter, type DocStamps } from '../docStamps.js';
import { columnEventSchemaVersions, parseColumnEvent, type ColumnEvent } from './events.js';
import { evolveColumn, type ActiveColumn, type ColumnState } from './state.js';

/**
 * A column as queries see it: its state but its id (`_id`) and its card list, of which
 * it keeps the count of live cards (their order is read from the cards).
 */
export type ColumnDoc = ReadDoc &
  Omit<ActiveColumn, 'status' | 'columnId' | 'cards'> & {
    /** Live cards. */
    cardCount: number;
  } & DocStamps;

/**
 * The column's read document: the one place a column's state becomes its document.
 * `cardCount` defaults to the state's live cards (a projection, which does not keep the
 * card list in the document, passes its own count). Every field is named, as in
 * `toCardDoc` (the compiler checks the list): rest and spread copies cost ten times more.
 */
export function toColumnDoc(
  state: ActiveColumn,
  stamps: DocStamps,
  cardCount = state.cards.size,
): ColumnDoc {
  return {
    _id: state.columnId,
    boardId: state.boardId,
    name: state.name,
    wipLimit: state.wipLimit,
    archived: state.archived,
    cardCount,
    version: stamps.version,
    createdAt: stamps.createdAt,
    updatedAt: stamps.updatedAt,
  };
}

/**
 * The state a column's read document was made from, with an empty card list (the document
 * keeps only their count; see {@link liveCardsDelta}).
 */
export function columnStateOf(doc: ColumnDoc | null): ColumnState {
  if (!doc) return { status: 'absent' };
  return {
    status: 'active',
    columnId: doc._id,
    boardId: doc.boardId,
    name: doc.name,
    wipLimit: doc.wipLimit,
    cards: RankedList.empty,
    // Documents written before columns could be archived lack the field.
    archived: doc.archived === true,
  };
}

/** How an event changes the number of live cards in its column. */
export function liveCardsDelta(event: ColumnEvent): number {
  switch (event.type) {
    case 'CardEntered':
      return 1;
    case 'CardLeft':
      return -1;
    case 'CardsArchived':
      return -event.data.cardIds.length;
    case 'ColumnCreated':
    case 'WipLimitSet':
    case 'CardRepositioned':
    case 'CardsRebalanced':
    case 'ArchivedCardRestored':
    case 'ColumnRenamed':
    case 'ColumnArchived':
      return 0;
    default:
      return unreachable(event);
  }
}

/** Columns: name, WIP limit and live card count. Card order is read from the cards. */
export const columnReadModel = defineReadModel({
  name: 'columns',
  collection: 'columns',
  doc: docType<ColumnDoc>(),
  documentIds: (stored) =>
    Object.hasOwn(columnEventSchemaVersions, stored.type) ? idOfStream(stored.stream) : [],
  projection: {
    handles: Object.keys(columnEventSchemaVersions),
    // Members of the board may read all of it: subscribers get it with the change.
    carriesDocuments: true,
    async apply({ commit, update, invalidate }) {
      for (const stored of commit.events) {
        if (!Object.hasOwn(columnEventSchemaVersions, stored.type)) continue;
        const event = parseColumnEvent(stored);
        const invalidation = invalidationOf(stored);
        const columnId = invalidation.id;
        const column = await update<ColumnDoc>(
          columnReadModel.collection,
          columnId,
          stored,
          (doc) => {
            const state = evolveColumn(columnStateOf(doc), event);
            if (state.status === 'absent') {
              throw new Error(`column ${columnId}: ${event.type} before ColumnCreated`);
            }
            const cardCount = (doc?.cardCount ?? 0) + liveCardsDelta(event);
            const stamps = stampsAfter(doc, stored.version, commit.occurredAt);
            return toColumnDoc(state, stamps, cardCount);
          },
        );
        invalidate(column.boardId, invalidation);
      }
    },
  },
});
