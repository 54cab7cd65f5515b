import type { MoveDirection } from '../../eventstore/archiveSweeper.js';
import { defineReadModel, docType } from '../../projector/readModel.js';
import type { ReadDoc } from '../../projector/types.js';
import { parseBoardEvent } from '../board/events.js';
import { unreachable } from '../unreachable.js';
import { archiveRecordSchemaVersions, parseArchiveRecordEvent } from './events.js';

/** Where the commits of a board's streams are: all hot, mixed (a move started), all archived. */
export type Placement = 'hot' | 'mixed' | 'archive';

/** What the sweeper should do with a board: move it one way, or nothing. */
export type ArchiveDue = MoveDirection | 'none';

/** One board that was ever archived: its state, where its commits are, what is due. */
export interface BoardPlacementDoc extends ReadDoc {
  archived: boolean;
  /** When the board was last archived (epoch ms); null while it is live. */
  archivedAt: number | null;
  placement: Placement;
  /** Version of the board's archive record stream (0: never moved). */
  recordVersion: number;
  /** Derived from the fields above (see {@link dueOf}), so the sweeper's query is one equality. */
  due: ArchiveDue;
}

/**
 * An archived board is due to move to the archive unless all of it is there; a live one
 * is due back unless all of it is hot. Age is the sweeper's business.
 */
export function dueOf(doc: Pick<BoardPlacementDoc, 'archived' | 'placement'>): ArchiveDue {
  if (doc.archived) return doc.placement === 'archive' ? 'none' : 'archive';
  return doc.placement === 'hot' ? 'none' : 'restore';
}

const fresh = (boardId: string): BoardPlacementDoc => ({
  _id: boardId,
  archived: false,
  archivedAt: null,
  placement: 'hot',
  recordVersion: 0,
  due: 'none',
});

const handledBoardEvents = ['BoardArchived', 'BoardRestored'] as const;
const isHandledBoardEvent = (type: string) =>
  (handledBoardEvents as readonly string[]).includes(type);

/**
 * Boards ever archived, for the archive sweeper: fed by the board's `BoardArchived` /
 * `BoardRestored` and its archive record's moves. Not a GraphQL resource: it invalidates
 * nothing and carries nothing to subscribers.
 */
export const boardPlacementReadModel = defineReadModel({
  name: 'boardPlacements',
  collection: 'boardPlacements',
  doc: docType<BoardPlacementDoc>(),
  indexes: [{ key: { due: 1, archivedAt: 1, _id: 1 } }],
  queries: {
    /** Boards due to move `direction`, archived longest first (live ones: archivedAt null). */
    due: { filter: (direction: MoveDirection) => ({ due: direction }), sort: ['archivedAt', 1] },
  },
  projection: {
    handles: [...handledBoardEvents, ...Object.keys(archiveRecordSchemaVersions)],
    async apply({ commit, update }) {
      for (const stored of commit.events) {
        const isRecord = Object.hasOwn(archiveRecordSchemaVersions, stored.type);
        if (!isRecord && !isHandledBoardEvent(stored.type)) continue;
        const { boardId } = stored.data;
        if (typeof boardId !== 'string') throw new Error(`${stored.type} without a boardId`);
        await update<BoardPlacementDoc>(
          boardPlacementReadModel.collection,
          boardId,
          stored,
          (doc) => {
            const next = { ...(doc ?? fresh(boardId)) };
            if (isRecord) {
              const event = parseArchiveRecordEvent(stored);
              next.recordVersion = stored.version;
              switch (event.type) {
                case 'ArchiveMoveStarted':
                  next.placement = 'mixed';
                  break;
                case 'ArchiveMoveEnded':
                  next.placement = event.data.direction === 'archive' ? 'archive' : 'hot';
                  break;
                default:
                  unreachable(event);
              }
            } else {
              next.archived = parseBoardEvent(stored).type === 'BoardArchived';
              next.archivedAt = next.archived ? commit.occurredAt.getTime() : null;
            }
            return { ...next, due: dueOf(next) };
          },
        );
      }
    },
  },
});
