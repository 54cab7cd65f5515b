/**
 * The mongo projector storage's leases, checkpoints and change log documents on the
 * simulator: what a round trip keeps, and what a failed one is reported as.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MongoClient } from 'mongodb';
import { createMongoProjectorStorage } from '../../src/projector/mongo/MongoProjectorStorage.js';
import { ProjectorCollection } from '../../src/projector/mongo/documents.js';
import {
  FencedOut,
  ProjectorStorageUnavailable,
  type ChangeLogEntry,
  type Fence,
  type ProjectorStorage,
} from '../../src/projector/types.js';
import type { MongoSim } from './MongoSim.js';
import { type SimCommand } from './MongoSim.js';
import { startSimAndClient, stopSimAndClient } from './simClient.js';

let sim: MongoSim;
let client: MongoClient;
let dbCount = 0;
const freshDbName = () => `projector_storage_${++dbCount}`;

beforeAll(
  async () =>
    ({ sim, client } = await startSimAndClient({
      appName: 'storage',
      serverSelectionTimeoutMS: 10_000,
    })),
);
afterAll(() => stopSimAndClient({ sim, client }));

const fence = (epoch: number): Fence => ({ lease: 'projector', owner: `p${epoch}`, epoch });

const sends = (dbName: string, collection: string, command: string) => (c: SimCommand) =>
  c.db === dbName && c.name === command && c.body[command] === collection;

describe('projector storage documents on the simulator', () => {
  let dbName: string;
  let storage: ProjectorStorage;
  beforeAll(async () => {
    dbName = freshDbName();
    storage = await createMongoProjectorStorage({ client, dbName });
  });
  afterAll(async () => {
    await storage.close();
  });

  it('keeps a checkpoint token when there is one, and gives none back when there was none', async () => {
    const token = { _data: '8200000007' };
    await storage.checkpoints.save('with-token', { position: 7, token });
    expect(await storage.checkpoints.load('with-token')).toStrictEqual({ position: 7, token });
    await storage.checkpoints.save('without', { position: 3 });
    expect(await storage.checkpoints.load('without')).toStrictEqual({ position: 3 });
    expect(await storage.checkpoints.load('never-saved')).toBeNull();
  });

  it('says which checkpoint a deposed holder could not save', async () => {
    await storage.checkpoints.save('fenced', { position: 5 }, fence(2));
    await expect(storage.checkpoints.save('fenced', { position: 9 }, fence(1))).rejects.toThrow(
      new FencedOut('checkpoint of fenced was saved under a newer lease epoch'),
    );
  });

  it("keeps a change log entry's changed ids and trace context, and adds neither when absent", async () => {
    const base = {
      scopes: ['board-1'],
      operation: null,
      actor: null,
      at: new Date('2026-01-01T00:00:00Z'),
      invalidated: [],
    };
    // A read document carries its own fields beside the _id the port knows of.
    const card = { _id: 'card-1', title: 'T' };
    const entries: ChangeLogEntry[] = [
      { ...base, cursor: 1, commitId: 'c1' },
      {
        ...base,
        cursor: 2,
        commitId: 'c2',
        changed: [{ collection: 'cards', doc: card }],
        traceContext: { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' },
      },
      { ...base, cursor: 3, commitId: 'c3', changed: [] },
    ];
    for (const entry of entries) await storage.changeLog.record(entry);
    const read = await storage.changeLog.read(0);
    expect(read.kind === 'entries' && read.entries).toStrictEqual([
      entries[0],
      entries[1],
      { ...base, cursor: 3, commitId: 'c3' },
    ]);
  });
});

describe('projector storage failures on the simulator', () => {
  it('fails to start when creating the change log fails otherwise than it already existing', async () => {
    const dbName = freshDbName();
    sim.fault({
      action: 'hangUpBefore',
      match: sends(dbName, ProjectorCollection.ChangeLog, 'create'),
    });
    await expect(createMongoProjectorStorage({ client, dbName })).rejects.toThrow();
    // Once it is there, a start that meets it goes on.
    const first = await createMongoProjectorStorage({ client, dbName });
    const second = await createMongoProjectorStorage({ client, dbName });
    await Promise.all([first.close(), second.close()]);
  });

  it('closes its client on close only when it owns it', async () => {
    const handed = await createMongoProjectorStorage({ client, dbName: freshDbName() });
    await handed.close();
    expect(await client.db('admin').command({ ping: 1 })).toMatchObject({ ok: 1 });
    const own = await new MongoClient(sim.uri, { serverSelectionTimeoutMS: 10_000 }).connect();
    const owning = await createMongoProjectorStorage({
      client: own,
      dbName: freshDbName(),
      ownsClient: true,
    });
    await owning.close();
    await expect(own.db('admin').command({ ping: 1 })).rejects.toThrow(/Client must be connected/);
  });

  it('names the lease or checkpoint operation the server could not be reached for', async () => {
    const dbName = freshDbName();
    const storage = await createMongoProjectorStorage({ client, dbName });
    try {
      const cases: [string, string, string, () => Promise<unknown>][] = [
        [
          'lease acquire',
          ProjectorCollection.Leases,
          'findAndModify',
          () => storage.leases.acquire('projector', 'p1', 10_000),
        ],
        [
          'lease release',
          ProjectorCollection.Leases,
          'update',
          () => storage.leases.release('projector', 'p1'),
        ],
        [
          'lease handover request',
          ProjectorCollection.Leases,
          'update',
          () => storage.leases.requestHandover('projector', 'p2'),
        ],
        [
          'lease holder',
          ProjectorCollection.Leases,
          'find',
          () => storage.leases.holder('projector'),
        ],
        [
          'checkpoint load',
          ProjectorCollection.Checkpoints,
          'find',
          () => storage.checkpoints.load('g'),
        ],
        [
          'checkpoint save',
          ProjectorCollection.Checkpoints,
          'update',
          () => storage.checkpoints.save('g', { position: 1 }),
        ],
      ];
      for (const [what, collection, command, run] of cases) {
        // The command and the driver's one retry of it are both cut off.
        sim.fault({ action: 'hangUpBefore', match: sends(dbName, collection, command), count: 2 });
        const error: unknown = await run().then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(error).toBeInstanceOf(ProjectorStorageUnavailable);
        expect((error as Error).message).toMatch(new RegExp(`^${what} failed: \\S`));
        expect((error as Error).cause).toBeInstanceOf(Error);
      }
    } finally {
      await storage.close();
    }
  });
});
