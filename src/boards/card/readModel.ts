import type { ReadDoc } from '../../projector/types.js';
import type { DocStamps } from '../docStamps.js';
import type { CardData, CardState } from './state.js';

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
