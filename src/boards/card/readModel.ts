import type { ReadDoc } from '../../projector/types.js';
import { ARCHIVED_CARDS_PAGE } from '../../sdk/archivedLists.js';
import { defineReadModel, docType } from '../../projector/readModel.js';
import { invalidationOf } from '../aggregates.js';
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

/** The card's read document: the one place a card's state becomes its document. */
export function toCardDoc(
  state: Exclude<CardState, { status: 'absent' }>,
  stamps: DocStamps,
): CardDoc {
  const { status, cardId, labels, ...data } = state;
  return { _id: cardId, ...data, labels: [...labels], archived: status === 'archived', ...stamps };
}

/** The state a card's read document was made from (`toCardDoc`'s inverse). */
export function cardStateOf(doc: CardDoc | null): CardState {
  if (!doc) return { status: 'absent' };
  const { _id, _applied, archived, version: _v, createdAt: _c, updatedAt: _u, ...data } = doc;
  return { status: archived ? 'archived' : 'live', cardId: _id, ...data };
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
  projection: {
    handles: [...Object.keys(cardEventSchemaVersions), 'CardsRebalanced'],
    // Members of the board may read all of it: subscribers get it with the change.
    carriesDocuments: true,
    async apply({ commit, update, invalidate, view }) {
      const cards = cardReadModel.documents(view);
      for (const stored of commit.events) {
        if (stored.type === 'CardsRebalanced') {
          const event = parseColumnEvent(stored);
          if (event.type !== 'CardsRebalanced') continue;
          for (const [cardId, rank] of Object.entries(event.data.ranks)) {
            await update<CardDoc>(cardReadModel.collection, cardId, stored, (doc) => {
              if (!doc) throw new Error(`card ${cardId}: rebalanced before CardCreated`);
              return { ...doc, rank };
            });
            const card = await cards.get(cardId);
            if (card) {
              invalidate(card.boardId, {
                typename: 'Card',
                id: cardId,
                fields: ['rank'],
                version: card.version,
              });
            }
          }
          continue;
        }
        if (!Object.hasOwn(cardEventSchemaVersions, stored.type)) continue;
        const event = parseCardEvent(stored);
        const invalidation = invalidationOf(stored);
        const cardId = invalidation.id;
        await update<CardDoc>(cardReadModel.collection, cardId, stored, (doc) => {
          const card = evolveCard(cardStateOf(doc), event);
          if (card.status === 'absent') {
            throw new Error(`card ${cardId}: ${event.type} before CardCreated`);
          }
          return toCardDoc(card, stampsAfter(doc, stored.version, commit.occurredAt));
        });
        const boardId =
          event.type === 'CardCreated'
            ? event.data.boardId
            : ((await cards.get(cardId))?.boardId ?? null);
        invalidate(boardId, invalidation);
      }
    },
  },
});
