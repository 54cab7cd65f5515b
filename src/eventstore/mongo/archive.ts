/**
 * The mongo adapter's archive: `archive_commits`, a second commit collection with the same
 * documents, the same unique position index and the same stream index as `commits`, and
 * the reads that join the two.
 *
 * Where a commit can be: in `commits` (hot), in `archive_commits`, or (only inside a move's
 * transaction, which no read sees half done) on its way between them. Never in neither
 * once committed, and never in both: a move is one transaction per batch of commits that
 * inserts them on one side and deletes them on the other (manual, "Transactions":
 * "When a transaction commits, all data changes made in the transaction are saved and
 * visible outside the transaction"; until then none are). A move cut short (crash, lost
 * connection) committed whole batches or nothing of the last one, and moving again picks
 * up what is left: the move is idempotent and resumable without a marker.
 *
 * A read of both collections is two queries, so a move can commit between them. The reads
 * here query `commits` first, then `archive_commits`, then `commits` again for what is
 * still missing (a stream read, which knows from its head what it must find, reads both
 * again instead):
 * - a commit being archived is in `commits` until the move commits and in the archive from
 *   then on, so if the first query missed it, the second finds it;
 * - a commit being restored is in the archive until the move commits and in `commits` from
 *   then on, so if the first two missed it, the third finds it.
 * Nothing moves twice within one read: moves run only for boards archived for days.
 *
 * Positions stay unique across both: they come from the position counter, which never
 * goes back, a commit keeps its position when it moves, and a tombstone (a position that
 * no commit took) is only written into `commits` where the unique index refuses it if the
 * position's commit has just been restored there (see `MongoCommitFeed`).
 *
 * The feed: its change stream keeps inserts into `commits` only, so the deletes of a move
 * are never seen; a restore inserts commits at old positions, which a feed past them
 * ignores and one behind them reads in order like any other.
 */
import type {
  ClientSession,
  Collection,
  Db,
  Document,
  MongoClient,
  TransactionOptions,
} from 'mongodb';
import type { ArchiveMoveResult } from '../types.js';
import { streamVersionsMatch, streamVersionsProjection } from './streamPages.js';
import {
  CollectionName,
  IndexName,
  MAJORITY,
  WRITE_BSON_OPTIONS,
  type CommitDoc,
} from './documents.js';

/** Commits moved per transaction: small enough to stay far below the 16 MiB oplog entry. */
export const ARCHIVE_MOVE_BATCH = 50;

/**
 * Options of a move's transactions: snapshot reads, majority commit (as appends), so a
 * moved commit is never visible in one place while a failover can still bring it back
 * in the other.
 */
const MOVE_TRANSACTION: TransactionOptions = {
  readConcern: { level: 'snapshot' },
  writeConcern: { w: 'majority' },
  readPreference: 'primary',
};

/** Creates the archive's indexes: the ones `commits` has for reads by position and stream. */
export async function ensureArchiveIndexes(db: Db): Promise<void> {
  const archive = db.collection<CommitDoc>(CollectionName.ArchiveCommits);
  await archive.createIndex(
    { 'events.stream': 1, 'events.version': 1 },
    { name: IndexName.ArchiveEventsStreamVersion },
  );
  await archive.createIndex({ position: 1 }, { unique: true, name: IndexName.ArchivePosition });
}

/**
 * Moves every commit of `from` holding an event of one of `streams` into `to`, in
 * transactions of `ARCHIVE_MOVE_BATCH` commits (the copy is an upsert by commit id, so a
 * leftover copy is overwritten rather than refused). Returns how many it moved.
 */
export async function moveCommits(
  client: MongoClient,
  from: Collection<CommitDoc>,
  to: Collection<CommitDoc>,
  streams: readonly string[],
  signal?: AbortSignal,
): Promise<ArchiveMoveResult> {
  let moved = 0;
  const names = [...new Set(streams)];
  if (names.length === 0) return { commits: 0 };
  for (;;) {
    signal?.throwIfAborted();
    const batch = await from
      .find({ 'events.stream': { $in: names } }, { projection: { _id: 1 }, readConcern: MAJORITY })
      .sort({ position: 1 })
      .limit(ARCHIVE_MOVE_BATCH)
      .toArray();
    if (batch.length === 0) return { commits: moved };
    const ids = batch.map((d) => d._id);
    const session = client.startSession();
    let inBatch = 0;
    try {
      // withTransaction retries a transient error (a write conflict with a concurrent
      // move) and a commit whose outcome is unknown (driver `ClientSession.withTransaction`),
      // running the callback again: only the attempt that committed counts.
      await session.withTransaction(async (s) => {
        inBatch = await moveBatch(s, from, to, ids);
      }, MOVE_TRANSACTION);
    } finally {
      await session.endSession();
    }
    moved += inBatch;
  }
}

/** One batch, inside the transaction: copy what is still in `from`, then delete it there. */
async function moveBatch(
  session: ClientSession,
  from: Collection<CommitDoc>,
  to: Collection<CommitDoc>,
  ids: string[],
): Promise<number> {
  const docs = await from.find({ _id: { $in: ids } }, { session }).toArray();
  if (docs.length === 0) return 0;
  await to.bulkWrite(
    docs.map((doc) => ({
      replaceOne: { filter: { _id: doc._id }, replacement: doc, upsert: true },
    })),
    { session, ordered: true, ...WRITE_BSON_OPTIONS },
  );
  const deleted = await from.deleteMany({ _id: { $in: docs.map((d) => d._id) } }, { session });
  return deleted.deletedCount;
}

/** A commit collection as the joined reads use it. */
export interface CommitSource {
  /** The first `limit` documents after `after`, by position (tombstones too). */
  range(after: number, limit: number): Promise<CommitDoc[]>;
  /** The documents at these positions. */
  at(positions: number[]): Promise<CommitDoc[]>;
}

/** A collection as a `CommitSource`, read at majority. */
export function commitSource(collection: Collection<CommitDoc>): CommitSource {
  return {
    range: (after, limit) =>
      collection
        .find({ position: { $gt: after } }, { readConcern: MAJORITY })
        .sort({ position: 1 })
        .limit(limit)
        .toArray(),
    at: (positions) =>
      collection.find({ position: { $in: positions } }, { readConcern: MAJORITY }).toArray(),
  };
}

/** What `readJoined` found. */
export interface JoinedRange {
  /**
   * Documents after `after` in position order, as far as both collections were read (at
   * most `limit`). A position may be missing (one still in flight): callers deliver only
   * up to the first one missing.
   */
  docs: CommitDoc[];
  /** The highest position either collection showed (0 when none). */
  highest: number;
}

/**
 * Up to `limit` documents after `after` from `hot` and `archive` together, in position
 * order. Reads `hot`, then `archive`, then `hot` again for the positions still missing
 * (see the module comment).
 */
export async function readJoined(
  hot: CommitSource,
  archive: CommitSource,
  after: number,
  limit: number,
): Promise<JoinedRange> {
  if (limit <= 0) return { docs: [], highest: 0 };
  const fromHot = await hot.range(after, limit);
  const fromArchive = await archive.range(after, limit);
  const byPosition = new Map<number, CommitDoc>();
  let highest = 0;
  for (const doc of [...fromHot, ...fromArchive]) {
    byPosition.set(doc.position, doc);
    highest = Math.max(highest, doc.position);
  }
  // A side that filled its limit may hold more below the other side's last position:
  // only positions up to the lower of the full sides' last ones are known from both.
  let top = highest;
  for (const side of [fromHot, fromArchive]) {
    if (side.length === limit) top = Math.min(top, side.at(-1)!.position);
  }
  const missing: number[] = [];
  for (let p = after + 1; p <= top && missing.length < limit; p += 1) {
    if (!byPosition.has(p)) missing.push(p);
  }
  if (missing.length > 0) {
    for (const doc of await hot.at(missing)) byPosition.set(doc.position, doc);
  }
  const docs = [...byPosition.values()]
    .filter((d) => d.position <= top)
    .sort((a, b) => a.position - b.position)
    .slice(0, limit);
  return { docs, highest };
}

/**
 * The commits of `stream` holding one of its events at `fromVersion` or later, with only
 * those events (found by the `events.stream`/`events.version` index of either collection),
 * by position.
 */
function streamCommits(
  collection: Collection<CommitDoc>,
  stream: string,
  fromVersion: number,
): Promise<CommitDoc[]> {
  return collection
    .aggregate<CommitDoc>(
      [
        streamVersionsMatch(stream, { from: fromVersion }),
        streamVersionsProjection(stream, { from: fromVersion }),
        { $sort: { position: 1 } },
      ],
      { readConcern: MAJORITY },
    )
    .toArray();
}

/** Rounds of `readStreamJoined` before it gives up on a stream that keeps moving. */
const STREAM_READ_ROUNDS = 5;

/**
 * A stream's commits from `fromVersion` on, wherever they are. The stream's head (which
 * stays in `streams` when its commits move) says how far its events reach: one round
 * reads the head and `commits` at once, and only when those do not hold every version
 * up to the head does it read the archive. A round that still misses versions (events
 * restored between its two reads: see the module comment) runs again. A live stream costs
 * one round trip, as before the archive existed; an archived one two. Returns undefined
 * when the versions never came together (the caller reports the store unavailable).
 */
export async function readStreamJoined(
  hot: Collection<CommitDoc>,
  archive: Collection<CommitDoc>,
  headVersion: () => Promise<number>,
  stream: string,
  fromVersion: number,
): Promise<CommitDoc[] | undefined> {
  for (let round = 0; round < STREAM_READ_ROUNDS; round += 1) {
    const [head, fromHot] = await Promise.all([
      headVersion(),
      streamCommits(hot, stream, fromVersion),
    ]);
    const found = new Map(fromHot.map((d) => [d.position, d]));
    if (!reaches(found, fromVersion, head)) {
      for (const d of await streamCommits(archive, stream, fromVersion)) found.set(d.position, d);
    }
    if (reaches(found, fromVersion, head)) {
      return [...found.values()].sort((a, b) => a.position - b.position);
    }
  }
  return undefined;
}

/** Whether `docs` hold every version from `fromVersion` to `head`. */
function reaches(docs: Map<number, CommitDoc>, fromVersion: number, head: number): boolean {
  const versions = new Set<number>();
  for (const doc of docs.values()) for (const e of doc.events) versions.add(e.version);
  for (let v = fromVersion; v <= head; v += 1) if (!versions.has(v)) return false;
  return true;
}

/**
 * The commits holding versions `from` to `to` of `stream` (`pipeline` selects them and
 * keeps only those events), wherever they are: `commits` first; when versions are missing
 * there, the stream's head (versions above it do not exist yet) and the archive. A round
 * that still misses versions (events restored between its reads) runs again. Returns
 * undefined when the versions never came together.
 */
export async function readVersionsJoined(
  hot: Collection<CommitDoc>,
  archive: Collection<CommitDoc>,
  pipeline: Document[],
  headVersion: () => Promise<number>,
  from: number,
  to: number,
): Promise<CommitDoc[] | undefined> {
  const read = (collection: Collection<CommitDoc>) =>
    collection.aggregate<CommitDoc>(pipeline, { readConcern: MAJORITY }).toArray();
  for (let round = 0; round < STREAM_READ_ROUNDS; round += 1) {
    const found = new Map((await read(hot)).map((d) => [d.position, d]));
    if (reaches(found, from, to)) return [...found.values()];
    const top = Math.min(to, await headVersion());
    if (reaches(found, from, top)) return [...found.values()];
    for (const d of await read(archive)) found.set(d.position, d);
    if (reaches(found, from, top)) return [...found.values()];
  }
  return undefined;
}
