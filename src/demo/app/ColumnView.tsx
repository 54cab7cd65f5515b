import { useDroppable } from '@dnd-kit/core';
import type { ApolloClient, OperationVariables } from '@apollo/client';
import { useApolloClient } from '@apollo/client/react';
import { AddCardDocument, SetWipLimitDocument } from '@corkboard/client';
import { useState, type FormEvent } from 'react';
import { AlertBox } from './AlertBox.js';
import { ArchivedCards } from './ArchivedCards.js';
import {
  liveCards,
  type Alert,
  type Card,
  type Column,
  type Failure,
  type Placement,
  type Report,
} from './boardTypes.js';
import { CardView } from './CardView.js';
import { mutateOr } from './mutate.js';

/**
 * A column: its live cards in order (a drop target for dragged cards), its card count
 * against its WIP limit, a form to add a card at its end and one to set the limit.
 */
export function ColumnView({
  column,
  highlightedBy,
  columnNames,
  alert,
  onCloseAlert,
  onReport,
  onFailure,
  onKeyboardMove,
  neighbours,
  onMove,
  readOnly,
}: {
  column: Column;
  highlightedBy: ReadonlyMap<string, string>;
  columnNames: ReadonlyMap<string, string>;
  alert: Alert | null;
  onCloseAlert: () => void;
  onReport: Report;
  onFailure: Failure;
  onKeyboardMove: (card: Card, key: string) => void;
  neighbours: { left: Column | null; right: Column | null };
  onMove: (card: Card, placement: Placement) => Promise<void>;
  /** The viewer may not write here (a viewer, or the board is archived): controls disabled. */
  readOnly: boolean;
}) {
  const apollo = useApolloClient();
  const { setNodeRef, isOver } = useDroppable({ id: `column:${column.id}` });
  const [title, setTitle] = useState('');
  const [wip, setWip] = useState('');
  const [showArchived, setShowArchived] = useState(false);
  const cards = liveCards(column);
  const full = column.wipLimit !== null && column.cardCount >= column.wipLimit;

  /** Submits one of the column's forms: its mutation, reported on the column; cleared when it took. */
  const submit = async <TData, TVariables extends OperationVariables>(
    event: FormEvent,
    options: ApolloClient.MutateOptions<TData, TVariables>,
    resultOf: (data: TData) => { __typename: string },
    clear: () => void,
  ) => {
    event.preventDefault();
    onCloseAlert();
    const data = await mutateOr(apollo, options, (error) => onFailure(error, column.id));
    if (data && !onReport(resultOf(data), undefined, column.id)) clear();
  };

  const addCard = (event: FormEvent) =>
    submit(
      event,
      {
        mutation: AddCardDocument,
        variables: { input: { columnId: column.id, title, afterCardId: cards.at(-1)?.id ?? null } },
      },
      (data) => data.addCard,
      () => setTitle(''),
    );

  const setWipLimit = (event: FormEvent) =>
    submit(
      event,
      {
        mutation: SetWipLimitDocument,
        variables: {
          input: {
            columnId: column.id,
            expectedVersion: column.version,
            wipLimit: wip === '' ? null : Number(wip),
          },
        },
      },
      (data) => data.setWipLimit,
      () => setWip(''),
    );

  return (
    <section
      ref={setNodeRef}
      className={`column${isOver ? ' over' : ''}${full ? ' full' : ''}${highlightedBy.has(column.id) ? ' flash' : ''}`}
      data-testid="column"
      data-column-id={column.id}
      data-column-name={column.name}
      aria-label={`Column ${column.name}`}
    >
      <header>
        <h2>{column.name}</h2>
        <span className="wip" data-testid="wip" title="cards / WIP limit">
          {column.cardCount}
          {column.wipLimit !== null ? ` / ${column.wipLimit}` : ''}
        </span>
      </header>
      {alert && <AlertBox alert={alert} onClose={onCloseAlert} testId="column-alert" />}
      <ol className="cards">
        {cards.map((card) => (
          <CardView
            key={card.id}
            card={card}
            changedBy={highlightedBy.get(card.id) ?? null}
            columnNames={columnNames}
            neighbours={neighbours}
            onMove={onMove}
            onKeyboardMove={onKeyboardMove}
            readOnly={readOnly}
          />
        ))}
      </ol>
      <fieldset className="column-controls" disabled={readOnly}>
        <form className="add-card" onSubmit={(event) => void addCard(event)}>
          <input
            aria-label={`New card in ${column.name}`}
            placeholder="New card"
            required
            value={title}
            onChange={(e) => setTitle(e.target.value)}
          />
          <button type="submit">Add</button>
        </form>
        <form className="wip-form" onSubmit={(event) => void setWipLimit(event)}>
          <input
            aria-label={`WIP limit of ${column.name}`}
            type="number"
            min={0}
            placeholder={column.wipLimit === null ? 'no WIP limit' : `WIP ${column.wipLimit}`}
            value={wip}
            onChange={(e) => setWip(e.target.value)}
          />
          <button type="submit">Set WIP</button>
        </form>
      </fieldset>
      <button
        type="button"
        className="link"
        aria-expanded={showArchived}
        onClick={() => setShowArchived(!showArchived)}
      >
        {showArchived ? 'Hide archived' : 'Show archived'}
      </button>
      {showArchived && (
        <ArchivedCards
          column={column}
          readOnly={readOnly}
          onReport={onReport}
          onFailure={onFailure}
        />
      )}
    </section>
  );
}
