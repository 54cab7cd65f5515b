import { closestCenter, pointerWithin, type CollisionDetection } from '@dnd-kit/core';
import { liveCards, type Board, type Card, type Placement } from './boardTypes.js';

/** Cards under the pointer win over their column; the keyboard has no pointer. */
export const collisions: CollisionDetection = (args) => {
  const hits = args.pointerCoordinates ? pointerWithin(args) : closestCenter(args);
  const cards = hits.filter((hit) => String(hit.id).startsWith('card:'));
  return cards.length > 0 ? cards : hits;
};

/**
 * Where a card dropped on `overId` (`card:<id>`: before that card; `column:<id>`: at the
 * column's end) goes; null when the drop would not move it.
 */
export function dropPlacement(board: Board, card: Card, overId: string): Placement | null {
  const [kind, id] = overId.split(/:(.*)/s) as [string, string];
  if (kind === 'card') {
    if (id === card.id) return null;
    const column = board.columns.find((c) => liveCards(c).some((other) => other.id === id));
    return column ? { toColumnId: column.id, beforeCardId: id } : null;
  }
  const column = board.columns.find((c) => c.id === id);
  if (!column) return null;
  const cards = liveCards(column);
  if (cards.at(-1)?.id === card.id) return null; // already last there
  const others = cards.filter((other) => other.id !== card.id);
  return { toColumnId: column.id, afterCardId: others.at(-1)?.id ?? null };
}

/**
 * Where Alt+arrow `key` on a focused card moves it: to the end of the neighbouring
 * column (←/→), or one place up or down in its own (↑/↓); null at an edge.
 */
export function keyboardPlacement(board: Board, card: Card, key: string): Placement | null {
  const index = board.columns.findIndex((c) => c.id === card.column.id);
  const column = board.columns[index];
  if (!column) return null;
  const cards = liveCards(column);
  const at = cards.findIndex((c) => c.id === card.id);
  switch (key) {
    case 'ArrowLeft':
    case 'ArrowRight': {
      const target = board.columns[index + (key === 'ArrowLeft' ? -1 : 1)];
      return target
        ? { toColumnId: target.id, afterCardId: liveCards(target).at(-1)?.id ?? null }
        : null;
    }
    case 'ArrowUp':
      return at > 0 ? { toColumnId: column.id, beforeCardId: cards[at - 1]!.id } : null;
    case 'ArrowDown':
      return at >= 0 && at < cards.length - 1
        ? { toColumnId: column.id, afterCardId: cards[at + 1]!.id }
        : null;
    default:
      return null;
  }
}
