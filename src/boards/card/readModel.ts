import type { ReadDoc } from '../../projector/types.js';
import { ARCHIVED_CARDS_PAGE } from '../../sdk/archivedLists.js';
import { defineReadModel, docType } from '../../projector/readModel.js';
import { invalidationOf } from '../aggregates.js';
import { idOfStream } from '../streams.js';
import { parseColumnEvent } from '../column/events.js';
import { stampsAfter, type DocStamps } from '../docStamps.js';
import { cardEventSchemaVersions, parseCardEvent } from './events.js';
import { evolveCard, type CardData, type CardState } from './state.js';

/**
 * How many archived cards `Column.archivedCards` answers: by default, and at most. Declared
 * once with the SDK's cache updates, which must cut their lists as the server does (that
 * module imports no value, so the server imports it from the client's source).
 */
export { ARCHIVED_CARDS_PAGE };

/**
 * A card as queries see it: its state's data (every field of `CardData` but its id, which
 * is `_id`), `archived`, and the stamps.
 */
export type CardDoc = ReadDoc &
  Omit<CardData, 'cardId' | 'labels'> & {
    labels: string[];
    archived: boolean;
  } & DocStamps;

/**
 * The card's read document: the one place a card's state becomes its document. Every
 * field is named (the compiler checks the list against `CardDoc`): a projection calls this
 * and `cardStateOf` on every card event, and rest and spread copies made them ten times
 * slower. The labels are copied once and frozen, so the store keeps them as they are.
 */
export function toCardDoc(
  state: Exclude<CardState, { status: 'absent' }>,
  stamps: DocStamps,
): CardDoc {
  return {
    _id: state.cardId,
    boardId: state.boardId,
    columnId: state.columnId,
    title: state.title,
    description: state.description,
    rank: state.rank,
    assigneeId: state.assigneeId,
    labels: Object.isFrozen(state.labels)
      ? (state.labels as string[])
      : (Object.freeze([...state.labels]) as string[]),
    done: state.done,
    archived: state.status === 'archived',
    version: stamps.version,
    createdAt: stamps.createdAt,
    updatedAt: stamps.updatedAt,
  };
}

/** The state a card's read document was made from (`toCardDoc`'s inverse). */
export function cardStateOf(doc: CardDoc | null): CardState {
  if (!doc) return { status: 'absent' };
  return {
    status: doc.archived ? 'archived' : 'live',
    cardId: doc._id,
    boardId: doc.boardId,
    columnId: doc.columnId,
    title: doc.title,
    description: doc.description,
    rank: doc.rank,
    assigneeId: doc.assigneeId,
    labels: doc.labels,
    done: doc.done,
  };
}

/**
 * Cards, including their column and rank (so a column's cards are one indexed query
 * sorted by rank). A column rebalance rewrites ranks from the column's stream.
 */
export const cardReadModel = defineReadModel({
  name: 'cards',
  collection: 'cards',
  doc: docType<CardDoc>(),
  // A sorted query's index ends with the sort AND the `_id` tie-breaker the adapter adds to
  // every sort (`translateSort`), so the server walks the index in order.
  indexes: [
    { key: { boardId: 1, archived: 1, rank: 1, _id: 1 } },
    { key: { columnId: 1, archived: 1, updatedAt: -1, _id: 1 } },
  ],
  queries: {
    /** Live cards of a board, in rank order. */
    liveOfBoard: {
      filter: (boardId: string) => ({ boardId, archived: false }),
      sort: ['rank', 1],
    },
    /**
     * Archived cards of a column, last changed (so last archived: an archived card takes
     * no other write) first; at most a page's worth.
     */
    archivedOfColumn: {
      filter: (columnId: string) => ({ columnId, archived: true }),
      sort: ['updatedAt', -1],
      limit: ARCHIVED_CARDS_PAGE.max,
    },
  },
  // A card event's card, and the cards a rebalance ranks anew.
  documentIds: (stored) => {
    if (Object.hasOwn(cardEventSchemaVersions, stored.type)) return idOfStream(stored.stream);
    if (stored.type !== 'CardsRebalanced') return [];
    const event = parseColumnEvent(stored);
    return event.type === 'CardsRebalanced' ? Object.keys(event.data.ranks) : [];
  },
  projection: {
    handles: [...Object.keys(cardEventSchemaVersions), 'CardsRebalanced'],
    // Members of the board may read all of it: subscribers get it with the change.
    carriesDocuments: true,
    async apply({ commit, update, invalidate }) {
      for (const stored of commit.events) {
        if (stored.type === 'CardsRebalanced') {
          const event = parseColumnEvent(stored);
          if (event.type !== 'CardsRebalanced') continue;
          for (const [cardId, rank] of Object.entries(event.data.ranks)) {
            const card = await update<CardDoc>(cardReadModel.collection, cardId, stored, (doc) => {
              if (!doc) throw new Error(`card ${cardId}: rebalanced before CardCreated`);
              return { ...doc, rank };
            });
            invalidate(card.boardId, {
              typename: 'Card',
              id: cardId,
              fields: ['rank'],
              version: card.version,
            });
          }
          continue;
        }
        if (!Object.hasOwn(cardEventSchemaVersions, stored.type)) continue;
        const event = parseCardEvent(stored);
        const invalidation = invalidationOf(stored);
        const cardId = invalidation.id;
        const card = await update<CardDoc>(cardReadModel.collection, cardId, stored, (doc) => {
          const state = evolveCard(cardStateOf(doc), event);
          if (state.status === 'absent') {
            throw new Error(`card ${cardId}: ${event.type} before CardCreated`);
          }
          return toCardDoc(state, stampsAfter(doc, stored.version, commit.occurredAt));
        });
        invalidate(card.boardId, invalidation);
      }
    },
  },
});
