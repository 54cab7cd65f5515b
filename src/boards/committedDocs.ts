import type { EventStore, RecordedEvent } from '../eventstore/types.js';
import { foldEvents } from './aggregates.js';
import type { ResourceType } from './errors.js';
import type { BoardDoc, CardDoc, ColumnDoc, UserDoc } from './readModel.js';
import { normalizeUsername, toStreamName } from './streams.js';

/** A read document of each resource type. */
export interface DocOfType {
  User: UserDoc;
  Board: BoardDoc;
  Column: ColumnDoc;
  Card: CardDoc;
}

/**
 * A resource's read document as its committed events tell it, for a mutation that
 * committed but whose commit is not projected yet (the read-your-writes wait ran
 * out): the payload then still shows what was written. Built from the event store,
 * the book of record, in the same shape the projections write. Null when the stream
 * holds no such resource.
 */
export async function committedDoc<T extends keyof DocOfType>(
  store: EventStore,
  type: T,
  id: string,
  signal?: AbortSignal,
): Promise<DocOfType[T] | null> {
  const kind = ({ User: 'user', Board: 'board', Column: 'column', Card: 'card' } as const)[type];
  const events = await store.readStream(toStreamName(kind, id), { signal });
  const first = events[0];
  const last = events.at(-1);
  if (!first || !last) return null;
  const stamps = {
    _id: id,
    version: last.version,
    createdAt: first.occurredAt,
    updatedAt: last.occurredAt,
  };
  return docOf(type, kind, events, stamps) as DocOfType[T] | null;
}

function docOf(
  type: ResourceType,
  kind: 'user' | 'board' | 'column' | 'card',
  events: readonly RecordedEvent[],
  stamps: { _id: string; version: number; createdAt: Date; updatedAt: Date },
): UserDoc | BoardDoc | ColumnDoc | CardDoc | null {
  switch (kind) {
    case 'user': {
      const user = foldEvents('user', events);
      if (user.status !== 'registered') return null;
      const { username, displayName, tokenHash } = user;
      const { updatedAt: _updatedAt, ...userStamps } = stamps;
      return {
        ...userStamps,
        username,
        usernameKey: normalizeUsername(username),
        displayName,
        ...(tokenHash !== undefined && { tokenHash }),
      };
    }
    case 'board': {
      const board = foldEvents('board', events);
      if (board.status !== 'active') return null;
      return {
        ...stamps,
        name: board.name,
        ownerId: board.ownerId,
        members: [...board.memberIds],
        columns: board.columns.map((c) => ({ id: c.id, rank: c.rank })),
      };
    }
    case 'column': {
      const column = foldEvents('column', events);
      if (column.status !== 'active') return null;
      return {
        ...stamps,
        boardId: column.boardId,
        name: column.name,
        wipLimit: column.wipLimit,
        cardCount: column.cards.size,
      };
    }
    case 'card': {
      const card = foldEvents('card', events);
      if (card.status === 'absent') return null;
      return {
        ...stamps,
        boardId: card.boardId,
        columnId: card.columnId,
        title: card.title,
        description: card.description,
        assigneeId: card.assigneeId,
        labels: [...card.labels],
        done: card.done,
        archived: card.status === 'archived',
        rank: card.rank,
      };
    }
    default:
      throw new Error(`no committed document for ${type}`);
  }
}
