/**
 * The query of a backward page of one stream. Nothing here talks to the server.
 */
import type { Document } from 'mongodb';

/**
 * The aggregation that reads the events of `stream` with versions `from..to` (inclusive)
 * from the commits holding them. The `$elemMatch` on both fields of one `events` element
 * gives the `events.stream`/`events.version` index bounds on both (`[stream, stream]` x
 * `[from, to]`), so the server examines exactly the keys of those versions and fetches at
 * most `to - from + 1` commits (fewer when a commit holds several of them); the sort
 * then orders those few in memory, newest first. `$filter` keeps only the page's events.
 */
export function streamRangePipeline(stream: string, from: number, to: number): Document[] {
  return [
    { $match: { events: { $elemMatch: { stream, version: { $gte: from, $lte: to } } } } },
    { $sort: { position: -1 } },
    {
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
                { $lte: ['$$this.version', to] },
              ],
            },
          },
        },
      },
    },
  ];
}
