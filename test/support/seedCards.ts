import { randomUUID } from 'node:crypto';
import { generateNKeysBetween } from 'fractional-indexing';
import type { EventStore, NewEvent, StreamAppend } from '../../src/eventstore/types.js';

/** What {@link seedCards} adds to a column. */
export interface SeedCardsOptions {
  boardId: string;
  columnId: string;
  count: number;
  /** Mark every seeded card done (a `CardEdited` in the same commit). @default false */
  done?: boolean;
  /** The commits' actor (a user id). @default null */
  actor?: string | null;
}

/** Cards per commit: each card is 2 or 3 events, under the store's 1,000 events per commit. */
const CARDS_PER_COMMIT = 300;

/**
 * Appends `count` cards at the end of an existing column straight through the event
 * store, in large commits, exactly as `addCard` would record them (`CardCreated` on
 * the card's stream, `CardEntered` on the column's, at the column's current version).
 * For tests and benchmarks that need big columns fast; the API is never involved.
 * Resolves with the new card ids in column order and the last commit's position.
 */
export async function seedCards(
  store: EventStore,
  options: SeedCardsOptions,
): Promise<{ cardIds: string[]; position: number }> {
  const { boardId, columnId, count } = options;
  const columnStream = `column-${columnId}`;
  const existing = await store.readStream(columnStream);
  if (existing.length === 0) throw new Error(`seedCards: column ${columnId} does not exist`);
  let version = existing.at(-1)!.version;
  // The highest rank the column ever gave is a safe lower bound for new ones.
  let last: string | null = null;
  for (const event of existing) {
    const ranks =
      event.type === 'CardsRebalanced'
        ? Object.values(event.data.ranks as Record<string, string>)
        : typeof event.data.rank === 'string'
          ? [event.data.rank]
          : [];
    for (const rank of ranks) if (last === null || rank > last) last = rank;
  }
  const ranks = generateNKeysBetween(last, null, count);
  const cardIds: string[] = [];
  let position = 0;
  for (let start = 0; start < count; start += CARDS_PER_COMMIT) {
    const streams: StreamAppend[] = [];
    const entered: NewEvent[] = [];
    for (let i = start; i < Math.min(count, start + CARDS_PER_COMMIT); i += 1) {
      const cardId = randomUUID();
      const rank = ranks[i]!;
      cardIds.push(cardId);
      const events: NewEvent[] = [
        {
          type: 'CardCreated',
          data: { cardId, boardId, columnId, title: `card ${i}`, description: '', rank },
        },
      ];
      if (options.done) events.push({ type: 'CardEdited', data: { changes: { done: true } } });
      streams.push({ stream: `card-${cardId}`, expected: 'NO_STREAM', events });
      entered.push({ type: 'CardEntered', data: { cardId, rank } });
    }
    streams.push({ stream: columnStream, expected: version, events: entered });
    const result = await store.append({
      streams,
      metadata: { actor: options.actor ?? null, operation: 'addCard' },
    });
    version += entered.length;
    position = result.position;
  }
  return { cardIds, position };
}
