import { useDraggable, useDroppable } from '@dnd-kit/core';
import { useApolloClient } from '@apollo/client/react';
import { ArchiveCardDocument, EditCardDocument, type EditCardInput } from '@corkboard/client';
import { useState, type FormEvent, type KeyboardEvent } from 'react';
import type { Card, Column, Placement } from './boardTypes.js';
import { CardHistory } from './CardHistory.js';
import { describeError, failureText, isApiError } from './errors.js';
import { mutateOr } from './mutate.js';

/** The card fields the editor writes. */
type Draft = Pick<Card, 'title' | 'description'>;

/** A same-field conflict, as the API explained it. */
interface Conflict {
  /** Who changed what since the version the edit started from. */
  changes: { who: string; fields: string[]; version: number }[];
  /** The card's version now: a retry over their change sends this. */
  actualVersion: number;
  /** The fields this edit sets. */
  mine: Partial<Draft>;
}

/**
 * A card: draggable (pointer and keyboard), a drop target (a card dropped on it goes
 * before it), buttons to move it to the neighbouring columns, and an editor that sends
 * only the fields changed, with the version the edit started from. A conflict is shown
 * as the API explains it (who changed which field) with a choice: write mine over
 * theirs, or keep theirs. Never a silent overwrite.
 */
export function CardView({
  card,
  changedBy,
  columnNames,
  neighbours,
  onMove,
  onKeyboardMove,
  readOnly,
}: {
  card: Card;
  changedBy: string | null;
  columnNames: ReadonlyMap<string, string>;
  neighbours: { left: Column | null; right: Column | null };
  onMove: (card: Card, placement: Placement) => Promise<void>;
  onKeyboardMove: (card: Card, key: string) => void;
  /** The viewer may not write (a viewer, or the board is archived): no drag, edit, move or archive. */
  readOnly: boolean;
}) {
  const apollo = useApolloClient();
  const drag = useDraggable({ id: `drag:${card.id}`, data: { card } });
  const drop = useDroppable({ id: `card:${card.id}` });
  const [editing, setEditing] = useState<{ base: Card; draft: Draft } | null>(null);
  const [conflict, setConflict] = useState<Conflict | null>(null);
  const [message, setMessage] = useState<string | null>(null);
  const [historyOpen, setHistoryOpen] = useState(false);
  /** Sets one field of the draft being edited. */
  const setDraft = (current: { base: Card; draft: Draft }, field: keyof Draft, value: string) =>
    setEditing({ ...current, draft: { ...current.draft, [field]: value } });

  const style = drag.transform
    ? { transform: `translate3d(${drag.transform.x}px, ${drag.transform.y}px, 0)`, zIndex: 10 }
    : undefined;

  const save = async (fields: Partial<Draft>, expectedVersion: number) => {
    setMessage(null);
    if (Object.keys(fields).length === 0) {
      setEditing(null);
      return;
    }
    const input: EditCardInput = { cardId: card.id, expectedVersion, ...fields };
    const edited = await mutateOr(
      apollo,
      { mutation: EditCardDocument, variables: { input } },
      (error) => setMessage(failureText(error)),
    );
    const result = edited?.editCard;
    if (!result) return;
    if (result.__typename === 'EditCardSuccess') {
      setEditing(null);
      setConflict(null);
      if (result.merged) setMessage('Saved, merged with changes by others to other fields.');
      return;
    }
    if (result.__typename === 'VersionConflictError') {
      setConflict({
        changes: result.conflicts.map((c) => ({
          who: c.actor?.displayName ?? 'someone',
          fields: c.fields,
          version: c.version,
        })),
        actualVersion: result.actualVersion,
        mine: fields,
      });
      return;
    }
    setMessage(isApiError(result) ? describeError(result) : 'Not saved.');
  };

  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (!editing) return;
    const changed: Partial<Draft> = {};
    if (editing.draft.title !== editing.base.title) changed.title = editing.draft.title;
    if (editing.draft.description !== editing.base.description) {
      changed.description = editing.draft.description;
    }
    void save(changed, editing.base.version);
  };

  const archive = async () => {
    const archived = await mutateOr(
      apollo,
      {
        mutation: ArchiveCardDocument,
        variables: { input: { cardId: card.id, expectedVersion: card.version } },
      },
      (error) => setMessage(failureText(error)),
    );
    const result = archived?.archiveCard;
    if (result && isApiError(result)) setMessage(describeError(result));
  };

  const onKeyDown = (event: KeyboardEvent<HTMLElement>) => {
    if (event.target !== event.currentTarget) return;
    if (readOnly) return;
    if (event.altKey && event.key.startsWith('Arrow')) {
      event.preventDefault();
      onKeyboardMove(card, event.key);
      return;
    }
    drag.listeners?.onKeyDown?.(event);
  };

  const moveTo = (column: Column) =>
    void onMove(card, {
      toColumnId: column.id,
      afterCardId: column.cards.edges.filter((e) => !e.node.archived).at(-1)?.node.id ?? null,
    });

  /** The button moving the card to the neighbouring column `to`, when there is one. */
  const moveButton = (to: Column | null, arrow: string) =>
    to && (
      <button
        type="button"
        aria-label={`Move to ${to.name}`}
        disabled={readOnly}
        onClick={() => moveTo(to)}
      >
        {arrow}
      </button>
    );

  return (
    <li
      ref={(node) => {
        drag.setNodeRef(node);
        drop.setNodeRef(node);
      }}
      style={style}
      className={`card${drag.isDragging ? ' dragging' : ''}${drop.isOver ? ' over' : ''}${changedBy ? ' flash' : ''}${card.done ? ' done' : ''}`}
      data-testid="card"
      data-card-id={card.id}
      data-title={card.title}
      data-version={card.version}
      // Read-only: no drag handles (not dnd-kit's `disabled`, whose aria-disabled would mark
      // the whole card, History included, as disabled).
      {...(readOnly ? { tabIndex: 0 } : { ...drag.attributes, ...drag.listeners })}
      onKeyDown={onKeyDown}
      aria-label={`Card ${card.title}`}
    >
      {changedBy && (
        <span className="changed-by" data-testid="changed-by">
          {changedBy}
        </span>
      )}
      {editing ? (
        <form className="editor" onSubmit={submit} onPointerDown={(e) => e.stopPropagation()}>
          <input
            aria-label="Title"
            name="title"
            value={editing.draft.title}
            onChange={(e) => setDraft(editing, 'title', e.target.value)}
          />
          <textarea
            aria-label="Description"
            name="description"
            value={editing.draft.description}
            onChange={(e) => setDraft(editing, 'description', e.target.value)}
          />
          <div className="row">
            <button type="submit">Save</button>
            <button
              type="button"
              onClick={() => {
                setEditing(null);
                setConflict(null);
              }}
            >
              Cancel
            </button>
          </div>
        </form>
      ) : (
        <>
          <div className="title" data-testid="card-title">
            {card.title}
          </div>
          {card.description && (
            <div className="description" data-testid="card-description">
              {card.description}
            </div>
          )}
          {card.labels.length > 0 && (
            <div className="labels">
              {card.labels.map((label) => (
                <span key={label} className="label">
                  {label}
                </span>
              ))}
            </div>
          )}
          <div className="row actions" onPointerDown={(e) => e.stopPropagation()}>
            {moveButton(neighbours.left, '←')}
            <button
              type="button"
              disabled={readOnly}
              onClick={() => {
                setMessage(null);
                setEditing({
                  base: card,
                  draft: { title: card.title, description: card.description },
                });
              }}
            >
              Edit
            </button>
            <button type="button" disabled={readOnly} onClick={() => void archive()}>
              Archive
            </button>
            <button
              type="button"
              aria-expanded={historyOpen}
              onClick={() => setHistoryOpen(!historyOpen)}
            >
              History
            </button>
            {moveButton(neighbours.right, '→')}
          </div>
        </>
      )}
      {conflict && (
        <div className="conflict" role="alert" data-testid="conflict">
          <strong>Not saved: this card changed since you started editing.</strong>
          <ul>
            {conflict.changes.map((change) => (
              <li key={change.version}>
                {change.who} changed {change.fields.join(', ')} (version {change.version})
              </li>
            ))}
          </ul>
          {(Object.keys(conflict.mine) as (keyof Draft)[]).map((field) => (
            <p key={field}>
              {field}: theirs <q>{card[field]}</q>, yours <q>{conflict.mine[field]}</q>
            </p>
          ))}
          <div className="row">
            <button type="button" onClick={() => void save(conflict.mine, conflict.actualVersion)}>
              Save mine over theirs
            </button>
            <button
              type="button"
              onClick={() => {
                setConflict(null);
                setEditing(null);
              }}
            >
              Keep theirs
            </button>
          </div>
        </div>
      )}
      {historyOpen && (
        <div onPointerDown={(e) => e.stopPropagation()}>
          <CardHistory key={card.version} cardId={card.id} columnNames={columnNames} />
        </div>
      )}
      {message && (
        <p className="message" role="status" data-testid="card-message">
          {message}
        </p>
      )}
    </li>
  );
}
