import {
  DndContext,
  KeyboardSensor,
  PointerSensor,
  useSensor,
  useSensors,
  type DragEndEvent,
} from '@dnd-kit/core';
import { useApolloClient } from '@apollo/client/react';
import { MoveCardDocument } from '@corkboard/client';
import { useState } from 'react';
import { accessOf } from './access.js';
import { AlertBox } from './AlertBox.js';
import { BoardActions } from './BoardActions.js';
import type { Alert, Card, Failure, Placement, Report } from './boardTypes.js';
import { ColumnView } from './ColumnView.js';
import { ConnectionIndicator } from './ConnectionIndicator.js';
import { describeError, failureText, isApiError } from './errors.js';
import { Members } from './Members.js';
import { collisions, dropPlacement, keyboardPlacement } from './moves.js';
import type { Viewer } from './SignIn.js';
import { LEFT_NOTICE, useLiveBoard, type LiveBoardProps } from './useLiveBoard.js';
import { mutateOr } from './mutate.js';

/**
 * One board, live: its columns and cards in order, kept fresh by `liveBoard` from the
 * board's changes alone (no refetch per change), with drag and drop, keyboard moves,
 * WIP limits, members, and a brief highlight of what other members change.
 */
export function BoardView({
  viewer,
  ...live
}: Omit<LiveBoardProps, 'viewerId'> & { viewer: Viewer }) {
  const { connection } = live;
  const apollo = useApolloClient();
  const [alert, setAlert] = useState<Alert | null>(null);
  const { board, highlights, activity, members, leave } = useLiveBoard({
    ...live,
    viewerId: viewer.id,
  });

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
    const moved = await mutateOr(
      apollo,
      {
        mutation: MoveCardDocument,
        variables: { input: { cardId: card.id, expectedVersion: card.version, ...placement } },
      },
      (error) => fail(error, placement.toColumnId),
    );
    const result = moved?.moveCard;
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
  const access = accessOf(board, members.role);

  const onDragEnd = ({ active, over }: DragEndEvent) => {
    const card = (active.data.current as { card?: Card } | undefined)?.card;
    if (!card || !over) return;
    const placement = dropPlacement(board, card, String(over.id));
    if (placement) void moveCard(card, placement);
  };

  /** Alt+arrows on a focused card: to the neighbouring column, or up and down in its own. */
  const keyboardMove = (card: Card, key: string) => {
    const placement = keyboardPlacement(board, card, key);
    if (placement) void moveCard(card, placement);
  };

  return (
    <main className="board" data-testid="board" data-board-id={board.id}>
      <div className="board-head">
        <h1>{board.name}</h1>
        <ConnectionIndicator connection={connection} />
        <BoardActions board={board} access={access} onReport={report} onFailure={fail} />
      </div>
      <p className="muted hint">
        Drag cards between columns, or focus a card and press Alt+←/→ to move it across, Alt+↑/↓ to
        reorder (Space picks a card up for the keyboard drag).
      </p>
      {access.readOnlyReason && (
        <p className="read-only" role="status" data-testid="read-only">
          {access.readOnlyReason}
        </p>
      )}
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
              readOnly={!access.canEdit}
            />
          ))}
        </div>
      </DndContext>
      <div className="side">
        <Members
          board={board}
          memberships={members.memberships}
          viewerId={viewer.id}
          access={access}
          onReport={report}
          onFailure={fail}
          onLeft={() => leave(LEFT_NOTICE)}
        />
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
