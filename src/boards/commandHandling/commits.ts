import { IdempotencyKeyReused, VersionConflict } from '../../eventstore/errors.js';
import {
  ANY,
  NO_STREAM,
  type AppendRequest,
  type AppendResult,
  type EventStore,
  type StreamAppend,
  type StreamHead,
} from '../../eventstore/types.js';
import { aggregates } from '../aggregates.js';
import { splitIntoCommits, type Decision } from '../decision.js';
import { toNewEvent, type DomainEvent, type SchemaVersions } from '../domainEvent.js';
import type { ErrorCode } from '../errors.js';
import { toStreamName } from '../streams.js';
import type { CommittedChange } from './defineCommand.js';
import type { LoadSession } from './loadSession.js';
import {
  activeTraceContext,
  Attr,
  countRoundTripsOf,
  inSpan,
  SpanName,
} from '../../telemetry/spans.js';

/**
 * Turning a decision into one append, and an append (or the earlier commit an
 * idempotency key points to) into the {@link CommittedChange} a spec succeeds with.
 */

/**
 * Appends `request`, or returns the store's `VersionConflict` when a stream moved on, or its
 * `IdempotencyKeyReused` when the key stands for another request. In a span of its own
 * (position, outcome; the store client's commands are its children); a traced request's
 * commit carries the span's trace context, for the projection and live push to link to.
 */
export async function appendOnce(
  store: EventStore,
  request: AppendRequest,
  signal: AbortSignal | undefined,
): Promise<AppendResult | VersionConflict | IdempotencyKeyReused> {
  const attributes = {
    [Attr.AppendStreams]: request.streams.length,
    [Attr.AppendEvents]: request.streams.reduce((n, s) => n + s.events.length, 0),
  };
  return inSpan(SpanName.Append, { attributes }, async (span) => {
    countRoundTripsOf(span);
    const traceContext = activeTraceContext();
    const traced: AppendRequest = traceContext
      ? { ...request, metadata: { ...request.metadata, traceContext } }
      : request;
    try {
      const appended = await store.append(traced, { signal });
      span.setAttributes({ [Attr.Position]: appended.position, [Attr.AppendOutcome]: 'committed' });
      return appended;
    } catch (error) {
      if (error instanceof VersionConflict || error instanceof IdempotencyKeyReused) {
        span.setAttribute(Attr.AppendOutcome, error.name);
        return error;
      }
      throw error;
    }
  });
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
  earlierCommits: readonly number[] = [],
): AppendRequest {
  const streams = decision.map((change): StreamAppend => {
    const stream = toStreamName(change.aggregate, change.id);
    const read = session.versionRead(stream);
    const schemaVersions = aggregates[change.aggregate]
      .schemaVersions as SchemaVersions<DomainEvent>;
    return {
      stream,
      // A stream the attempt did not read is one the command creates, unless the
      // decision appends to it at any version.
      expected:
        read !== undefined && read > 0 ? read : change.atAnyVersion === true ? ANY : NO_STREAM,
      events: change.events.map((event: DomainEvent) => toNewEvent(schemaVersions, event)),
    };
  });
  // Streams the decision rests on but does not write: asserted at the version read (a
  // condition, no event). A stream read as absent cannot be asserted this way; the
  // loaders assert an existing one instead (see `loadBoardAccess`).
  const written = new Set(streams.map((s) => s.stream));
  for (const { stream, version } of session.assertedStreams()) {
    if (written.has(stream)) continue;
    if (version === 0) throw new Error(`cannot assert ${stream}: it was read as absent`);
    streams.push({ stream, expected: version, events: [] });
  }
  return {
    streams,
    ...(idempotencyKey !== undefined && { idempotencyKey, requestFingerprint }),
    metadata: {
      actor,
      operation,
      ...(merged && { merged: true }),
      ...(earlierCommits.length > 0 && { [EARLIER_COMMITS]: [...earlierCommits] }),
    },
  };
}

/**
 * The metadata field of the commit holding a command's idempotency key that lists the
 * positions of the commits the command made before it (a decision spanning commits), so
 * that a replay answers the whole run, as the first answer did, not its last commit alone.
 */
export const EARLIER_COMMITS = 'earlierCommits';

/**
 * Whether `heads` are what appending `request` would produce (else the store replayed a
 * key). A stream appended at `ANY` version says nothing either way; the request's other
 * streams do.
 */
export function isOwnCommit(request: AppendRequest, heads: readonly StreamHead[]): boolean {
  return (
    heads.length === request.streams.length &&
    request.streams.every((s, i) => {
      if (heads[i]?.stream !== s.stream) return false;
      if (s.expected === ANY) return true;
      const base = typeof s.expected === 'number' ? s.expected : 0;
      return heads[i].version === base + s.events.length;
    })
  );
}

/**
 * Appends `decision` as one commit, or as consecutive commits when it is too big
 * for one (`splitIntoCommits`), each at the heads the previous one left; the
 * idempotency key goes on the last. Each commit made is handed to `landed` as it lands:
 * a later commit losing a race returns the conflict, and the commits before it stand
 * (the attempt is redone on fresh state, where what was committed is no longer to do).
 * Returns the last commit.
 */
export async function appendCommits(
  operation: {
    name: string;
    actor: string | null;
    idempotencyKey: string | undefined;
    requestFingerprint: string | undefined;
  },
  session: LoadSession,
  decision: Decision,
  merged: boolean,
  landed: LandedCommits,
  signal: AbortSignal | undefined,
): Promise<CommittedChange | VersionConflict | IdempotencyKeyReused> {
  const commits = splitIntoCommits(decision);
  let commit: CommittedChange | undefined;
  for (const [index, part] of commits.entries()) {
    const key = index === commits.length - 1 ? operation.idempotencyKey : undefined;
    const request = toAppendRequest(
      operation.name,
      operation.actor,
      key,
      operation.requestFingerprint,
      session,
      part,
      merged,
      key === undefined ? [] : landed.positions,
    );
    const appended = await appendOnce(session.store, request, signal);
    if (appended instanceof VersionConflict || appended instanceof IdempotencyKeyReused) {
      return appended;
    }
    session.advance(appended.streams);
    // A condition's head is no stream the commit wrote.
    const conditions = new Set(
      request.streams.filter((s) => s.events.length === 0).map((s) => s.stream),
    );
    const own = isOwnCommit(request, appended.streams);
    commit = {
      commitId: appended.commitId,
      position: appended.position,
      heads: appended.streams.filter((head) => !conditions.has(head.stream)),
      merged: own && merged,
      replayed: !own,
    };
    landed.add(commit);
  }
  if (!commit) throw new Error(`${operation.name}: nothing to append`);
  return commit;
}

/**
 * The commits one command has made so far, over all its attempts: more than one when
 * its decision spans several commits. What they wrote stands whatever happens to the
 * rest, so the command answers with them (`commit`), never with a failure.
 */
export class LandedCommits {
  readonly #heads = new Map<string, number>();
  readonly #positions: number[] = [];
  #last: CommittedChange | undefined;

  add(commit: CommittedChange): void {
    for (const head of commit.heads) this.#heads.set(head.stream, head.version);
    this.#positions.push(commit.position);
    this.#last = commit;
  }

  /** Whether any commit landed. */
  get any(): boolean {
    return this.#last !== undefined;
  }

  /** The positions of the commits landed so far, in the order they landed. */
  get positions(): readonly number[] {
    return this.#positions;
  }

  /**
   * The last commit's id, position and flags, with the head of every stream any commit
   * wrote, and what stopped the rest, if anything did.
   */
  commit(stoppedBy?: ErrorCode): CommittedChange {
    const last = this.#last;
    if (!last) throw new Error('no commit landed');
    const heads = [...this.#heads].map(([stream, version]) => ({ stream, version }));
    return { ...last, heads, ...(stoppedBy !== undefined && { stoppedBy }) };
  }
}

/**
 * The commit at `position`, which carried the command's idempotency key, with the heads
 * of every stream its run wrote (it and the commits it lists in `EARLIER_COMMITS`).
 */
export async function replayedCommit(
  store: EventStore,
  position: number,
  signal: AbortSignal | undefined,
): Promise<CommittedChange> {
  const read = async (at: number) => {
    const [found] = await store.readAll({ after: at - 1, limit: 1, signal });
    if (!found) throw new Error(`commit at position ${at} not found`);
    return found;
  };
  const commit = await read(position);
  // The commits of the same run before this one, then this one: the heads they left.
  const earlier = commit.metadata[EARLIER_COMMITS];
  const run = Array.isArray(earlier)
    ? [...(await Promise.all(earlier.map((at) => read(Number(at))))), commit]
    : [commit];
  const heads = new Map<string, number>();
  for (const event of run.flatMap((c) => c.events)) {
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
