import type {
  ArchivePlan,
  GroupStreams,
  MoveDirection,
  PlannedMove,
} from '../../eventstore/archiveSweeper.js';
import { VersionConflict } from '../../eventstore/errors.js';
import { NO_STREAM, type EventStore } from '../../eventstore/types.js';
import type { ReadModelStore } from '../../projector/types.js';
import { membershipId } from '../board/access.js';
import { parseBoardEvent } from '../board/events.js';
import { parseColumnEvent } from '../column/events.js';
import { toNewEvent } from '../domainEvent.js';
import {
  archiveRecordStream,
  cardStream,
  columnStream,
  StreamKind,
  toStreamName,
} from '../streams.js';
import { archiveRecordSchemaVersions, type ArchiveRecordEvent } from './events.js';
import { boardPlacementReadModel } from './readModel.js';

/** Column streams read at once while listing a board's streams. */
const COLUMN_READS_IN_FLIGHT = 8;

/**
 * Every stream of a board, from the event log (archived commits included): the board's,
 * the membership stream of everyone ever added to it (its creator included), every column
 * ever placed on it (archived ones too), every card that ever entered one of
 * them. `since`: when the board was last archived, null when it is live (or absent).
 */
export async function boardStreams(
  store: EventStore,
  boardId: string,
  signal?: AbortSignal,
): Promise<GroupStreams> {
  const board = toStreamName(StreamKind.Board, boardId);
  const columnIds = new Set<string>();
  const memberIds = new Set<string>();
  let since: Date | null = null;
  for (const stored of await store.readStream(board, signal ? { signal } : {})) {
    const event = parseBoardEvent(stored);
    if (event.type === 'ColumnPlaced') columnIds.add(event.data.columnId);
    else if (event.type === 'BoardCreated') memberIds.add(event.data.ownerId);
    else if (event.type === 'MemberAdded') memberIds.add(event.data.userId);
    else if (event.type === 'BoardArchived') since = stored.occurredAt;
    else if (event.type === 'BoardRestored') since = null;
  }
  const cardIds = new Set<string>();
  const columns = [...columnIds];
  for (let i = 0; i < columns.length; i += COLUMN_READS_IN_FLIGHT) {
    const reads = columns.slice(i, i + COLUMN_READS_IN_FLIGHT).map(async (columnId) => {
      for (const stored of await store.readStream(
        columnStream(columnId),
        signal ? { signal } : {},
      )) {
        const event = parseColumnEvent(stored);
        if (event.type === 'CardEntered') cardIds.add(event.data.cardId);
      }
    });
    await Promise.all(reads);
  }
  return {
    streams: [
      board,
      ...[...memberIds].map((userId) =>
        toStreamName(StreamKind.Membership, membershipId(boardId, userId)),
      ),
      ...columns.map(columnStream),
      ...[...cardIds].map(cardStream),
    ],
    since,
  };
}

export interface BoardArchivePlanOptions {
  store: EventStore;
  /** Where the `boardPlacements` read model is (the projector's storage). */
  readModels: ReadModelStore;
}

/**
 * The archive sweeper's plan for boards: due boards from the `boardPlacements` read model
 * (one indexed query per direction), a board's streams from the event log, and each move
 * recorded on the board's archive record stream, conditional on the version listed.
 */
export function createBoardArchivePlan({
  store,
  readModels,
}: BoardArchivePlanOptions): ArchivePlan {
  const record = async (move: PlannedMove, event: ArchiveRecordEvent): Promise<boolean> => {
    try {
      await store.append({
        streams: [
          {
            stream: archiveRecordStream(move.group),
            expected: move.token === 0 ? NO_STREAM : move.token,
            events: [toNewEvent(archiveRecordSchemaVersions, event)],
          },
        ],
        metadata: { actor: null, operation: 'archiveSweep' },
      });
      return true;
    } catch (error) {
      if (error instanceof VersionConflict) return false;
      throw error;
    }
  };
  return {
    async due(direction: MoveDirection, limit: number, signal: AbortSignal) {
      const view = await readModels.active({ signal });
      const { filter, sort } = boardPlacementReadModel.queries.due;
      const docs = await boardPlacementReadModel
        .documents(view)
        .find(filter(direction), { sort, limit, signal });
      return docs.map((doc): PlannedMove => ({
        group: doc._id,
        direction,
        since: doc.archivedAt === null ? null : new Date(doc.archivedAt),
        token: doc.recordVersion,
      }));
    },
    streamsOf: (group, signal) => boardStreams(store, group, signal),
    async begin(move) {
      const { group: boardId, direction } = move;
      const started = await record(move, {
        type: 'ArchiveMoveStarted',
        data: { boardId, direction },
      });
      return started ? { ...move, token: move.token + 1 } : null;
    },
    end: (move) =>
      record(move, {
        type: 'ArchiveMoveEnded',
        data: { boardId: move.group, direction: move.direction },
      }),
  };
}
