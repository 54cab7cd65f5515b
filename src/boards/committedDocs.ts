import type { EventStore, RecordedEvent } from '../eventstore/types.js';
import { foldEvents } from './aggregates.js';
import { nextBoardDoc, type BoardDoc } from './board/readModel.js';
import { toCardDoc, type CardDoc } from './card/readModel.js';
import { toColumnDoc, type ColumnDoc } from './column/readModel.js';
import { stampsOfStream } from './docStamps.js';
import { toStreamName } from './streams.js';
import { unreachable } from './unreachable.js';
import { toUserDoc, type UserDoc } from './user/readModel.js';

/** A read document of each resource type. */
export interface DocOfType {
  User: UserDoc;
  Board: BoardDoc;
  Column: ColumnDoc;
  Card: CardDoc;
}

/** The position of the last commit each document built by `committedDoc` folds in. */
const positions = new WeakMap<object, number>();

/**
 * The global position a document built by {@link committedDoc} shows its resource as of
 * (its last folded event's commit); undefined for any other document (a read model's).
 */
export const committedDocPosition = (doc: object): number | undefined => positions.get(doc);

/** How far {@link committedDoc} folds a stream: every bound given holds. */
export interface CommittedDocBound {
  /** The resource's own version (the one a mutation wrote). */
  version?: number;
  /** A global commit position (what another document built here shows, for its holder). */
  position?: number;
}

/**
 * A resource's read document as its committed events tell it, for a mutation that
 * committed but whose payload the read model cannot show (the read-your-writes wait ran
 * out, or the author lost access to the resource after the commit): the payload then
 * still shows what was written. Built from the event store, the book of record, by the
 * aggregate's own document mapper (`toCardDoc`...), the one the projections use; up to
 * `upTo` when given (the version the mutation wrote, or the position of a document it
 * holds: nothing newer). Null when the stream holds no such resource.
 */
export async function committedDoc<T extends keyof DocOfType>(
  store: EventStore,
  type: T,
  id: string,
  signal?: AbortSignal,
  upTo: CommittedDocBound = {},
): Promise<DocOfType[T] | null> {
  const kind = ({ User: 'user', Board: 'board', Column: 'column', Card: 'card' } as const)[type];
  const stream = await store.readStream(toStreamName(kind, id), { signal });
  const { version = Infinity, position = Infinity } = upTo;
  const events = stream.filter((e) => e.version <= version && e.position <= position);
  const first = events[0];
  const last = events.at(-1);
  if (!first || !last) return null;
  const stamps = stampsOfStream(first, last);
  const doc = docOf(kind, events, stamps) as DocOfType[T] | null;
  if (doc) positions.set(doc, last.position);
  return doc;
}

function docOf(
  kind: 'user' | 'board' | 'column' | 'card',
  events: readonly RecordedEvent[],
  stamps: ReturnType<typeof stampsOfStream>,
): UserDoc | BoardDoc | ColumnDoc | CardDoc | null {
  switch (kind) {
    case 'user': {
      const user = foldEvents('user', events);
      return user.status === 'registered' ? toUserDoc(user, stamps) : null;
    }
    case 'board': {
      // Event by event, as the projection does: each member's `since` is their commit's time.
      let doc: BoardDoc | null = null;
      for (const event of events) doc = nextBoardDoc(doc, event, event.occurredAt);
      return doc;
    }
    case 'column': {
      const column = foldEvents('column', events);
      return column.status === 'active' ? toColumnDoc(column, stamps) : null;
    }
    case 'card': {
      const card = foldEvents('card', events);
      return card.status === 'absent' ? null : toCardDoc(card, stamps);
    }
    default:
      return unreachable(kind);
  }
}
