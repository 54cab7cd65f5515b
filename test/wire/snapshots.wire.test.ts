import { BSON } from 'mongodb';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MongoSnapshotStore } from '../../src/eventstore/snapshots/MongoSnapshotStore.js';
import type { Snapshot } from '../../src/eventstore/snapshots/SnapshotStore.js';
import { duplicateKeyReply, serverError } from './fakePrimary.js';
import { isCommand, openWire, sequence, type Wire } from './harness.js';

const DB = 'corkboard_wire';

const snapshot: Snapshot = {
  stream: 'column-c1',
  version: 1_200,
  eventId: 'e1200',
  codec: 'column/1',
  state: '{"status":"active"}',
};

/** The filter every save sends: a snapshot of another codec or an older version. */
const olderOrOtherCodec = {
  _id: 'column-c1',
  $or: [{ codec: { $ne: 'column/1' } }, { version: { $lt: 1_200 } }],
};

describe('MongoSnapshotStore on the wire', () => {
  let wire: Wire;
  let store: MongoSnapshotStore;
  beforeEach(async () => {
    wire = await openWire();
    store = new MongoSnapshotStore({ client: wire.client, dbName: DB });
  });
  afterEach(async () => {
    await wire.close();
  });

  it('saves with one conditional upsert of the stream document', async () => {
    const { commands } = await wire.during(() => store.save(snapshot));
    expect(sequence(commands)).toEqual(['update snapshots']);
    const [update] = commands[0]!.body.updates as {
      q: unknown;
      u: { $set: Record<string, unknown> };
      upsert?: boolean;
    }[];
    expect(update!.q).toEqual(olderOrOtherCodec);
    expect(update!.upsert).toBe(true);
    expect(update!.u.$set).toMatchObject({
      version: 1_200,
      eventId: 'e1200',
      codec: 'column/1',
      state: '{"status":"active"}',
    });
  });

  it('when the upsert finds the stream document after all (E11000), tries once more as a plain update', async () => {
    wire.fake.failNext(
      isCommand('update', 'snapshots'),
      duplicateKeyReply(`${DB}.snapshots`, 'column-c1'),
    );
    const { commands } = await wire.during(() => store.save(snapshot));
    expect(sequence(commands)).toEqual(['update snapshots', 'update snapshots']);
    const [retry] = commands[1]!.body.updates as { q: unknown; upsert?: boolean }[];
    expect(retry!.q).toEqual(olderOrOtherCodec);
    expect(retry!.upsert ?? false).toBe(false);
  });

  it('reports a save the server refused for any other reason as failed, and sends nothing more', async () => {
    // Not a duplicate key: the snapshot was not written, and a plain update (which applies
    // only over an existing document) must not stand in for the upsert.
    wire.fake.failNext(isCommand('update', 'snapshots'), serverError(50, 'MaxTimeMSExpired'));
    const commandsBefore = wire.fake.commands.length;
    await expect(store.save(snapshot)).rejects.toThrow(/MaxTimeMSExpired/);
    expect(sequence(wire.fake.commands.slice(commandsBefore))).toEqual(['update snapshots']);
  });

  it('loads by stream with one find, and gives back the stored fields', async () => {
    wire.fake.script((command) =>
      isCommand('find', 'snapshots')(command)
        ? {
            cursor: {
              id: BSON.Long.ZERO,
              ns: `${DB}.snapshots`,
              firstBatch: [
                {
                  _id: 'column-c1',
                  version: 1_200,
                  eventId: 'e1200',
                  codec: 'column/1',
                  state: '{"status":"active"}',
                  savedAt: new Date(),
                },
              ],
            },
            ok: 1,
          }
        : undefined,
    );
    const { value, commands } = await wire.during(() => store.load('column-c1'));
    expect(sequence(commands)).toEqual(['find snapshots']);
    expect(commands[0]!.body.filter).toEqual({ _id: 'column-c1' });
    expect(value).toEqual(snapshot);
  });
});
