import { useQuery } from '@apollo/client/react';
import { CardHistoryDocument } from '@corkboard/client';

/** Fields a person does not read: ids of the board and the sort key. */
const HIDDEN_FIELDS: ReadonlySet<string> = new Set(['board', 'rank']);

/** How many entries a page of a card's history shows. */
const PAGE = 20;

const EMPTY = '∅';

/** A field's value as the history gives it (JSON), for reading: strings unquoted. */
function shown(json: string | null | undefined): string {
  if (json == null) return EMPTY;
  try {
    const value: unknown = JSON.parse(json);
    if (value === '' || value === null || value === false) return EMPTY;
    if (Array.isArray(value) && value.length === 0) return EMPTY;
    return typeof value === 'string' ? value : JSON.stringify(value);
  } catch {
    return json;
  }
}

/**
 * A card's history from the event log, newest first: who changed which fields, from
 * what to what. Read from the network when it opens (the parent remounts it when the
 * card's version changes, so it follows live changes too).
 */
export function CardHistory({
  cardId,
  columnNames,
}: {
  cardId: string;
  /** Column names by ID, to show a move by name. */
  columnNames: ReadonlyMap<string, string>;
}) {
  const value = (field: string, json: string | null | undefined) => {
    const text = shown(json);
    return field === 'column' && text !== EMPTY
      ? (columnNames.get(text) ?? 'another column')
      : text;
  };
  const { data, loading, error, fetchMore } = useQuery(CardHistoryDocument, {
    variables: { id: cardId, first: PAGE },
    fetchPolicy: 'network-only',
  });
  const card = data?.card?.__typename === 'Card' ? data.card : null;
  if (error) return <p className="error">{error.message}</p>;
  if (!card) return <p className="muted">{loading ? 'Loading history…' : 'No history.'}</p>;
  const { edges, pageInfo } = card.history;
  return (
    <div className="history" data-testid="history">
      <ol>
        {edges.map(({ cursor, node }) => (
          <li key={cursor} data-testid="history-entry">
            <span className="muted">
              v{node.version} · {new Date(node.at).toLocaleTimeString()} ·{' '}
            </span>
            <strong>{node.actor?.displayName ?? 'someone'}</strong> {node.operation}
            {node.changes.length > 0 && (
              <ul>
                {node.changes
                  .filter((c) => !HIDDEN_FIELDS.has(c.field) && shown(c.from) !== shown(c.to))
                  .map((change) => (
                    <li key={change.field}>
                      {change.field}: {value(change.field, change.from)} →{' '}
                      {value(change.field, change.to)}
                    </li>
                  ))}
              </ul>
            )}
          </li>
        ))}
      </ol>
      {pageInfo.hasNextPage && (
        <button
          type="button"
          onClick={() =>
            void fetchMore({
              variables: { after: pageInfo.endCursor },
              updateQuery: (previous, { fetchMoreResult }) => {
                const older = fetchMoreResult.card;
                const current = previous.card;
                if (older?.__typename !== 'Card' || current?.__typename !== 'Card') return previous;
                return {
                  card: {
                    ...older,
                    history: {
                      ...older.history,
                      edges: [...current.history.edges, ...older.history.edges],
                    },
                  },
                };
              },
            })
          }
        >
          Older
        </button>
      )}
    </div>
  );
}
