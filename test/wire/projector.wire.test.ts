import { setTimeout as sleep } from 'node:timers/promises';
import { BSON, type Document } from 'mongodb';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MongoEventStore } from '../../src/eventstore/mongo/MongoEventStore.js';
import { ProjectorRuntime } from '../../src/projector/ProjectorRuntime.js';
import { createMongoProjectorStorage } from '../../src/projector/mongo/MongoProjectorStorage.js';
import { notRegressedBy } from '../../src/projector/mongo/MongoReadCollection.js';
import {
  ProjectorStorageUnavailable,
  type Projection,
  type ProjectorStorage,
  type ReadDoc,
} from '../../src/projector/types.js';
import { serverError, type WireCommand } from './fakePrimary.js';
import { isCommand, openWire, sequence, type Wire } from './harness.js';

const logger = pino({ level: 'silent' });
const GENERATION = 'g1';
const CURSOR_ID = BSON.Long.fromNumber(4242);
const token = (n: number) => ({ _data: `82${String(n).padStart(8, '0')}` });

interface Account extends ReadDoc {
  balance: number;
}

const accounts: Projection = {
  name: 'accounts',
  handles: ['Deposited'],
  async apply(context) {
    for (const event of context.commit.events) {
      await context.update<Account>('accounts', event.stream, event, (doc) => ({
        _id: event.stream,
        balance: (doc?.balance ?? 0) + Number(event.data.amount),
      }));
    }
  },
};

const commitDoc = (position: number) => ({
  _id: `commit-${position}`,
  position,
  occurredAt: new Date('2026-01-01T00:00:00Z'),
  actor: 'alice',
  operation: 'deposit',
  metadata: {},
  idempotencyKey: null,
  events: [
    {
      eventId: `event-${position}`,
      stream: 'acc-1',
      version: position,
      type: 'Deposited',
      data: { amount: 10 },
      schemaVersion: 1,
    },
  ],
});

const cursor = (command: WireCommand, batch: Document[], id = BSON.Long.ZERO) => ({
  cursor: { id, ns: `${command.db}.${String(command.body[command.name])}`, firstBatch: batch },
  ok: 1,
});

/**
 * A database holding one commit (position 1) and an active generation, with a change
 * stream on `commits` that stays quiet: its batches are empty and carry a
 * postBatchResumeToken, as a real one's do.
 */
function scriptDatabase(wire: Wire, options: { leaseReply?: () => Document | undefined } = {}) {
  let leaseEpoch = 1;
  let quietBatches = 0;
  wire.fake.script((command) => {
    if (isCommand('find', 'readmodel_meta')(command)) {
      return cursor(command, [{ _id: 'active', generation: GENERATION }]);
    }
    if (isCommand('findAndModify', 'readmodel_meta')(command)) {
      return {
        lastErrorObject: { n: 1, updatedExisting: true },
        value: { _id: 'active', generation: GENERATION, fence: command.body.update.$set.fence },
        ok: 1,
      };
    }
    if (isCommand('find', 'commits')(command)) {
      // By position from the feed and readAll; with no filter, the head (sorted descending).
      const gt = (command.body.filter as { position?: { $gt: number } }).position?.$gt ?? 0;
      return cursor(command, gt < 1 ? [commitDoc(1)] : []);
    }
    if (isCommand('aggregate', 'commits')(command)) {
      return {
        cursor: {
          id: CURSOR_ID,
          ns: `${command.db}.commits`,
          firstBatch: [],
          postBatchResumeToken: token(1),
        },
        operationTime: new BSON.Timestamp({ t: 1, i: 1 }),
        ok: 1,
      };
    }
    if (isCommand('getMore')(command)) {
      quietBatches += 1;
      return {
        $delayMs: 50,
        reply: {
          cursor: {
            id: CURSOR_ID,
            ns: `${command.db}.commits`,
            nextBatch: [],
            // Each quiet batch moves the resume token on, as the oplog advances.
            postBatchResumeToken: token(1 + quietBatches),
          },
          ok: 1,
        },
      };
    }
    if (isCommand('findAndModify', 'leases')(command)) {
      return (
        options.leaseReply?.() ?? {
          lastErrorObject: { n: 1, updatedExisting: true },
          value: { _id: 'projector', owner: 'p1', epoch: leaseEpoch },
          ok: 1,
        }
      );
    }
    return undefined;
  });
  return {
    setEpoch(epoch: number) {
      leaseEpoch = epoch;
    },
  };
}

describe('the mongo projector on the wire', () => {
  let wire: Wire;
  let storage: ProjectorStorage;
  let store: MongoEventStore;
  const runtimes: ProjectorRuntime[] = [];

  beforeEach(async () => {
    wire = await openWire();
  });
  afterEach(async () => {
    for (const r of runtimes.splice(0)) await r.stop();
    await storage?.close();
    await store?.close();
    await wire.close();
  });

  const start = async (leaseTtlMs = 3_000) => {
    store = new MongoEventStore({
      client: wire.client,
      dbName: 'wire',
      feed: { maxAwaitTimeMS: 50 },
    });
    storage = await createMongoProjectorStorage({ client: wire.client, dbName: 'wire' });
    const runtime = new ProjectorRuntime({
      store,
      storage,
      projections: [accounts],
      logger,
      owner: 'p1',
      leaseTtlMs,
      retryDelayMs: 20,
    });
    runtimes.push(runtime);
    runtime.start();
    return runtime;
  };

  const until = async (condition: () => boolean, timeoutMs = 5_000) => {
    const deadline = Date.now() + timeoutMs;
    while (!condition()) {
      if (Date.now() > deadline) throw new Error('condition not met in time');
      await sleep(10);
    }
  };

  it('projects one commit with a pinned sequence of fenced, conditional writes', async () => {
    scriptDatabase(wire);
    const from = wire.fake.commands.length;
    await start();
    await until(() => wire.fake.commands.some(isCommand('update', 'projector_checkpoints')));
    const commands = wire.fake.commands.slice(from);
    const firstLease = commands.findIndex(isCommand('findAndModify', 'leases'));
    const checkpoint = commands.findIndex(isCommand('update', 'projector_checkpoints'));
    expect(sequence(commands.slice(firstLease, checkpoint + 1))).toEqual([
      'findAndModify leases',
      // the tenure claims the pointer: the active generation, marked with its epoch
      'findAndModify readmodel_meta',
      'find projector_checkpoints',
      // the store's head: is the projector a page or more behind (read in pages), or
      // close enough to follow the feed?
      'find commits',
      'find archive_commits',
      // the feed's change stream opens (tryNext sends the aggregate and a first getMore)
      // before its catch-up read, so nothing committed in between is missed
      'aggregate commits',
      'getMore',
      // the catch-up read: commits, then the archive (commits moved off the hot store)
      'find commits',
      'find archive_commits',
      // the commit: read the document, write it conditionally, record the entry, checkpoint
      'find rm_g1_accounts',
      'update rm_g1_accounts',
      'find changelog',
      'insert changelog',
      'update projector_checkpoints',
    ]);
    const write = commands.find(isCommand('update', 'rm_g1_accounts'))!.body.updates[0];
    expect(write).toMatchObject({
      q: { _id: 'acc-1', $expr: { $and: [expect.anything(), expect.anything()] } },
      u: { _id: 'acc-1', balance: 10, _applied: { 'acc-1': 1 }, _fence: { epoch: 1 } },
      upsert: true,
    });
    const claim = commands.find(isCommand('findAndModify', 'readmodel_meta'))!.body;
    expect(claim).toMatchObject({
      query: { _id: 'active', $expr: expect.anything() },
      update: { $set: { fence: { lease: 'projector', epoch: 1 } } },
      writeConcern: { w: 'majority' },
    });
    // The write's conditions: it regresses no applied stream version, and no newer epoch wrote it.
    expect(write.q.$expr.$and).toEqual([
      notRegressedBy({ 'acc-1': 1 }),
      {
        $or: [
          { $ne: [{ $ifNull: ['$_fence.lease', null] }, { $literal: 'projector' }] },
          { $lte: ['$_fence.epoch', 1] },
        ],
      },
    ]);
    const save = commands[checkpoint]!.body.updates[0];
    expect(save).toMatchObject({ u: { $set: { position: 1, epoch: 1 } }, upsert: true });
    // The checkpoint never moves back, and no older epoch overwrites a newer one's.
    expect(save.q.$expr.$and).toEqual([
      { $lte: [{ $ifNull: ['$position', 0] }, 1] },
      { $lte: [{ $ifNull: ['$epoch', 0] }, 1] },
    ]);
    // Reads hide the fence.
    expect(commands.find(isCommand('find', 'rm_g1_accounts'))!.body.projection).toEqual({
      _fence: 0,
    });
  });

  it('renews the lease with one findAndModify computed on the server clock', async () => {
    scriptDatabase(wire);
    const runtime = await start(300);
    await until(() => runtime.active);
    const from = wire.fake.commands.length;
    await until(() => wire.fake.commands.slice(from).some(isCommand('findAndModify', 'leases')));
    const renewal = wire.fake.commands.slice(from).find(isCommand('findAndModify', 'leases'))!;
    expect(renewal.body).toMatchObject({
      query: { _id: 'projector', $expr: expect.anything() },
      upsert: true,
      new: true,
    });
    expect(JSON.stringify(renewal.body.update)).toContain('$$NOW');
    await until(() => runtime.leaseStatus().state === 'running');
    expect([runtime.status(), runtime.leaseStatus()].map((s) => [s.name, s.state])).toEqual([
      ['projector', 'running'],
      ['projector-lease', 'running'],
    ]);
  });

  it('stops writing when a renewal comes back after the lease expired, and takes no late grant as a lease', async () => {
    let slow = false;
    scriptDatabase(wire, {
      leaseReply: () =>
        slow
          ? {
              $delayMs: 400,
              reply: {
                lastErrorObject: { n: 1, updatedExisting: true },
                value: { _id: 'projector', owner: 'p1', epoch: 1 },
                ok: 1,
              },
            }
          : undefined,
    });
    const runtime = await start(300);
    // The round is under way (its pointer claim and checkpoint read are behind it) once
    // the feed polls its change stream.
    await until(() => wire.fake.commands.some(isCommand('getMore')));
    const from = wire.fake.commands.length;
    slow = true;
    // Every answer from now on comes 400 ms after its request: past the 300 ms lease it
    // grants. Several of them, each durable in the record of commands sent.
    const leaseCalls = () =>
      wire.fake.commands.slice(from).filter(isCommand('findAndModify', 'leases')).length;
    await until(() => leaseCalls() >= 6, 15_000);
    // No late "success" counted: no new round started (no pointer claim, no checkpoint
    // read), so nothing could be written under a lease another runtime may hold by then.
    const since = sequence(wire.fake.commands.slice(from));
    expect(since).not.toContain('findAndModify readmodel_meta');
    expect(since).not.toContain('find projector_checkpoints');
    expect(runtime.active).toBe(false);
  });

  it('stops projecting when the lease passed to a newer epoch meanwhile', async () => {
    const database = scriptDatabase(wire);
    await start(300);
    // Durable evidence only (the inactive spell between the two tenures lasts milliseconds):
    // the first tenure's checkpoint write, then a new round under the new epoch.
    const checkpointEpochs = () =>
      wire.fake.commands
        .filter(isCommand('update', 'projector_checkpoints'))
        .map((c) => (c.body.updates as Document[])[0]!.u.$set.epoch as number);
    await until(() => checkpointEpochs().includes(1));
    const epochChanged = wire.fake.commands.length;
    database.setEpoch(2);
    await until(() => checkpointEpochs().includes(2), 20_000);
    // The round under epoch 1 ended: the new one reloaded the checkpoint and re-read the
    // commit before writing, and nothing was written under epoch 1 after epoch 2's first write.
    const after = wire.fake.commands.slice(epochChanged);
    const firstNew = after.findIndex(
      (c) =>
        isCommand('update', 'projector_checkpoints')(c) &&
        (c.body.updates as Document[])[0]!.u.$set.epoch === 2,
    );
    expect(
      sequence(after.slice(0, firstNew)).filter((n) => n === 'find projector_checkpoints'),
    ).not.toHaveLength(0);
    const fencedWrites = after
      .slice(firstNew)
      .filter(isCommand('update'))
      .flatMap((c) => c.body.updates as Document[])
      .map((u) => (u.u._fence?.epoch ?? u.u.$set?.epoch) as number | undefined)
      .filter((e) => e !== undefined);
    expect(fencedWrites.every((e) => e === 2)).toBe(true);
  });
});

describe('an idle mongo projector on the wire', () => {
  it('does not write a checkpoint for every quiet batch of the feed', async () => {
    const wire = await openWire();
    scriptDatabase(wire);
    const store = new MongoEventStore({
      client: wire.client,
      dbName: 'wire',
      feed: { maxAwaitTimeMS: 20 },
    });
    const storage = await createMongoProjectorStorage({ client: wire.client, dbName: 'wire' });
    const runtime = new ProjectorRuntime({
      store,
      storage,
      projections: [accounts],
      logger,
      owner: 'p1',
      leaseTtlMs: 3_000,
    });
    try {
      runtime.start();
      const deadline = Date.now() + 5_000;
      while (!wire.fake.commands.some(isCommand('update', 'projector_checkpoints'))) {
        if (Date.now() > deadline) throw new Error('the commit was not projected');
        await sleep(10);
      }
      const from = wire.fake.commands.length;
      await sleep(600); // about 10 quiet batches, each with a fresher resume token (heartbeats)
      const quiet = wire.fake.commands.slice(from);
      expect(quiet.filter(isCommand('getMore')).length).toBeGreaterThan(3);
      expect(quiet.filter(isCommand('update', 'projector_checkpoints'))).toHaveLength(0);
    } finally {
      await runtime.stop();
      await storage.close();
      await store.close();
      await wire.close();
    }
  });
});

describe('mongo read model generations on the wire', () => {
  let wire: Wire;
  beforeEach(async () => {
    wire = await openWire();
    scriptDatabase(wire);
  });
  afterEach(async () => {
    await wire.close();
  });

  it('reads the pointer itself for a fresh view, even inside the cache window', async () => {
    const storage = await createMongoProjectorStorage({
      client: wire.client,
      dbName: 'wire',
      pointerCacheMs: 60_000,
    });
    const { commands: cached } = await wire.during(() => storage.readModels.active());
    expect(cached).toEqual([]);
    const { commands: fresh } = await wire.during(() => storage.readModels.active({ fresh: true }));
    expect(sequence(fresh)).toEqual(['find readmodel_meta']);
    await storage.close();
  });

  it('switches generations only under a fence no newer epoch has marked, at majority', async () => {
    const storage = await createMongoProjectorStorage({ client: wire.client, dbName: 'wire' });
    wire.fake.script((command) =>
      isCommand('find', 'readmodel_generations')(command)
        ? {
            cursor: {
              id: BSON.Long.ZERO,
              ns: 'wire.readmodel_generations',
              firstBatch: [{ _id: 'g2' }],
            },
            ok: 1,
          }
        : undefined,
    );
    // The pointer carries a newer epoch: the filter matches nothing.
    wire.fake.failNext(isCommand('update', 'readmodel_meta'), { n: 0, nModified: 0, ok: 1 });
    const fence = { lease: 'projector', owner: 'p1', epoch: 3 };
    const { value, commands } = await wire.during(() =>
      storage.readModels.activate('g2', GENERATION, fence),
    );
    expect(value).toBe(false);
    const update = commands.find(isCommand('update', 'readmodel_meta'))!;
    expect(update.body.updates[0]).toMatchObject({
      q: { _id: 'active', generation: GENERATION, $expr: expect.anything() },
      u: { $set: { generation: 'g2', fence: { lease: 'projector', epoch: 3 } } },
    });
    expect(update.body.writeConcern).toEqual({ w: 'majority' });
    await storage.close();
  });

  it('writes leases, checkpoints, the pointer, generations and read documents with w: majority', async () => {
    const storage = await createMongoProjectorStorage({ client: wire.client, dbName: 'wire' });
    const fence = { lease: 'projector', owner: 'p1', epoch: 1 };
    wire.fake.script((command) =>
      isCommand('find', 'readmodel_generations')(command)
        ? cursor(command, [{ _id: String(command.body.filter._id) }])
        : undefined,
    );
    const { commands } = await wire.during(async () => {
      await storage.leases.acquire('projector', 'p1', 1_000);
      await storage.leases.requestHandover('projector', 'p2');
      await storage.leases.release('projector', 'p1');
      await storage.checkpoints.save(GENERATION, { position: 3 }, fence);
      await storage.readModels.active({ fence });
      const view = storage.readModels.view(GENERATION, { fence });
      await view.collection('accounts').put({ _id: 'a', _applied: { s: 1 } });
      await view.collection('accounts').putMany([{ _id: 'b' }]);
      await view.collection('accounts').delete('b');
      const next = await storage.readModels.createGeneration();
      await storage.readModels.activate(next, GENERATION, fence);
      await storage.readModels.dropGeneration('g0');
    });
    const writes = commands.filter((c) =>
      ['insert', 'update', 'delete', 'findAndModify'].includes(c.name),
    );
    expect(sequence(writes)).toEqual([
      'findAndModify leases',
      'update leases',
      'update leases',
      'update projector_checkpoints',
      'findAndModify readmodel_meta',
      'update rm_g1_accounts',
      'update rm_g1_accounts',
      'delete rm_g1_accounts',
      'insert readmodel_generations',
      'update readmodel_meta',
      'update readmodel_generations',
    ]);
    for (const write of writes) expect(write.body.writeConcern).toEqual({ w: 'majority' });
    await storage.close();
  });

  it('gives a lease up for a handover with w: majority, after an acquire refused by its filter (E11000)', async () => {
    const storage = await createMongoProjectorStorage({ client: wire.client, dbName: 'wire' });
    // The lease exists and the filter refused it: the upsert's insert collides on _id.
    wire.fake.failNext(isCommand('findAndModify', 'leases'), {
      ...serverError(11000, 'DuplicateKey'),
      errmsg:
        'E11000 duplicate key error collection: wire.leases index: _id_ dup key: { _id: "projector" }',
    });
    const { value, commands } = await wire.during(() =>
      storage.leases.acquire('projector', 'p1', 1_000),
    );
    expect(value).toBeNull();
    expect(sequence(commands)).toEqual(['findAndModify leases', 'update leases']);
    expect(commands[1]!.body.writeConcern).toEqual({ w: 'majority' });
    await storage.close();
  });

  it('reports a failed checkpoint or lease write as ProjectorStorageUnavailable, never as saved or refused', async () => {
    const storage = await createMongoProjectorStorage({ client: wire.client, dbName: 'wire' });
    // Not retryable (the driver sends it once) and not a duplicate key.
    const refused = serverError(50, 'MaxTimeMSExpired');
    wire.fake.failNext(isCommand('update', 'projector_checkpoints'), refused);
    await expect(storage.checkpoints.save(GENERATION, { position: 3 })).rejects.toThrow(
      ProjectorStorageUnavailable,
    );
    wire.fake.failNext(isCommand('findAndModify', 'leases'), refused);
    await expect(storage.leases.acquire('projector', 'p1', 1_000)).rejects.toThrow(
      ProjectorStorageUnavailable,
    );
    await storage.close();
  });

  it('marks an old generation for a later drop instead of dropping it under running queries', async () => {
    const storage = await createMongoProjectorStorage({
      client: wire.client,
      dbName: 'wire',
      generationDropDelayMs: 60_000,
    });
    const { commands } = await wire.during(() => storage.readModels.dropGeneration('g0'));
    expect(sequence(commands)).toEqual(['find readmodel_meta', 'update readmodel_generations']);
    expect(commands[1]!.body.updates[0].u.$set.dropAfter).toBeInstanceOf(Date);
    expect(commands.some(isCommand('drop'))).toBe(false);
    await storage.close();
  });
});
