/**
 * The query of a backward page of one stream. Nothing here talks to the server.
 */
import type { Document } from 'mongodb';

/** Version bounds of one stream's events: `from` and up, up to `to` when given (inclusive). */
interface VersionRange {
  from: number;
  to?: number;
}

/**
 * The `$match` stage of the commits holding an event of `stream` in `range`: one
 * `$elemMatch` on both fields of one `events` element, so the `events.stream`/`events.version`
 * index is bounded on both.
 */
export function streamVersionsMatch(stream: string, { from, to }: VersionRange): Document {
  const version = to === undefined ? { $gte: from } : { $gte: from, $lte: to };
  return { $match: { events: { $elemMatch: { stream, version } } } };
}

/** The `$project` stage keeping a commit's fields and only its events of `stream` in `range`. */
export function streamVersionsProjection(stream: string, { from, to }: VersionRange): Document {
  return {
    $project: {
      position: 1,
      occurredAt: 1,
      actor: 1,
      operation: 1,
      metadata: 1,
      idempotencyKey: 1,
      events: {
        $filter: {
          input: '$events',
          cond: {
            $and: [
              { $eq: ['$$this.stream', { $literal: stream }] },
              { $gte: ['$$this.version', from] },
              ...(to === undefined ? [] : [{ $lte: ['$$this.version', to] }]),
            ],
          },
        },
      },
    },
  };
}

/**
 * The aggregation that reads the events of `stream` with versions `from..to` (inclusive)
 * from the commits holding them. The match gives the index bounds on both fields
 * (`[stream, stream]` x `[from, to]`), so the server examines exactly the keys of those
 * versions and fetches at most `to - from + 1` commits (fewer when a commit holds several
 * of them); the sort then orders those few in memory, newest first. The projection keeps
 * only the page's events.
 */
export function streamRangePipeline(stream: string, from: number, to: number): Document[] {
  return [
    streamVersionsMatch(stream, { from, to }),
    { $sort: { position: -1 } },
    streamVersionsProjection(stream, { from, to }),
  ];
}
