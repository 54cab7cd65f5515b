import { useApolloClient, useQuery } from '@apollo/client/react';
import { ArchivedCardsDocument, RestoreCardDocument } from '@corkboard/client';
import type { Card, Column, Failure, Report } from './boardTypes.js';
import { mutateOr } from './mutate.js';

/**
 * A column's archived cards, the last archived first, each with a Restore button
 * (restoreCard puts it back where it was, within the column's WIP limit). Read from the
 * network when it opens; after that the live cache keeps it (a card archived or restored
 * there, by anyone, comes with the board's push), with no read of its own.
 */
export function ArchivedCards({
  column,
  readOnly,
  onReport,
  onFailure,
}: {
  column: Column;
  /** The viewer may not write (a viewer, or the board is archived): no Restore. */
  readOnly: boolean;
  onReport: Report;
  onFailure: Failure;
}) {
  const apollo = useApolloClient();
  const { data, loading, error } = useQuery(ArchivedCardsDocument, {
    variables: { columnId: column.id },
    fetchPolicy: 'network-only',
    nextFetchPolicy: 'cache-first',
  });
  const cards = data?.column?.__typename === 'Column' ? data.column.archivedCards : [];

  const restore = async (card: Card) => {
    const restored = await mutateOr(
      apollo,
      {
        mutation: RestoreCardDocument,
        variables: { input: { cardId: card.id, expectedVersion: card.version } },
      },
      (failure) => onFailure(failure, column.id),
    );
    const result = restored?.restoreCard;
    if (result) onReport(result, undefined, column.id);
  };

  return (
    <div
      className="archived"
      data-testid="archived-cards"
      aria-label={`Archived in ${column.name}`}
    >
      {loading && !data && <p className="muted">Loading…</p>}
      {error && <p className="error">{error.message}</p>}
      {data && cards.length === 0 && <p className="muted">No archived cards.</p>}
      <ul>
        {cards.map((card) => (
          <li
            key={card.id}
            data-testid="archived-card"
            data-card-id={card.id}
            data-title={card.title}
          >
            <span className="title">{card.title}</span>
            {!readOnly && (
              <button
                type="button"
                aria-label={`Restore ${card.title}`}
                onClick={() => void restore(card)}
              >
                Restore
              </button>
            )}
          </li>
        ))}
      </ul>
    </div>
  );
}
