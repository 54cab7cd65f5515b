/**
 * The body of one append transaction: the stream heads, the commit document at a reserved
 * position and the idempotency record, and the reads that decide a failed expectation.
 * Retries, commit outcomes and deadlines are the append protocol's (`appendProtocol.ts`).
 */
import { randomUUID } from 'node:crypto';
import type { AnyBulkWriteOperation, ClientSession, Collection, UpdateFilter } from 'mongodb';
import { IdempotencyKeyReused, VersionConflict } from '../errors.js';
import { fingerprintOf } from '../idempotency.js';
import { NO_STREAM, type StreamAppend } from '../types.js';
import type { AppendRequest, AppendResult, StreamHead } from '../types.js';
import { satisfies } from '../validation.js';
import {
  MAJORITY,
  WRITE_BSON_OPTIONS,
  toAppendResult,
  type CommitDoc,
  type CommitEventDoc,
  type IdempotencyDoc,
  type StreamHeadDoc,
} from './documents.js';
import type { MongoPositions } from './positions.js';

export interface CommitWriterOptions {
  streams: Collection<StreamHeadDoc>;
  commits: Collection<CommitDoc>;
  idempotency: Collection<IdempotencyDoc>;
  positions: MongoPositions;
  now: () => Date;
  /** How long an idempotency key is remembered after its commit. */
  idempotencyTtlMs: number;
}

/** Writes one append inside its transaction (see `write`). */
export class CommitWriter {
  readonly #options: CommitWriterOptions;

  constructor(options: CommitWriterOptions) {
    this.#options = options;
  }

  /**
   * The body of the transaction, ordered so that a conflict costs little and nothing
   * shared is ever held:
   *
   * 1. Heads: a read only for streams appended with `ANY` or `STREAM_EXISTS`; then one
   *    bulk write: a conditional update (`{ _id, version: expected }`) per existing
   *    stream, an insert per new one. A head changed after our snapshot or held by another
   *    transaction fails with WriteConflict (112, TransientTransactionError: manual,
   *    "In-progress Transactions and Write Conflicts") and the attempt runs again; a head
   *    at another version matches nothing, and a new stream that exists is a duplicate
   *    key: the expectation failed, and only then are the heads read, to say how.
   * 2. The position, reserved outside the transaction (one atomic `$inc` on the counter,
   *    acknowledged by the primary alone: a commit that uses it is majority-committed only
   *    after the increment, which precedes it in the oplog, is too). `draft.commit` is set
   *    from here on, so the caller closes the position if the attempt fails.
   *    Which session reserved it is recorded next (`MongoPositions.recordReservation`), before the commit
   *    document exists, so a dead appender's open transaction can be ended by whoever closes
   *    its position.
   * 3. The commit document at that position; then the idempotency key, inserted unless
   *    a live record holds it (an expired one the TTL monitor has not removed yet is
   *    replaced): a live one is a duplicate key, and the caller returns its first result.
   */
  async write(session: ClientSession, request: AppendRequest, draft: Draft): Promise<void> {
    const from = await this.#fromVersions(session, request);
    const updates: AnyBulkWriteOperation<StreamHeadDoc>[] = [];
    const inserts: StreamHeadDoc[] = [];
    for (const s of request.streams) {
      const base = from.get(s.stream)!;
      const version = base + s.events.length;
      if (base === 0) inserts.push({ _id: s.stream, version });
      else
        updates.push({
          updateOne: { filter: { _id: s.stream, version: base }, update: headUpdate(s, version) },
        });
    }
    // One command for the updates, one for the inserts (as one bulk write would send them),
    // the updates first so that a failed expectation stops the attempt before any insert.
    if (updates.length > 0) {
      const updated = await this.#options.streams.bulkWrite(updates, { session, ordered: true });
      if (updated.matchedCount !== updates.length) throw new ExpectationFailed();
    }
    if (inserts.length > 0)
      await this.#options.streams.insertMany(inserts, { session, ordered: true });

    const position = await this.#options.positions.reserve();
    const commit = this.newCommit(request, position, from);
    draft.commit = commit;
    draft.heads = headsAfter(request, from);
    await this.#options.positions.recordReservation(session, commit.position);
    const write = { session, ...WRITE_BSON_OPTIONS };
    await this.#options.commits.insertOne(commit, write);
    const key = request.idempotencyKey;
    if (key !== undefined) {
      const record: IdempotencyDoc = {
        _id: key,
        result: toAppendResult(commit, draft.heads),
        fingerprint: fingerprintOf(request),
        expiresAt: new Date(commit.occurredAt.getTime() + this.#options.idempotencyTtlMs),
      };
      await this.#options.idempotency.replaceOne(
        { _id: key, expiresAt: { $lte: this.#options.now() } },
        record,
        {
          ...write,
          upsert: true,
        },
      );
    }
  }

  /**
   * The version each stream of the request is appended after: the expected one when it
   * is exact (0 for `NO_STREAM`), the head read in the transaction for `ANY` and
   * `STREAM_EXISTS` (whose expectation is checked here).
   */
  async #fromVersions(
    session: ClientSession,
    request: AppendRequest,
  ): Promise<Map<string, number>> {
    const from = new Map<string, number>();
    const unknown: StreamAppend[] = [];
    for (const s of request.streams) {
      if (s.expected === NO_STREAM) from.set(s.stream, 0);
      else if (typeof s.expected === 'number') from.set(s.stream, s.expected);
      else unknown.push(s);
    }
    if (unknown.length > 0) {
      const { actual, conflict } = await this.readHeads({ streams: unknown }, { session });
      if (conflict) throw conflict;
      for (const s of unknown) from.set(s.stream, actual.get(s.stream) ?? 0);
    }
    return from;
  }

  newCommit(request: AppendRequest, position: number, actual: Map<string, number>): CommitDoc {
    const events: CommitEventDoc[] = [];
    for (const s of request.streams) {
      let version = actual.get(s.stream) ?? 0;
      for (const e of s.events) {
        version += 1;
        events.push({
          eventId: randomUUID(),
          stream: s.stream,
          version,
          type: e.type,
          data: e.data,
          schemaVersion: e.schemaVersion ?? 1,
        });
      }
    }
    return {
      _id: randomUUID(),
      position,
      occurredAt: this.#options.now(),
      actor: request.metadata?.actor ?? null,
      operation: request.metadata?.operation ?? null,
      metadata: request.metadata ?? {},
      idempotencyKey: request.idempotencyKey ?? null,
      events,
    };
  }

  /**
   * The unexpired first result of `key`, read at majority: a replay must not return a
   * commit that a failover could still roll back, and it reads at the same level as
   * `readAll`, which a caller uses next to fetch the replayed commit. Throws
   * `IdempotencyKeyReused` when the key was recorded for another request.
   */
  async firstResult(key: string, fingerprint: string): Promise<AppendResult | undefined> {
    const doc = await this.#options.idempotency.findOne({ _id: key }, { readConcern: MAJORITY });
    if (!doc || doc.expiresAt <= this.#options.now()) return undefined;
    if (doc.fingerprint !== fingerprint) throw new IdempotencyKeyReused(key);
    return doc.result;
  }

  /**
   * The heads of the request's streams, and the first stream whose expectation they do not
   * satisfy. Inside the transaction (`session`) for `ANY` and `STREAM_EXISTS`; outside it,
   * at majority, after an expectation failed (a conditional head update matched nothing, or
   * a new stream's insert was a duplicate key), to name the stream that conflicts.
   */
  async readHeads(
    request: AppendRequest,
    options: { session?: ClientSession } = {},
  ): Promise<{ actual: Map<string, number>; conflict: VersionConflict | undefined }> {
    const names = request.streams.map((s) => s.stream);
    const heads = await this.#options.streams
      .find(
        { _id: { $in: names } },
        options.session ? { session: options.session } : { readConcern: MAJORITY },
      )
      .toArray();
    const actual = new Map(heads.map((h) => [h._id, h.version]));
    for (const s of request.streams) {
      const version = actual.get(s.stream) ?? 0;
      if (!satisfies(s.expected, version)) {
        return { actual, conflict: new VersionConflict(s.stream, s.expected, version) };
      }
    }
    return { actual, conflict: undefined };
  }
}

/** What one transaction attempt has written so far. */
export interface Draft {
  /** The commit document, once its position is reserved. */
  commit?: CommitDoc;
  /** The heads it leaves, in request order. */
  heads?: StreamHead[];
}

/**
 * A version-conditional head update matched nothing: the head is not at the expected
 * version (one at it that changed after our snapshot is a WriteConflict instead).
 */
export class ExpectationFailed extends Error {
  override readonly name = 'ExpectationFailed';
}

/** Heads after the commit, in request order. */
/**
 * The update of an existing stream's head. A condition (a stream with no events) must
 * still modify the document: under snapshot isolation only a write makes a concurrent
 * write of the same document a WriteConflict, and an update that leaves a document as it
 * was writes nothing (MongoDB manual, "In-progress Transactions and Stale Reads": modify
 * the document you read, e.g. set a new lock id; SERVER-77616: a no-op findOneAndUpdate
 * gives no write conflict). Without it a commit that moved the stream after this
 * transaction's snapshot would not stop this one.
 */
function headUpdate(s: StreamAppend, version: number): UpdateFilter<StreamHeadDoc> {
  return s.events.length === 0
    ? { $set: { version }, $inc: { conditions: 1 } }
    : { $set: { version } };
}

function headsAfter(request: AppendRequest, actual: Map<string, number>): StreamHead[] {
  return request.streams.map((s) => ({
    stream: s.stream,
    version: (actual.get(s.stream) ?? 0) + s.events.length,
  }));
}
