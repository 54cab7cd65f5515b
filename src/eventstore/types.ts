/**
 * The event store's vocabulary. Domain-agnostic: nothing here knows about boards.
 */

/** The stream must not exist yet (no event has ever been appended to it). */
export const NO_STREAM = 'NO_STREAM';
/** The stream must already hold at least one event, at whatever version. */
export const STREAM_EXISTS = 'STREAM_EXISTS';
/** No check: append at the stream's current head. */
export const ANY = 'ANY';

/**
 * What the writer believes about a stream's head. An exact version (1, 2, 3...)
 * or one of the three special expectations.
 */
export type ExpectedVersion = number | typeof NO_STREAM | typeof STREAM_EXISTS | typeof ANY;

/** An event as a writer proposes it. */
export interface NewEvent {
  type: string;
  data: Readonly<Record<string, unknown>>;
  /**
   * Version of `data`'s shape for this event type. Readers lift older shapes with upcasters.
   * @default 1
   */
  schemaVersion?: number;
}

/** An event as the store recorded it. */
export interface RecordedEvent {
  type: string;
  data: Record<string, unknown>;
  schemaVersion: number;
  stream: string;
  /** 1 for the first event of a stream, then 2, 3... with no gap. */
  version: number;
  eventId: string;
  commitId: string;
  /** Position of the commit in the global log (see `Commit.position`). */
  position: number;
  actor: string | null;
  idempotencyKey: string | null;
  occurredAt: Date;
}

/**
 * W3C trace context (`traceparent`, `tracestate` headers' values) of the work that made a
 * commit, so work done on the commit later, in any process, can link to that trace.
 */
export interface TraceContext {
  traceparent: string;
  tracestate?: string;
}

/** Free-form facts about a commit, recorded with it. */
export interface CommitMetadata {
  /** Who caused the commit (a user id), or null for the system. */
  actor?: string | null;
  /** What caused it, e.g. the mutation name `moveCard`. */
  operation?: string;
  /**
   * The trace of the request that made the commit, when it was traced; not part of the
   * request's default idempotency fingerprint (a retry is traced anew).
   */
  traceContext?: TraceContext;
  /** Anything else worth keeping; must be JSON-serialisable. */
  [key: string]: unknown;
}

/**
 * One stream of an append. With no events it is a condition: the commit goes ahead only if
 * the stream (which must exist: `expected` an exact version >= 1) is still at `expected`
 * when it commits, and nothing is written to it. A commit that changes the stream
 * concurrently makes one of the two fail, as if both had written it.
 */
export interface StreamAppend {
  stream: string;
  expected: ExpectedVersion;
  events: readonly NewEvent[];
}

export interface AppendRequest {
  /**
   * One or more distinct streams, all committed together or not at all; at least one of
   * them with events.
   */
  streams: readonly StreamAppend[];
  /**
   * A retry with the same key returns the first commit's result and writes nothing,
   * even when the two race.
   */
  idempotencyKey?: string;
  /**
   * What `idempotencyKey` stands for: a digest of the whole request as its caller made
   * it (for a command: its input and its actor). The key replays only an append with the
   * same fingerprint; another one raises `IdempotencyKeyReused`. Only meaningful with a
   * key. @default a digest of `streams` and `metadata` (see `fingerprintOf`)
   */
  requestFingerprint?: string;
  metadata?: CommitMetadata;
}

/** The head of one stream after a commit. */
export interface StreamHead {
  stream: string;
  version: number;
}

export interface AppendResult {
  commitId: string;
  position: number;
  /** New head of every stream in the request, in request order. */
  streams: StreamHead[];
  occurredAt: Date;
}

/** One atomic commit: everything one `append` wrote. */
export interface Commit {
  commitId: string;
  /**
   * Where the commit sits in the global log: 1, 2, 3... Every position is either a commit
   * or an explicit gap (an append that reserved it and did not commit; feeds yield a `gap`
   * item for it). Per stream, position order is version order, and a commit that started
   * after another one committed has a higher position.
   */
  position: number;
  occurredAt: Date;
  actor: string | null;
  operation: string | null;
  metadata: CommitMetadata;
  idempotencyKey: string | null;
  /** Events of all streams of the commit, in the order they were appended. */
  events: RecordedEvent[];
}

/**
 * Where a feed consumer is. `position` is the last commit it has fully handled
 * (0 = nothing yet). Adapters may add an opaque `token` (the mongo adapter: the
 * change stream resume token) that lets them resume cheaper than by position.
 */
export interface FeedPosition {
  position: number;
  token?: unknown;
}

/** A live, ordered feed of commits. */
export interface CommitFeed extends AsyncIterable<FeedItem> {
  /** Stops the feed; a pending `next()` resolves as done. */
  close(): Promise<void>;
}

/**
 * One step of a feed, in position order with no position skipped: a commit; a gap (a
 * position whose append did not commit, closed for good: no commit will ever take it);
 * or a heartbeat carrying a fresher checkpoint on a quiet feed (post-batch resume token).
 * `checkpoint` is what to save once the item is handled.
 */
export type FeedItem =
  | { kind: 'commit'; commit: Commit; checkpoint: FeedPosition }
  | { kind: 'gap'; position: number; checkpoint: FeedPosition }
  | { kind: 'heartbeat'; checkpoint: FeedPosition };

export interface ReadStreamOptions {
  /** Only events with version >= this. @default 1 */
  fromVersion?: number;
  signal?: AbortSignal;
}

export interface ReadStreamBackwardOptions {
  /**
   * Only events with version < this (a cursor: the version of the last event the previous
   * page held). @default the stream's head + 1 (start at the newest event)
   */
  before?: number;
  /** At most this many events (>= 1). */
  limit: number;
  signal?: AbortSignal;
}

export interface ReadAllOptions {
  /** Only commits with position > after. @default 0 */
  after?: number;
  /** At most this many commits. @default 1_000 */
  limit?: number;
  signal?: AbortSignal;
}

export interface SubscribeOptions {
  /** Deliver commits after this position. @default { position: 0 } */
  from?: FeedPosition;
}

/** What one move between the hot store and the archive did. */
export interface ArchiveMoveResult {
  /** Commits moved by this call (0 when everything was already where it was asked to be). */
  commits: number;
}

export interface ArchiveMoveOptions {
  signal?: AbortSignal;
}

/**
 * The book of record: append-only streams with atomic multi-stream commits and
 * an ordered feed of commits.
 *
 * Commits live in one of two places behind the same port: the hot store, where appends
 * land, and the archive, where `archiveStreams` moves the commits of streams nobody
 * works on any more. Every read (`readStream`, `readAll`, the feed, idempotent replays)
 * covers both, with the same positions and versions; only where the data sits changes.
 */
export interface EventStore {
  /**
   * Appends to every stream in ONE atomic commit, each only if its head matches
   * `expected`. Throws `VersionConflict` (nothing written) on a mismatch and
   * `EventStoreValidationError` on malformed input.
   */
  append(request: AppendRequest, options?: { signal?: AbortSignal }): Promise<AppendResult>;
  /**
   * Events of one stream in version order, upcast. Empty for an unknown stream. With
   * `fromVersion`, only the events from there on are read (the cost follows them, not
   * the stream's length).
   */
  readStream(stream: string, options?: ReadStreamOptions): Promise<RecordedEvent[]>;
  /**
   * One page of a stream, newest first: the events with version < `before`, at most
   * `limit` of them, upcast. Versions have no gaps, so the page is exactly the versions
   * `[before - limit, before - 1]`: its cost follows `limit`, not the stream's length.
   * Empty for an unknown stream or `before <= 1`.
   */
  readStreamBackward(stream: string, options: ReadStreamBackwardOptions): Promise<RecordedEvent[]>;
  /** Current head version of a stream, 0 when it does not exist. */
  streamVersion(stream: string, options?: { signal?: AbortSignal }): Promise<number>;
  /**
   * Commits after `after` in position order, upcast, up to the first position that is
   * not settled yet (reserved by an append still in flight): what this returns is never
   * followed later by a commit at a lower position. Gaps are skipped, so positions may
   * jump; an empty array means nothing settled after `after`.
   */
  readAll(options?: ReadAllOptions): Promise<Commit[]>;
  /**
   * The highest position visible now (a commit or a gap), 0 when empty. On a store that
   * reserves positions before committing (mongo), lower ones may still be in flight.
   */
  headPosition(): Promise<number>;
  /**
   * The recorded result of the commit that used `idempotencyKey`, when its record has
   * not expired (undefined otherwise). Throws `IdempotencyKeyReused` when the key was
   * recorded for a request with another fingerprint. Waits for an append with the key
   * that is still in flight.
   */
  idempotentResult(
    idempotencyKey: string,
    requestFingerprint: string,
    options?: { signal?: AbortSignal },
  ): Promise<AppendResult | undefined>;
  /**
   * Commits and gaps after `from`, in position order with none skipped, then new ones as
   * they settle. Every feed of a store yields the same sequence.
   */
  subscribe(options?: SubscribeOptions): CommitFeed;
  /**
   * Moves every commit holding an event of one of `streams` out of the hot store onto the
   * archive (a commit that also holds events of other streams moves whole: those streams
   * are then read from both places). Positions, versions and commit ids do not change, and
   * feeds do not see the move. Idempotent and resumable: a move cut short moves the rest
   * when called again, and no commit is ever in neither place or counted twice. Streams
   * stay writable: an append to a moved stream lands in the hot store and its reads join
   * both places.
   */
  archiveStreams(
    streams: readonly string[],
    options?: ArchiveMoveOptions,
  ): Promise<ArchiveMoveResult>;
  /** The reverse of `archiveStreams`: brings every archived commit of `streams` back hot. */
  restoreStreams(
    streams: readonly string[],
    options?: ArchiveMoveOptions,
  ): Promise<ArchiveMoveResult>;
  /** Releases what the store opened itself. */
  close(): Promise<void>;
}
