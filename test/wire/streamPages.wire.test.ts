import { BSON, type Document } from 'mongodb';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MongoEventStore } from '../../src/eventstore/mongo/MongoEventStore.js';
import { isCommand, openWire, sequence, type Wire } from './harness.js';

/** A commit document holding events of `card-1` at `versions` (and one of another stream). */
function commitDoc(position: number, versions: number[]): Document {
  return {
    _id: `c${position}`,
    position,
    occurredAt: new Date('2026-01-01T00:00:00Z'),
    actor: 'alice',
    operation: 'editCard',
    metadata: {},
    idempotencyKey: null,
    events: versions.map((version) => ({
      eventId: `e${version}`,
      stream: 'card-1',
      version,
      type: 'CardEdited',
      data: { n: version },
      schemaVersion: 1,
    })),
  };
}

/** Scripts `commits` to hold the versions `from..to` of card-1 (one commit), as a live stream's are. */
function scriptHotPage(wire: Wire, from: number, to: number): void {
  const versions = Array.from({ length: to - from + 1 }, (_, i) => from + i);
  wire.fake.script((command) =>
    isCommand('aggregate', 'commits')(command)
      ? {
          cursor: { id: BSON.Long.ZERO, ns: 'wire.commits', firstBatch: [commitDoc(to, versions)] },
          ok: 1,
        }
      : undefined,
  );
}

describe('MongoEventStore backward stream pages on the wire', () => {
  let wire: Wire;
  let store: MongoEventStore;
  beforeEach(async () => {
    wire = await openWire();
    store = new MongoEventStore({ client: wire.client, dbName: 'wire' });
  });
  afterEach(async () => {
    await wire.close();
  });

  it('reads a page from a cursor with one aggregation bounded on stream and version, at majority', async () => {
    scriptHotPage(wire, 8_951, 9_000);
    const { commands } = await wire.during(() =>
      store.readStreamBackward('card-1', { before: 9_001, limit: 50 }),
    );
    // The hot collection holds the whole page: neither the head nor the archive is read.
    expect(sequence(commands)).toEqual(['aggregate commits']);
    const [aggregate] = commands;
    expect(aggregate!.body.readConcern).toEqual({ level: 'majority' });
    const pipeline = aggregate!.body.pipeline as Document[];
    // Both bounds on one element: the `events.stream`/`events.version` index scans exactly
    // the 50 keys of the page, whatever the stream's length; then the few commits found
    // are sorted newest first.
    expect(pipeline[0]).toEqual({
      $match: {
        events: { $elemMatch: { stream: 'card-1', version: { $gte: 8_951, $lte: 9_000 } } },
      },
    });
    expect(pipeline[1]).toEqual({ $sort: { position: -1 } });
    expect(JSON.stringify(pipeline)).not.toMatch(/\$skip/);
  });

  it('without a cursor reads the head first, by _id, then the newest page', async () => {
    scriptHotPage(wire, 9_981, 10_000);
    wire.fake.script((command) =>
      isCommand('find', 'streams')(command)
        ? {
            cursor: {
              id: BSON.Long.ZERO,
              ns: 'wire.streams',
              firstBatch: [{ _id: 'card-1', version: 10_000 }],
            },
            ok: 1,
          }
        : undefined,
    );
    // The fake holds no events for that head, so the store goes on to the archive and
    // finally gives up: only the first two commands matter here.
    const { commands } = await wire.during(() =>
      store.readStreamBackward('card-1', { limit: 20 }).catch(() => undefined),
    );
    expect(sequence(commands).slice(0, 2)).toEqual(['find streams', 'aggregate commits']);
    expect(commands[0]!.body.filter).toEqual({ _id: 'card-1' });
    expect((commands[1]!.body.pipeline as Document[])[0]).toEqual({
      $match: {
        events: { $elemMatch: { stream: 'card-1', version: { $gte: 9_981, $lte: 10_000 } } },
      },
    });
  });

  it('sends nothing for a cursor at the first version', async () => {
    const { value, commands } = await wire.during(() =>
      store.readStreamBackward('card-1', { before: 1, limit: 20 }),
    );
    expect(value).toEqual([]);
    expect(commands).toEqual([]);
  });

  it("gives the page's events newest first, however the server grouped them in commits", async () => {
    wire.fake.script((command) =>
      isCommand('aggregate', 'commits')(command)
        ? {
            cursor: {
              id: BSON.Long.ZERO,
              ns: 'wire.commits',
              // The server's filter kept only the page's versions of card-1.
              firstBatch: [commitDoc(9, [6, 7]), commitDoc(8, [5]), commitDoc(5, [3, 4])],
            },
            ok: 1,
          }
        : undefined,
    );
    const events = await store.readStreamBackward('card-1', { before: 8, limit: 5 });
    expect(events.map((e) => [e.version, e.position, e.data.n])).toEqual([
      [7, 9, 7],
      [6, 9, 6],
      [5, 8, 5],
      [4, 5, 4],
      [3, 5, 3],
    ]);
    expect(events[0]).toMatchObject({ actor: 'alice', commitId: 'c9', stream: 'card-1' });
  });
});
