import { generateKeyBetween } from 'fractional-indexing';
import { BoardRole, type BoardAccess } from '../../src/boards/board/access.js';
import type { BoardEvent } from '../../src/boards/board/events.js';
import type { MembershipState } from '../../src/boards/membership/state.js';
import { evolveBoard, initialBoardState, type BoardState } from '../../src/boards/board/state.js';
import type { CardEvent } from '../../src/boards/card/events.js';
import { evolveCard, initialCardState, type CardState } from '../../src/boards/card/state.js';
import type { ColumnEvent } from '../../src/boards/column/events.js';
import {
  evolveColumn,
  initialColumnState,
  type ColumnState,
} from '../../src/boards/column/state.js';
import type { DecideContext, Decision, StreamChange } from '../../src/boards/decision.js';
import type { UsernameClaimEvent } from '../../src/boards/user/events.js';
import {
  evolveUsernameClaim,
  initialUsernameClaimState,
  type UsernameClaimState,
} from '../../src/boards/user/state.js';

/** Given: the state each aggregate reaches after these events. */
export const given = {
  board: (...events: BoardEvent[]): BoardState => events.reduce(evolveBoard, initialBoardState),
  /**
   * Access to the board after these events, decided on the board stream alone (as for a
   * member whose membership stream is empty); `membership` to decide on that instead.
   */
  access: (
    events: BoardEvent[],
    membership: MembershipState = { status: 'absent' },
  ): BoardAccess => ({ board: events.reduce(evolveBoard, initialBoardState), membership }),
  column: (...events: ColumnEvent[]): ColumnState =>
    events.reduce(evolveColumn, initialColumnState),
  card: (...events: CardEvent[]): CardState => events.reduce(evolveCard, initialCardState),
  claim: (...events: UsernameClaimEvent[]): UsernameClaimState =>
    events.reduce(evolveUsernameClaim, initialUsernameClaimState),
};

/** A decide context whose `newId` hands out `ids` in order. */
export function contextWithIds(...ids: string[]): DecideContext {
  const queue = [...ids];
  return {
    now: new Date('2025-01-01T00:00:00Z'),
    newId: () => {
      const id = queue.shift();
      if (id === undefined) throw new Error('test ran out of ids');
      return id;
    },
  };
}

/** Two adjacent ranks so close that any key between them is longer than `length`. */
export function crowdedRanks(length = 50): { low: string; high: string } {
  let low = 'a0';
  const high = 'a1';
  while (generateKeyBetween(low, high).length <= length) low = generateKeyBetween(low, high);
  return { low, high };
}

export const owner = 'u-owner';
export const member = 'u-member';
export const stranger = 'u-stranger';
export const boardId = 'b1';

/** Events of a board owned by `owner` with `member` added and columns placed. */
export function boardEvents(...columns: [id: string, rank: string][]): BoardEvent[] {
  return [
    { type: 'BoardCreated', data: { boardId, name: 'Roadmap', ownerId: owner } },
    { type: 'MemberAdded', data: { userId: member, role: BoardRole.Editor } },
    ...columns.map(([columnId, rank]): BoardEvent => ({
      type: 'ColumnPlaced',
      data: { columnId, rank },
    })),
  ];
}

/** Events of a column of board `b1` holding the given cards. */
export function columnEvents(
  columnId: string,
  wipLimit: number | null,
  ...cards: [id: string, rank: string][]
): ColumnEvent[] {
  return [
    { type: 'ColumnCreated', data: { columnId, boardId, name: columnId, wipLimit } },
    ...cards.map(([cardId, rank]): ColumnEvent => ({
      type: 'CardEntered',
      data: { cardId, rank },
    })),
  ];
}

/** `CardCreated` of a card of board `b1`. */
export function cardCreated(cardId: string, columnId: string, rank: string): CardEvent {
  return {
    type: 'CardCreated',
    data: { cardId, boardId, columnId, title: cardId, description: '', rank },
  };
}

type EventsByAggregate = { [C in StreamChange as C['aggregate']]: C['events'] };

/** The events a decision has for one aggregate (the first of its kind, or the one with `id`). */
export function eventsOf<K extends StreamChange['aggregate']>(
  decision: Decision,
  aggregate: K,
  id?: string,
): EventsByAggregate[K] {
  const change = decision.find(
    (c) => c.aggregate === aggregate && (id === undefined || c.id === id),
  );
  return (change?.events ?? []) as EventsByAggregate[K];
}

/** What `run` threw; fails when it did not throw. */
export function thrown(run: () => unknown): unknown {
  try {
    run();
  } catch (error) {
    return error;
  }
  throw new Error('expected an error');
}
