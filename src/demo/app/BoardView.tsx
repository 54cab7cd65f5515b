import {
  DndContext,
  KeyboardSensor,
  PointerSensor,
  closestCenter,
  pointerWithin,
  useDroppable,
  useSensor,
  useSensors,
  type CollisionDetection,
  type DragEndEvent,
} from '@dnd-kit/core';
import { useApolloClient, useQuery } from '@apollo/client/react';
import {
  AddCardDocument,
  AddMemberDocument,
  BoardDocument,
  MoveCardDocument,
  SetWipLimitDocument,
  type AppliedChanges,
  type BoardQuery,
  type CardFieldsFragment,
  type LiveBoard,
} from '@corkboard/client';
import { liveBoard } from '@corkboard/client/apollo';
import { useCallback, useEffect, useRef, useState, type FormEvent } from 'react';
import { CardView } from './CardView.js';
import type { Connection, ConnectionState } from './connection.js';
import { describeError, failureText, isApiError, sessionEnded } from './errors.js';
import type { Viewer } from './SignIn.js';

type Board = NonNullable<BoardQuery['board']>;
export type Column = Board['columns'][number];
export type Card = CardFieldsFragment;

/** Where a move puts a card in its target column. */
export interface Placement {
  toColumnId: string;
  afterCardId?: string | null;
  beforeCardId?: string | null;
}

/** How long a change by another member stays highlighted. */
const HIGHLIGHT_MS = 2_500;
/** How many changes by others the activity list keeps. */
const ACTIVITY_LENGTH = 30;

interface Activity {
  key: string;
  text: string;
}

/** Shows an error result, if `result` is one; a conflict offers `retry` with the version it names. */
type Report = (
  result: { __typename: string },
  retry?: (actualVersion: number) => void,
  columnId?: string,
) => boolean;

/** Shows a request that failed outright. */
type Failure = (error: unknown, columnId?: string) => void;

/** A message about the last write, with the retry it offers (if any). */
interface Alert {
  text: string;
  columnId?: string;
  retry?: () => void;
}

const liveCards = (column: Column): Card[] =>
  column.cards.edges.map((edge) => edge.node).filter((card) => !card.archived);

/** Cards under the pointer win over their column; the keyboard has no pointer. */
const collisions: CollisionDetection = (args) => {
  const hits = args.pointerCoordinates ? pointerWithin(args) : closestCenter(args);
  const cards = hits.filter((hit) => String(hit.id).startsWith('card:'));
  return cards.length > 0 ? cards : hits;
};

/** The connection indicator: live, reconnecting or resyncing. */
function ConnectionIndicator({ connection }: { connection: Connection }) {
  const [state, setState] = useState<ConnectionState>(connection.state());
  useEffect(() => connection.onState(setState), [connection]);
  return (
    <span
      className={`connection ${state}`}
      data-testid="connection"
      data-state={state}
      role="status"
    >
      {state}
    </span>
  );
}

/**
 * One board, live: its columns and cards in order, kept fresh by `liveBoard` from the
 * board's changes alone (no refetch per change), with drag and drop, keyboard moves,
 * WIP limits, members, and a brief highlight of what other members change.
 */
export function BoardView({
  boardId,
  viewer,
  connection,
  onLeave,
  onSessionEnded,
}: {
  boardId: string;
  viewer: Viewer;
  connection: Connection;
  onLeave: (reason: string) => void;
  onSessionEnded: () => void;
}) {
  const apollo = useApolloClient();
  const [ready, setReady] = useState(false);
  const [highlights, setHighlights] = useState<ReadonlyMap<string, string>>(new Map());
  const [activity, setActivity] = useState<Activity[]>([]);
  const [alert, setAlert] = useState<Alert | null>(null);
  const live = useRef<LiveBoard | null>(null);
  const left = useRef(false);
  // The parent's callback may change on every render; the live binding must not restart.
  const onLeaveRef = useRef(onLeave);
  onLeaveRef.current = onLeave;
  const leave = useCallback((reason: string) => {
    if (left.current) return;
    left.current = true;
    onLeaveRef.current(reason);
  }, []);

  const onApplied = useCallback(
    ({ changes }: AppliedChanges) => {
      const others = changes.filter((change) => change.actor && change.actor.id !== viewer.id);
      if (others.length === 0) return;
      const touched = new Map<string, string>();
      for (const change of others) {
        // A card's change names its columns too: flash the card, and a column only
        // when the change was the column's own (its name or WIP limit).
        const ofCards = change.changed.some((node) => node.__typename === 'Card');
        for (const node of change.changed) {
          if (node.__typename === 'Card' || (node.__typename === 'Column' && !ofCards)) {
            touched.set(node.id, change.actor!.displayName);
          }
        }
      }
      setHighlights((current) => new Map([...current, ...touched]));
      setTimeout(() => {
        setHighlights((current) => {
          const next = new Map(current);
          for (const [id, who] of touched) if (next.get(id) === who) next.delete(id);
          return next;
        });
      }, HIGHLIGHT_MS);
      setActivity((current) =>
        [
          ...others.map((change) => ({
            key: change.cursor,
            text: `${change.actor!.displayName}: ${change.operation}${change.changed
              .filter((node) => node.__typename === 'Card')
              .map((node) => ` “${'title' in node ? node.title : ''}”`)
              .join(',')}`,
          })),
          ...current,
        ].slice(0, ACTIVITY_LENGTH),
      );
    },
    [viewer.id],
  );

  useEffect(() => {
    const binding = liveBoard(apollo, boardId, { onApplied });
    live.current = binding;
    binding.ready.then(
      () => setReady(true),
      () => {},
    );
    binding.done.catch(() => leave('You no longer have access to that board.'));
    const unsubscribe = connection.onReconnected(() => {
      // Catch up with what changed while the socket was down: the subscription replays
      // it, and the board is read afresh in case the replay was cut short.
      void apollo
        .refetchQueries({ include: [BoardDocument] })
        .then(() => binding.idle())
        .finally(() => connection.caughtUp());
    });
    return () => {
      unsubscribe();
      live.current = null;
      void binding.stop();
    };
  }, [apollo, boardId, connection, onApplied, leave]);

  // Sent once the binding is ready, so the answer misses no change; from the network
  // each time the board opens, as the binding was not following it before.
  const { data, error } = useQuery(BoardDocument, {
    variables: { id: boardId },
    skip: !ready,
    fetchPolicy: 'cache-and-network',
    nextFetchPolicy: 'cache-first',
  });
  const board = data?.board;
  useEffect(() => {
    if (data && !board) leave('That board does not exist, or you are not one of its members.');
  }, [data, board, leave]);
  useEffect(() => {
    if (sessionEnded(error)) onSessionEnded();
  }, [error, onSessionEnded]);

  /** Shows an error result (false when it is none); a conflict offers `retry` at its version. */
  const report: Report = (result, retry, columnId) => {
    if (!isApiError(result)) return false;
    const conflict = result.__typename === 'VersionConflictError' ? result : null;
    setAlert({
      text: describeError(result),
      ...(columnId ? { columnId } : {}),
      ...(retry && conflict ? { retry: () => retry(conflict.actualVersion) } : {}),
    });
    return true;
  };

  /** Shows a request that failed outright (offline, refused) beside the column it was for. */
  const fail: Failure = (error, columnId) =>
    setAlert({ text: failureText(error), ...(columnId ? { columnId } : {}) });

  const moveCard = async (card: Card, placement: Placement): Promise<void> => {
    setAlert(null);
    let moved;
    try {
      moved = await apollo.mutate({
        mutation: MoveCardDocument,
        variables: { input: { cardId: card.id, expectedVersion: card.version, ...placement } },
      });
    } catch (error) {
      fail(error, placement.toColumnId);
      return;
    }
    const result = moved.data?.moveCard;
    if (!result) return;
    report(
      result,
      (version) => void moveCard({ ...card, version }, placement),
      placement.toColumnId,
    );
  };

  const sensors = useSensors(
    useSensor(PointerSensor, { activationConstraint: { distance: 6 } }),
    useSensor(KeyboardSensor),
  );

  if (!board) {
    return (
      <main className="board">
        <p className="muted">Loading the board…</p>
        <ConnectionIndicator connection={connection} />
      </main>
    );
  }

  const columnNames = new Map(board.columns.map((c) => [c.id, c.name]));

  const placementOf = (card: Card, overId: string): Placement | null => {
    const [kind, id] = overId.split(/:(.*)/s) as [string, string];
    if (kind === 'card') {
      if (id === card.id) return null;
      const column = board.columns.find((c) => liveCards(c).some((other) => other.id === id));
      return column ? { toColumnId: column.id, beforeCardId: id } : null;
    }
    const column = board.columns.find((c) => c.id === id);
    if (!column) return null;
    const others = liveCards(column).filter((other) => other.id !== card.id);
    if (card.column.id === column.id && others.length === liveCards(column).length - 1) {
      const last = liveCards(column).at(-1);
      if (last?.id === card.id) return null; // already last there
    }
    return { toColumnId: column.id, afterCardId: others.at(-1)?.id ?? null };
  };

  const onDragEnd = ({ active, over }: DragEndEvent) => {
    const card = (active.data.current as { card?: Card } | undefined)?.card;
    if (!card || !over) return;
    const placement = placementOf(card, String(over.id));
    if (placement) void moveCard(card, placement);
  };

  /** Alt+arrows on a focused card: to the neighbouring column, or up and down in its own. */
  const keyboardMove = (card: Card, key: string) => {
    const index = board.columns.findIndex((c) => c.id === card.column.id);
    const column = board.columns[index];
    if (!column) return;
    const cards = liveCards(column);
    const at = cards.findIndex((c) => c.id === card.id);
    switch (key) {
      case 'ArrowLeft':
      case 'ArrowRight': {
        const target = board.columns[index + (key === 'ArrowLeft' ? -1 : 1)];
        if (target) {
          void moveCard(card, {
            toColumnId: target.id,
            afterCardId: liveCards(target).at(-1)?.id ?? null,
          });
        }
        break;
      }
      case 'ArrowUp':
        if (at > 0) void moveCard(card, { toColumnId: column.id, beforeCardId: cards[at - 1]!.id });
        break;
      case 'ArrowDown':
        if (at < cards.length - 1) {
          void moveCard(card, { toColumnId: column.id, afterCardId: cards[at + 1]!.id });
        }
        break;
      default:
        break;
    }
  };

  return (
    <main className="board" data-testid="board" data-board-id={board.id}>
      <div className="board-head">
        <h1>{board.name}</h1>
        <ConnectionIndicator connection={connection} />
      </div>
      <p className="muted hint">
        Drag cards between columns, or focus a card and press Alt+←/→ to move it across, Alt+↑/↓ to
        reorder (Space picks a card up for the keyboard drag).
      </p>
      {alert && !alert.columnId && (
        <AlertBox alert={alert} onClose={() => setAlert(null)} testId="board-alert" />
      )}
      <DndContext sensors={sensors} collisionDetection={collisions} onDragEnd={onDragEnd}>
        <div className="columns">
          {board.columns.map((column, index) => (
            <ColumnView
              key={column.id}
              column={column}
              highlightedBy={highlights}
              columnNames={columnNames}
              alert={alert?.columnId === column.id ? alert : null}
              onCloseAlert={() => setAlert(null)}
              onReport={report}
              onFailure={fail}
              onKeyboardMove={keyboardMove}
              neighbours={{
                left: board.columns[index - 1] ?? null,
                right: board.columns[index + 1] ?? null,
              }}
              onMove={moveCard}
            />
          ))}
        </div>
      </DndContext>
      <div className="side">
        <Members board={board} onReport={report} onFailure={fail} />
        <section className="activity" aria-label="Changes by others">
          <h2>Changes by others</h2>
          <ul data-testid="activity">
            {activity.length === 0 && <li className="muted">none yet</li>}
            {activity.map((item) => (
              <li key={item.key}>{item.text}</li>
            ))}
          </ul>
        </section>
      </div>
    </main>
  );
}

function AlertBox({
  alert,
  onClose,
  testId,
}: {
  alert: Alert;
  onClose: () => void;
  testId: string;
}) {
  return (
    <div className="alert" role="alert" data-testid={testId}>
      <span>{alert.text}</span>
      {alert.retry && (
        <button type="button" onClick={alert.retry}>
          Retry
        </button>
      )}
      <button type="button" onClick={onClose}>
        Dismiss
      </button>
    </div>
  );
}

function ColumnView({
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
}) {
  const apollo = useApolloClient();
  const { setNodeRef, isOver } = useDroppable({ id: `column:${column.id}` });
  const [title, setTitle] = useState('');
  const [wip, setWip] = useState('');
  const cards = liveCards(column);
  const full = column.wipLimit !== null && column.cardCount >= column.wipLimit;

  const addCard = async (event: FormEvent) => {
    event.preventDefault();
    onCloseAlert();
    let added;
    try {
      added = await apollo.mutate({
        mutation: AddCardDocument,
        variables: { input: { columnId: column.id, title, afterCardId: cards.at(-1)?.id ?? null } },
      });
    } catch (error) {
      onFailure(error, column.id);
      return;
    }
    const result = added.data?.addCard;
    if (result && !onReport(result, undefined, column.id)) setTitle('');
  };

  const setWipLimit = async (event: FormEvent) => {
    event.preventDefault();
    onCloseAlert();
    let set;
    try {
      set = await apollo.mutate({
        mutation: SetWipLimitDocument,
        variables: {
          input: {
            columnId: column.id,
            expectedVersion: column.version,
            wipLimit: wip === '' ? null : Number(wip),
          },
        },
      });
    } catch (error) {
      onFailure(error, column.id);
      return;
    }
    const result = set.data?.setWipLimit;
    if (result && !onReport(result, undefined, column.id)) setWip('');
  };

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
          />
        ))}
      </ol>
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
    </section>
  );
}

function Members({
  board,
  onReport,
  onFailure,
}: {
  board: Board;
  onReport: Report;
  onFailure: Failure;
}) {
  const apollo = useApolloClient();
  const [username, setUsername] = useState('');
  const add = async (event: FormEvent) => {
    event.preventDefault();
    let added;
    try {
      added = await apollo.mutate({
        mutation: AddMemberDocument,
        variables: { input: { boardId: board.id, username, expectedVersion: board.version } },
      });
    } catch (error) {
      onFailure(error);
      return;
    }
    const result = added.data?.addMember;
    if (result && !onReport(result)) setUsername('');
  };
  return (
    <section className="members" aria-label="Members">
      <h2>Members</h2>
      <ul data-testid="members">
        {board.members.map((member) => (
          <li key={member.id}>
            {member.displayName} <span className="muted">@{member.username}</span>
          </li>
        ))}
      </ul>
      <form className="inline" onSubmit={(event) => void add(event)}>
        <input
          aria-label="Username to add"
          placeholder="username"
          required
          value={username}
          onChange={(e) => setUsername(e.target.value)}
        />
        <button type="submit">Add member</button>
      </form>
    </section>
  );
}
