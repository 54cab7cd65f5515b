/**
 * The joined reads of the mongo adapter's archive when a move commits between their
 * queries: each read of `commits` or the archive is one query, and a restore can move a
 * commit from the archive to `commits` after `commits` was read and before the archive
 * is. These fakes place the move exactly there.
 */
import type { Collection } from 'mongodb';
import { describe, expect, it } from 'vitest';
import {
  readJoined,
  readStreamJoined,
  readVersionsJoined,
  type CommitSource,
} from '../../src/eventstore/mongo/archive.js';
import type { CommitDoc } from '../../src/eventstore/mongo/documents.js';

const commit = (position: number, stream = 's', version = position): CommitDoc => ({
  _id: `c${position}`,
  position,
  occurredAt: new Date(0),
  actor: null,
  operation: null,
  metadata: {},
  idempotencyKey: null,
  events: [{ eventId: `e${position}`, stream, version, type: 'E', data: {}, schemaVersion: 1 }],
});

/** Two places holding commits by position, and a hook run after every read of one. */
class Places {
  readonly hot = new Map<number, CommitDoc>();
  readonly archive = new Map<number, CommitDoc>();
  /** Reads of each place so far. */
  readonly reads = { hot: 0, archive: 0 };
  afterRead: (place: 'hot' | 'archive') => void = () => undefined;

  /** Moves the commit at `position` from one place to the other, as one transaction does. */
  move(position: number, to: 'hot' | 'archive'): void {
    const [from, into] = to === 'hot' ? [this.archive, this.hot] : [this.hot, this.archive];
    into.set(position, from.get(position)!);
    from.delete(position);
  }

  source(place: 'hot' | 'archive'): CommitSource {
    const docs = () => [...this[place].values()].sort((a, b) => a.position - b.position);
    const read = <T>(result: T): T => {
      this.reads[place] += 1;
      this.afterRead(place);
      return result;
    };
    return {
      range: async (after, limit) =>
        read(
          docs()
            .filter((d) => d.position > after)
            .slice(0, limit),
        ),
      at: async (positions) => read(docs().filter((d) => positions.includes(d.position))),
    };
  }

  /** The place as the collection `readStreamJoined` aggregates on. */
  collection(place: 'hot' | 'archive'): Collection<CommitDoc> {
    return {
      aggregate: () => ({
        toArray: async () => {
          const found = [...this[place].values()].sort((a, b) => a.position - b.position);
          this.reads[place] += 1;
          this.afterRead(place);
          return found;
        },
      }),
    } as unknown as Collection<CommitDoc>;
  }
}

/** Runs `move` once, right after the first read of `place`. */
function onceAfterFirstRead(places: Places, place: 'hot' | 'archive', move: () => void): void {
  let done = false;
  places.afterRead = (read) => {
    if (done || read !== place) return;
    done = true;
    move();
  };
}

describe('reads joining commits and the archive while a move commits between their queries', () => {
  it('finds a commit restored after commits was read and before the archive was', async () => {
    const places = new Places();
    for (const p of [1, 2, 3, 4]) places.hot.set(p, commit(p));
    places.archive.set(2, places.hot.get(2)!);
    places.hot.delete(2);
    onceAfterFirstRead(places, 'hot', () => places.move(2, 'hot'));
    const { docs } = await readJoined(places.source('hot'), places.source('archive'), 0, 10);
    expect(docs.map((d) => d.position)).toEqual([1, 2, 3, 4]);
  });

  it('finds a commit archived after commits was read', async () => {
    const places = new Places();
    for (const p of [1, 2, 3]) places.hot.set(p, commit(p));
    onceAfterFirstRead(places, 'hot', () => places.move(3, 'archive'));
    const { docs, highest } = await readJoined(
      places.source('hot'),
      places.source('archive'),
      0,
      10,
    );
    expect(docs.map((d) => d.position)).toEqual([1, 2, 3]);
    expect(highest).toBe(3);
  });

  it('leaves a position that neither place holds missing (in flight), and reads no further than a full side', async () => {
    const places = new Places();
    for (const p of [1, 2, 4, 5]) places.hot.set(p, commit(p));
    for (const p of [6, 7]) places.archive.set(p, commit(p));
    const { docs } = await readJoined(places.source('hot'), places.source('archive'), 0, 2);
    // `commits` filled its limit at 2: nothing past it is known from both places yet.
    expect(docs.map((d) => d.position)).toEqual([1, 2]);
    const rest = await readJoined(places.source('hot'), places.source('archive'), 2, 10);
    expect(rest.docs.map((d) => d.position)).toEqual([4, 5, 6, 7]);
  });

  it("finds a stream's events restored after commits was read and before the archive was", async () => {
    const places = new Places();
    for (const v of [1, 2, 3]) places.archive.set(v, commit(v));
    places.hot.set(4, commit(4));
    onceAfterFirstRead(places, 'hot', () => {
      for (const v of [1, 2, 3]) places.move(v, 'hot');
    });
    const docs = await readStreamJoined(
      places.collection('hot'),
      places.collection('archive'),
      async () => 4,
      's',
      1,
    );
    expect(docs?.map((d) => d.position)).toEqual([1, 2, 3, 4]);
  });

  it('gives up (undefined) rather than return a stream missing versions up to its head', async () => {
    const places = new Places();
    places.hot.set(1, commit(1));
    const docs = await readStreamJoined(
      places.collection('hot'),
      places.collection('archive'),
      async () => 2,
      's',
      1,
    );
    expect(docs).toBeUndefined();
  });

  it('reads nothing for a limit of 0 or less', async () => {
    const places = new Places();
    places.hot.set(1, commit(1));
    for (const limit of [0, -1]) {
      expect(await readJoined(places.source('hot'), places.source('archive'), 0, limit)).toEqual({
        docs: [],
        highest: 0,
      });
    }
    expect(places.reads).toEqual({ hot: 0, archive: 0 });
  });

  it("returns a stream's archived commits and its live ones in position order", async () => {
    const places = new Places();
    for (const v of [1, 2]) places.archive.set(v, commit(v));
    for (const v of [3, 4]) places.hot.set(v, commit(v));
    const docs = await readStreamJoined(
      places.collection('hot'),
      places.collection('archive'),
      async () => 4,
      's',
      1,
    );
    expect(docs?.map((d) => d.position)).toEqual([1, 2, 3, 4]);
  });

  it('gives up on a stream after five rounds', async () => {
    const places = new Places();
    places.hot.set(1, commit(1));
    await readStreamJoined(
      places.collection('hot'),
      places.collection('archive'),
      async () => 2,
      's',
      1,
    );
    expect(places.reads).toEqual({ hot: 5, archive: 5 });
  });
});

describe('reads of a range of versions joining commits and the archive', () => {
  /** Versions `from`..`to` of stream `s`, whose head is at `head`. */
  const versions = (places: Places, from: number, to: number, head: number) =>
    readVersionsJoined(
      places.collection('hot'),
      places.collection('archive'),
      [],
      async () => head,
      from,
      to,
    );

  it('reads only commits when they hold every version asked for', async () => {
    const places = new Places();
    for (const v of [1, 2, 3]) places.hot.set(v, commit(v));
    expect((await versions(places, 1, 3, 3))?.map((d) => d.position)).toEqual([1, 2, 3]);
    expect(places.reads).toEqual({ hot: 1, archive: 0 });
  });

  it('reads no archive when the versions missing are above the head (they do not exist yet)', async () => {
    const places = new Places();
    for (const v of [1, 2]) places.hot.set(v, commit(v));
    expect((await versions(places, 1, 5, 2))?.map((d) => d.position)).toEqual([1, 2]);
    expect(places.reads).toEqual({ hot: 1, archive: 0 });
  });

  it('reads the archive for versions below the head that commits lacks', async () => {
    const places = new Places();
    for (const v of [1, 2]) places.archive.set(v, commit(v));
    for (const v of [3, 4]) places.hot.set(v, commit(v));
    const docs = await versions(places, 1, 6, 4);
    expect(docs?.map((d) => d.position).sort((a, b) => a - b)).toEqual([1, 2, 3, 4]);
    expect(places.reads).toEqual({ hot: 1, archive: 1 });
  });

  it('gives up (undefined) after five rounds when versions up to the head stay missing', async () => {
    const places = new Places();
    places.hot.set(1, commit(1));
    places.archive.set(3, commit(3));
    expect(await versions(places, 1, 3, 3)).toBeUndefined();
    expect(places.reads).toEqual({ hot: 5, archive: 5 });
  });
});
