import type { BoardQuery, CardFieldsFragment } from '@corkboard/client';

/** A board as the page reads it (the SDK's Board query). */
export type Board = NonNullable<BoardQuery['board']>;
export type Column = Board['columns'][number];
export type Card = CardFieldsFragment;

/** Where a move puts a card in its target column. */
export interface Placement {
  toColumnId: string;
  afterCardId?: string | null;
  beforeCardId?: string | null;
}

/** Shows an error result, if `result` is one; a conflict offers `retry` with the version it names. */
export type Report = (
  result: { __typename: string },
  retry?: (actualVersion: number) => void,
  columnId?: string,
) => boolean;

/** Shows a request that failed outright. */
export type Failure = (error: unknown, columnId?: string) => void;

/** A message about the last write, with the retry it offers (if any). */
export interface Alert {
  text: string;
  columnId?: string;
  retry?: () => void;
}

/** A column's live cards, in column order. */
export const liveCards = (column: Column): Card[] =>
  column.cards.edges.map((edge) => edge.node).filter((card) => !card.archived);
