import type { Projection } from '../../projector/types.js';
import { invalidationOf } from '../aggregates.js';
import { parseColumnEvent } from '../column/events.js';
import { stampsAfter } from '../docStamps.js';
import { ReadCollection } from '../readModel.js';
import { cardEventSchemaVersions, parseCardEvent } from './events.js';
import { cardStateOf, toCardDoc, type CardDoc } from './readModel.js';
import { evolveCard } from './state.js';

/**
 * Cards, including their column and rank (so a column's cards are one indexed query
 * sorted by rank). A column rebalance rewrites ranks from the column's stream.
 */
export const cardProjection: Projection = {
  name: 'cards',
  handles: [...Object.keys(cardEventSchemaVersions), 'CardsRebalanced'],
  // Members of the board may read all of it: subscribers get it with the change.
  carriesDocuments: true,
  async apply({ commit, update, invalidate, view }) {
    const cards = view.collection<CardDoc>(ReadCollection.Cards);
    for (const stored of commit.events) {
      if (stored.type === 'CardsRebalanced') {
        const event = parseColumnEvent(stored);
        if (event.type !== 'CardsRebalanced') continue;
        for (const [cardId, rank] of Object.entries(event.data.ranks)) {
          await update<CardDoc>(ReadCollection.Cards, cardId, stored, (doc) => {
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
      await update<CardDoc>(ReadCollection.Cards, cardId, stored, (doc) => {
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
};
