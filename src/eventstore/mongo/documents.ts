/**
 * The documents the mongo adapter stores, and their mapping to the port's types.
 * Nothing here talks to the server.
 */
import type { Document } from 'mongodb';
import type { AppendResult, Commit, CommitMetadata, StreamHead } from '../types.js';

/** Collection names, one database per event store. */
export const CollectionName = {
  Streams: 'streams',
  Commits: 'commits',
  Counters: 'counters',
  Idempotency: 'idempotency',
  Reservations: 'reservations',
  /** Commits moved off the hot store (`archiveStreams`); same documents as `commits`. */
  ArchiveCommits: 'archive_commits',
} as const;
export type CollectionName = (typeof CollectionName)[keyof typeof CollectionName];

/**
 * BSON options of every write of event data and metadata. By default the driver stores an
 * `undefined` field as `null` (driver docs, "BSON Settings: Undefined Values": "By default,
 * the driver serializes undefined values as null values during write operations"), so
 * `{ note: undefined }` would read back as `{ note: null }`, which a reader may take for an
 * explicit null (e.g. "unassign"). With `ignoreUndefined` the field is left out, as
 * `JSON.stringify` does and as the memory adapter's reads treat it (absent and undefined
 * alike). Undefined array elements still become null, as in JSON.
 */
export const WRITE_BSON_OPTIONS = { ignoreUndefined: true } as const;

/**
 * Every read outside a transaction (stream reads and heads, the idempotency record, the
 * commit log, the feed) uses majority read concern, so none shows a commit that a failover
 * could roll back, and a replay reads the first result and its commit at the same level
 * (a local read could see a key whose commit a majority read does not yet show). Appends
 * commit with
 * w: "majority", which waits until a majority read on the primary sees the write
 * (SERVER-22841), so a caller still reads its own commits.
 */
export const MAJORITY = { level: 'majority' } as const;

/** `_id` of the one counter document that hands out commit positions. */
export const POSITION_COUNTER_ID = 'position';

/** Unique index names; translateAppendError recognises conflicts by them. */
export const IndexName = {
  /**
   * The unique index of the former `events` collection (events were stored twice, there
   * and in their commit); kept so a duplicate on it in a database written by an older
   * version is still read as a version conflict.
   */
  EventsStreamVersion: 'stream_1_version_1_unique',
  CommitsPosition: 'position_1_unique',
  CommitsEventsStreamVersion: 'events.stream_1_events.version_1',
  IdempotencyExpiry: 'expiresAt_1_ttl',
  ReservationsExpiry: 'reservations_expiresAt_1_ttl',
  ArchivePosition: 'archive_position_1_unique',
  ArchiveEventsStreamVersion: 'archive_events.stream_1_events.version_1',
} as const;

/** The head of one stream in `streams`; `_id` is the stream name. */
export interface StreamHeadDoc {
  _id: string;
  version: number;
  /** How many commits asserted the stream without writing to it (each one modifies the head). */
  conditions?: number;
}

/** An event, stored once, inside its commit: what it holds beyond the commit's own fields. */
export interface CommitEventDoc {
  eventId: string;
  stream: string;
  version: number;
  type: string;
  data: Record<string, unknown>;
  schemaVersion: number;
}

/**
 * One commit in `commits`; `_id` is the commitId. The feed's change stream watches
 * inserts into this collection, so one change event is exactly one commit. A position
 * that its append did not commit holds a tombstone instead (`gap: true`, no events; see
 * `gapDoc`).
 */
export interface CommitDoc {
  _id: string;
  position: number;
  /** Present (true) only on a tombstone. */
  gap?: true;
  occurredAt: Date;
  actor: string | null;
  operation: string | null;
  metadata: CommitMetadata;
  idempotencyKey: string | null;
  events: CommitEventDoc[];
}

/**
 * The tombstone of a position that no commit will take. Its `_id` is derived from the
 * position, so every writer of the same tombstone collides on it as well as on
 * `position`.
 */
export function gapDoc(position: number, at: Date): CommitDoc {
  return {
    _id: `gap-${position}`,
    position,
    gap: true,
    occurredAt: at,
    actor: null,
    operation: null,
    metadata: {},
    idempotencyKey: null,
    events: [],
  };
}

/** The single counter document `{ _id: 'position', value }` in `counters`. */
export interface CounterDoc {
  _id: string;
  value: number;
}

/** The first result of an idempotency key in `idempotency`; `_id` is the key. */
export interface IdempotencyDoc {
  _id: string;
  result: AppendResult;
  /** The fingerprint of the request the key stands for (`AppendRequest.requestFingerprint`). */
  fingerprint: string;
  /**
   * When the key is forgotten. A TTL index removes the document some time after (its
   * monitor runs about once a minute), so readers also treat a past `expiresAt` as absent.
   */
  expiresAt: Date;
}

/**
 * Which session reserved a position, in `reservations`; `_id` is the position. Written
 * right after the reservation and before the commit document, outside the transaction, so
 * that whoever has to close the position of a dead appender can end its transaction
 * (`killSessions`) instead of waiting for the server to expire it.
 */
export interface ReservationDoc {
  _id: number;
  /** The server session id (`lsid`) of the reserving transaction, as `killSessions` takes it. */
  lsid: Document;
  /** When the record may go (a TTL index removes it): long after any transaction ended. */
  expiresAt: Date;
}

/** How long a reservation record is kept: far longer than any transaction lives. */
export const RESERVATION_TTL_MS = 60 * 60 * 1000;

/** A stored commit as the port records it (events not yet upcast). */
export function fromCommitDoc(doc: CommitDoc): Commit {
  return {
    commitId: doc._id,
    position: doc.position,
    occurredAt: doc.occurredAt,
    actor: doc.actor,
    operation: doc.operation,
    metadata: doc.metadata,
    idempotencyKey: doc.idempotencyKey,
    events: doc.events.map((e) => ({
      type: e.type,
      data: e.data,
      schemaVersion: e.schemaVersion,
      stream: e.stream,
      version: e.version,
      eventId: e.eventId,
      commitId: doc._id,
      position: doc.position,
      actor: doc.actor,
      idempotencyKey: doc.idempotencyKey,
      occurredAt: doc.occurredAt,
    })),
  };
}

/** The result of an append, as stored for its idempotency key and returned to the caller. */
export function toAppendResult(commit: CommitDoc, streams: StreamHead[]): AppendResult {
  return {
    commitId: commit._id,
    position: commit.position,
    streams,
    occurredAt: commit.occurredAt,
  };
}
