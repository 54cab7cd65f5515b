import { IdempotencyKeyReused, VersionConflict } from '../../eventstore/errors.js';
import {
  NO_STREAM,
  type AppendRequest,
  type AppendResult,
  type EventStore,
  type StreamAppend,
  type StreamHead,
} from '../../eventstore/types.js';
import { aggregates } from '../aggregates.js';
import type { Decision } from '../decision.js';
import { toNewEvent, type DomainEvent, type SchemaVersions } from '../domainEvent.js';
import { toStreamName } from '../streams.js';
import type { CommittedChange } from './defineCommand.js';
import type { LoadSession } from './loadSession.js';

/**
 * Turning a decision into one append, and an append (or the earlier commit an
 * idempotency key points to) into the {@link CommittedChange} a spec succeeds with.
 */

/**
 * Appends `request`, or returns the store's `VersionConflict` when a stream moved on, or its
 * `IdempotencyKeyReused` when the key stands for another request.
 */
export async function appendOnce(
  store: EventStore,
  request: AppendRequest,
  signal: AbortSignal | undefined,
): Promise<AppendResult | VersionConflict | IdempotencyKeyReused> {
  try {
    return await store.append(request, { signal });
  } catch (error) {
    if (error instanceof VersionConflict || error instanceof IdempotencyKeyReused) return error;
    throw error;
  }
}

/** What one attempt appends: every stream of `decision` at the version `session` read. */
export function toAppendRequest(
  operation: string,
  actor: string | null,
  idempotencyKey: string | undefined,
  requestFingerprint: string | undefined,
  session: LoadSession,
  decision: Decision,
  merged: boolean,
): AppendRequest {
  const streams = decision.map((change): StreamAppend => {
    const stream = toStreamName(change.aggregate, change.id);
    const read = session.versionRead(stream);
    const schemaVersions = aggregates[change.aggregate]
      .schemaVersions as SchemaVersions<DomainEvent>;
    return {
      stream,
      // A stream the attempt did not read is one the command creates.
      expected: read === undefined || read === 0 ? NO_STREAM : read,
      events: change.events.map((event: DomainEvent) => toNewEvent(schemaVersions, event)),
    };
  });
  return {
    streams,
    ...(idempotencyKey !== undefined && { idempotencyKey, requestFingerprint }),
    metadata: { actor, operation, ...(merged && { merged: true }) },
  };
}

/** Whether `heads` are what appending `request` would produce (else the store replayed a key). */
export function isOwnCommit(request: AppendRequest, heads: readonly StreamHead[]): boolean {
  return (
    heads.length === request.streams.length &&
    request.streams.every((s, i) => {
      const base = typeof s.expected === 'number' ? s.expected : 0;
      return heads[i]?.stream === s.stream && heads[i].version === base + s.events.length;
    })
  );
}

/** The commit at `position`, which carried the command's idempotency key. */
export async function replayedCommit(
  store: EventStore,
  position: number,
  signal: AbortSignal | undefined,
): Promise<CommittedChange> {
  const [commit] = await store.readAll({ after: position - 1, limit: 1, signal });
  if (!commit) throw new Error(`commit at position ${position} not found`);
  const heads = new Map<string, number>();
  for (const event of commit.events) {
    heads.set(event.stream, Math.max(heads.get(event.stream) ?? 0, event.version));
  }
  return {
    commitId: commit.commitId,
    position: commit.position,
    heads: [...heads].map(([stream, version]) => ({ stream, version })),
    merged: commit.metadata.merged === true,
    replayed: true,
  };
}
