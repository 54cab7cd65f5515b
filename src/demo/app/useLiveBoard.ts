import { useApolloClient, useQuery } from '@apollo/client/react';
import {
  AccessEndReason,
  BoardDocument,
  accessEndedOf,
  type AppliedChanges,
  type BoardRole,
} from '@corkboard/client';
import { liveBoard } from '@corkboard/client/apollo';
import { useCallback, useEffect, useRef, useState } from 'react';
import type { Board } from './boardTypes.js';
import type { Connection } from './connection.js';
import { sessionEnded } from './errors.js';
import type { Membership } from './Members.js';

/** How long a change by another member stays highlighted. */
const HIGHLIGHT_MS = 2_500;
/** How many changes by others the activity list keeps. */
const ACTIVITY_LENGTH = 30;

/** One line of the "Changes by others" list. */
export interface Activity {
  key: string;
  text: string;
}

/** What `useLiveBoard` answers. */
export interface LiveBoardState {
  /** The board, once read (null until then). */
  board: Board | null;
  /** Who (display name) changed each highlighted card or column, by ID. */
  highlights: ReadonlyMap<string, string>;
  /** Changes by other members, newest first. */
  activity: Activity[];
  /** The members with their roles, and the viewer's own role (null until read). */
  members: { memberships: readonly Membership[]; role: BoardRole | null };
  /** Leaves the board with this reason (once: later calls do nothing). */
  leave: (reason: string) => void;
}

/**
 * Why the page left the board, from what ended its live subscription: the SDK's
 * `BoardAccessEndedError` says whether an owner removed the viewer or they left (the
 * binding has cleared the board from the cache by then); anything else stopped the
 * updates.
 */
export function whyEnded(error: unknown, boardId: string): string {
  const ended = accessEndedOf(error, boardId);
  if (ended) {
    switch (ended.reason) {
      case AccessEndReason.Removed:
        return 'An owner removed you from that board: you are no longer a member.';
      case AccessEndReason.Left:
        return LEFT_NOTICE;
      case AccessEndReason.NotFound:
        return 'That board is gone, or you are no longer one of its members.';
      default: {
        const unknown: never = ended.reason;
        return unknown;
      }
    }
  }
  const detail = error instanceof Error ? ` (${error.message})` : '';
  return `The board's live updates stopped${detail}; open it again to retry.`;
}

/** What the page says when the viewer left the board (their own removeMember). */
export const LEFT_NOTICE = 'You left the board.';

/** The board to follow, for whom, and what to call when following it ends. */
export interface LiveBoardProps {
  boardId: string;
  viewerId: string;
  connection: Connection;
  /** Called once, with the reason, when the board is gone for this viewer. */
  onLeave: (reason: string) => void;
  /** Called when the server refused the viewer's token. */
  onSessionEnded: () => void;
}

/**
 * One board, live: `liveBoard` keeps the cache fresh from the board's changes alone (no
 * refetch per change), and the Board query reads it once the binding is ready. Changes by
 * other members are highlighted for a moment and listed. `onLeave` is called once, with
 * the reason, when the board is gone for this viewer (its subscription ended with an
 * error, or the board reads as null); `onSessionEnded` when the server refused the token.
 */
export function useLiveBoard({
  boardId,
  viewerId,
  connection,
  onLeave,
  onSessionEnded,
}: LiveBoardProps): LiveBoardState {
  const apollo = useApolloClient();
  const [ready, setReady] = useState(false);
  const [highlights, setHighlights] = useState<ReadonlyMap<string, string>>(new Map());
  const [activity, setActivity] = useState<Activity[]>([]);
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
      const others = changes.filter((change) => change.actor && change.actor.id !== viewerId);
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
    [viewerId],
  );

  useEffect(() => {
    const binding = liveBoard(apollo, boardId, {
      onApplied,
      // Before the binding clears the board from the cache (the Board query would then
      // read null and say less): an owner removed the viewer, or they left.
      onAccessEnded: (ended) => leave(whyEnded(ended, boardId)),
    });
    binding.ready.then(
      () => setReady(true),
      () => {},
    );
    binding.done.catch((error: unknown) => leave(whyEnded(error, boardId)));
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
  const board = data?.board ?? null;
  useEffect(() => {
    if (data && !data.board) {
      leave('That board does not exist, or you are not one of its members.');
    }
  }, [data, leave]);
  useEffect(() => {
    if (sessionEnded(error)) onSessionEnded();
  }, [error, onSessionEnded]);

  // The members and roles come with the board (the SDK's BoardFields select them, and
  // each change the push carries writes them): no query of their own, no refetch.
  const members = {
    memberships: board?.memberships ?? [],
    role: board?.viewerRole ?? null,
  };

  return { board, highlights, activity, members, leave };
}
