import { BSON, type Document } from 'mongodb';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  CommitOutcomeUnknown,
  EventStoreBusy,
  EventStoreUnavailable,
  EventStoreValidationError,
  VersionConflict,
} from '../../src/eventstore/errors.js';
import {
  MongoEventStore,
  type MongoEventStoreOptions,
} from '../../src/eventstore/mongo/MongoEventStore.js';
import { ANY, type AppendRequest } from '../../src/eventstore/types.js';
import { duplicateKeyReply, serverError, type WireCommand } from './fakePrimary.js';
import { isCommand, openWire, sequence, type Wire } from './harness.js';
import { fingerprintOf } from '../../src/eventstore/idempotency.js';

const oneStream: AppendRequest = {
  streams: [{ stream: 'card-1', expected: ANY, events: [{ type: 'CardAdded', data: { n: 1 } }] }],
};

const twoStreams = (idempotencyKey?: string): AppendRequest => ({
  streams: [
    { stream: 'card-1', expected: 3, events: [{ type: 'CardMoved', data: {} }] },
    { stream: 'column-1', expected: ANY, events: [{ type: 'CardEntered', data: {} }] },
  ],
  ...(idempotencyKey ? { idempotencyKey } : {}),
});

/** A commit's write concern wait ran out: the driver labels it UnknownTransactionCommitResult. */
const writeConcernTimeout = {
  ok: 1,
  writeConcernError: {
    code: 64,
    codeName: 'WriteConcernFailed',
    errmsg: 'waiting for replication timed out',
    errInfo: { wtimeout: true },
  },
};

/** `find streams` answers that `card-1` is at version 3. */
const cardAtVersion3 = (command: WireCommand) =>
  isCommand('find', 'streams')(command)
    ? {
        cursor: {
          id: BSON.Long.ZERO,
          ns: `${command.db}.streams`,
          firstBatch: [{ _id: 'card-1', version: 3 }],
        },
        ok: 1,
      }
    : undefined;

describe('MongoEventStore.append on the wire', () => {
  let wire: Wire;
  const store = (options: Partial<MongoEventStoreOptions> = {}) =>
    new MongoEventStore({ client: wire.client, dbName: 'wire', ...options });

  beforeEach(async () => {
    wire = await openWire();
  });
  afterEach(async () => {
    await wire.close();
  });

  describe('command sequences', () => {
    it('appends to one stream in one transaction of five round trips', async () => {
      const { value, commands } = await wire.during(() => store().append(oneStream));
      expect(sequence(commands)).toEqual([
        'find streams',
        'findAndModify counters',
        'insert streams',
        'insert commits',
        'commitTransaction',
      ]);
      expect(value.position).toBe(1);
      // One transaction: the first command starts it at snapshot, every one carries its number.
      const [first, ...rest] = commands;
      expect(first!.body).toMatchObject({
        startTransaction: true,
        autocommit: false,
        readConcern: { level: 'snapshot' },
      });
      for (const c of rest) expect(c.body.txnNumber).toEqual(first!.body.txnNumber);
      expect(commands.at(-1)!.body.writeConcern).toMatchObject({ w: 'majority', wtimeout: 5_000 });
      expect(commands.at(-1)!.body.maxTimeMS).toBe(5_000);
      // What the driver reported is what went over the wire.
      expect(wire.started.slice(-commands.length).map((e) => e.commandName)).toEqual(
        commands.map((c) => c.name),
      );
    });

    it('appends to several streams with one head insert and one conditional head update', async () => {
      wire.fake.script(cardAtVersion3);
      const { commands } = await wire.during(() => store().append(twoStreams()));
      expect(sequence(commands)).toEqual([
        'find streams',
        'findAndModify counters',
        'update streams',
        'insert streams',
        'insert commits',
        'commitTransaction',
      ]);
      expect(commands[2]!.body.updates).toEqual([
        { q: { _id: 'card-1', version: 3 }, u: { $set: { version: 4 } } },
      ]);
    });

    it('with an idempotency key, checks it at majority before the transaction and again inside', async () => {
      wire.fake.script(cardAtVersion3);
      const { commands } = await wire.during(() => store().append(twoStreams('key-1')));
      expect(sequence(commands)).toEqual([
        'find idempotency',
        'find idempotency',
        'find streams',
        'findAndModify counters',
        'update streams',
        'insert streams',
        'insert commits',
        'update idempotency',
        'commitTransaction',
      ]);
      expect(commands[0]!.body).toMatchObject({ readConcern: { level: 'majority' } });
      expect(commands[0]!.body.startTransaction).toBeUndefined();
      expect(commands[1]!.body).toMatchObject({ startTransaction: true });
    });
  });

  describe('faults', () => {
    it('retries the whole transaction after a WriteConflict labelled TransientTransactionError', async () => {
      wire.fake.failNext(
        isCommand('findAndModify'),
        serverError(112, 'WriteConflict', ['TransientTransactionError']),
      );
      const { value, commands } = await wire.during(() => store().append(oneStream));
      expect(sequence(commands)).toEqual([
        'find streams',
        'findAndModify counters',
        'abortTransaction',
        'find streams',
        'findAndModify counters',
        'insert streams',
        'insert commits',
        'commitTransaction',
      ]);
      expect(commands[3]!.body.txnNumber).not.toEqual(commands[0]!.body.txnNumber);
      // The aborted attempt's increment is not counted (on a server its transaction rolls back).
      expect(value.position).toBe(1);
    });

    it('retries a commit whose outcome is unknown, as the same transaction, and succeeds', async () => {
      wire.fake.failNext(isCommand('commitTransaction'), writeConcernTimeout, 2);
      const { value, commands } = await wire.during(() => store().append(oneStream));
      const commits = commands.filter(isCommand('commitTransaction'));
      expect(commits).toHaveLength(3);
      for (const c of commits) expect(c.body.txnNumber).toEqual(commits[0]!.body.txnNumber);
      // Never a second transaction: one counter increment, one commit document.
      expect(commands.filter(isCommand('insert', 'commits'))).toHaveLength(1);
      expect(value.position).toBe(1);
    });

    it('gives up on an unknown commit outcome after maxCommitAttempts, with CommitOutcomeUnknown', async () => {
      wire.fake.failNext(isCommand('commitTransaction'), writeConcernTimeout, 100);
      const started = performance.now();
      const { value: error, commands } = await wire.during(() =>
        store({ maxCommitAttempts: 3 })
          .append(oneStream)
          .catch((e: unknown) => e),
      );
      expect(error).toBeInstanceOf(CommitOutcomeUnknown);
      expect(error).toBeInstanceOf(EventStoreUnavailable);
      expect(commands.filter(isCommand('commitTransaction'))).toHaveLength(3);
      // The outcome is looked up once, by the commit's id, at majority; nothing is re-run.
      expect(sequence(commands).slice(-1)).toEqual(['find commits']);
      expect(commands.at(-1)!.body).toMatchObject({ readConcern: { level: 'majority' } });
      expect(commands.filter(isCommand('findAndModify'))).toHaveLength(1);
      // withTransaction would have kept retrying this commit for 120 s.
      expect(performance.now() - started).toBeLessThan(5_000);
    });

    it('returns the result when the unknown commit turns out to have applied', async () => {
      wire.fake.failNext(isCommand('commitTransaction'), writeConcernTimeout, 100);
      wire.fake.script((command) =>
        isCommand('find', 'commits')(command)
          ? {
              cursor: {
                id: BSON.Long.ZERO,
                ns: 'wire.commits',
                firstBatch: [{ _id: (command.body.filter as { _id: string })._id }],
              },
              ok: 1,
            }
          : undefined,
      );
      const result = await store({ maxCommitAttempts: 2 }).append(oneStream);
      expect(result.position).toBe(1);
    });

    it('stops retrying an unknown commit when the request is aborted', async () => {
      const controller = new AbortController();
      wire.fake.script((command) => {
        if (!isCommand('commitTransaction')(command)) return undefined;
        controller.abort(new Error('client went away'));
        return writeConcernTimeout;
      });
      const { value: error, commands } = await wire.during(() =>
        store({ maxCommitAttempts: 10 })
          .append(oneStream, { signal: controller.signal })
          .catch((e: unknown) => e),
      );
      expect(error).toBeInstanceOf(CommitOutcomeUnknown);
      expect(commands.filter(isCommand('commitTransaction'))).toHaveLength(1);
    });

    it('runs the transaction again after NoSuchTransaction (251) on commit', async () => {
      wire.fake.failNext(
        isCommand('commitTransaction'),
        serverError(251, 'NoSuchTransaction', ['TransientTransactionError']),
      );
      const { value, commands } = await wire.during(() => store().append(oneStream));
      expect(commands.filter(isCommand('findAndModify'))).toHaveLength(2);
      expect(commands.filter(isCommand('commitTransaction'))).toHaveLength(2);
      expect(value.position).toBe(2);
    });

    it('returns the first result when the idempotency key is taken inside the transaction (11000)', async () => {
      const first = {
        commitId: 'first-commit',
        position: 7,
        streams: [{ stream: 'card-1', version: 4 }],
        occurredAt: new Date('2026-01-01T00:00:00Z'),
      };
      let insertedKey = false;
      wire.fake.script(cardAtVersion3);
      wire.fake.script((command) => {
        if (isCommand('update', 'idempotency')(command)) {
          insertedKey = true;
          return duplicateKeyReply('wire.idempotency', 'key-1');
        }
        if (insertedKey && isCommand('find', 'idempotency')(command)) {
          const record = {
            _id: 'key-1',
            result: first,
            fingerprint: fingerprintOf(twoStreams('key-1')),
            expiresAt: new Date(Date.now() + 60_000),
          };
          return {
            cursor: {
              id: BSON.Long.ZERO,
              ns: 'wire.idempotency',
              firstBatch: [record],
            },
            ok: 1,
          };
        }
        return undefined;
      });
      const { value, commands } = await wire.during(() => store().append(twoStreams('key-1')));
      expect(value).toEqual(first);
      expect(sequence(commands).slice(-3)).toEqual([
        'update idempotency',
        'abortTransaction',
        'find idempotency',
      ]);
      expect(commands.at(-1)!.body).toMatchObject({ readConcern: { level: 'majority' } });
      expect(commands.filter(isCommand('commitTransaction'))).toHaveLength(0);
    });

    it('raises VersionConflict when a stream head insert collides (11000) with a racing commit', async () => {
      let collided = false;
      wire.fake.script((command) => {
        if (isCommand('insert', 'streams')(command)) {
          collided = true;
          return duplicateKeyReply('wire.streams', 'card-1');
        }
        if (collided && isCommand('find', 'streams')(command)) return cardAtVersion3(command);
        return undefined;
      });
      const error = await store()
        .append({
          streams: [{ stream: 'card-1', expected: 'NO_STREAM', events: [{ type: 'E', data: {} }] }],
        })
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(VersionConflict);
      expect(error).toMatchObject({ stream: 'card-1', actual: 3 });
    });

    it('bounds the attempts of an append that keeps conflicting', async () => {
      wire.fake.failNext(
        isCommand('findAndModify'),
        serverError(112, 'WriteConflict', ['TransientTransactionError']),
        1_000,
      );
      const { value: error, commands } = await wire.during(() =>
        store({ maxAttempts: 4 })
          .append(oneStream)
          .catch((e: unknown) => e),
      );
      expect(error).toBeInstanceOf(EventStoreUnavailable);
      expect(String(error)).toContain('4 transaction attempts');
      expect(commands.filter(isCommand('findAndModify'))).toHaveLength(4);
      expect(commands.filter(isCommand('commitTransaction'))).toHaveLength(0);
    });

    it('stops retrying at the append deadline', async () => {
      wire.fake.failNext(
        isCommand('findAndModify'),
        serverError(112, 'WriteConflict', ['TransientTransactionError']),
        10_000,
      );
      const started = performance.now();
      const error = await store({ maxAttempts: 10_000, appendTimeoutMs: 300 })
        .append(oneStream)
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(EventStoreUnavailable);
      expect(String(error)).toContain('timed out');
      expect(performance.now() - started).toBeLessThan(3_000);
    });

    it('refuses appends beyond the queue bound at once with EventStoreBusy, and runs the rest', async () => {
      // Every transaction takes a while: the first holds the queue while the others arrive.
      wire.fake.script((command) =>
        isCommand('commitTransaction')(command) ? { $delayMs: 50, reply: { ok: 1 } } : undefined,
      );
      const s = store({ maxQueuedAppends: 3 });
      const results = await Promise.allSettled(
        Array.from({ length: 10 }, (_, i) =>
          s.append({
            streams: [{ stream: `s-${i}`, expected: ANY, events: [{ type: 'E', data: {} }] }],
          }),
        ),
      );
      const busy = results.filter((r) => r.status === 'rejected');
      expect(busy.length).toBeGreaterThan(0);
      for (const r of busy)
        expect(r.status === 'rejected' && r.reason).toBeInstanceOf(EventStoreBusy);
      const done = results.filter((r) => r.status === 'fulfilled');
      expect(done.length).toBeGreaterThanOrEqual(3);
      expect(wire.fake.commands.filter(isCommand('commitTransaction'))).toHaveLength(done.length);
    });

    it('translates a network error on a read into EventStoreUnavailable', async () => {
      wire.fake.failNext(isCommand('find', 'streams'), { $hangUp: true }, 1_000);
      const error = await store({ appendTimeoutMs: 1_000 })
        .append(oneStream)
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(EventStoreUnavailable);
    });
  });
});

describe('MongoEventStore reads on the wire', () => {
  let wire: Wire;
  beforeEach(async () => {
    wire = await openWire();
  });
  afterEach(async () => {
    await wire.close();
  });

  it('reads streams, heads and the log at majority, so a replay never sees what a failover could undo', async () => {
    const store = new MongoEventStore({ client: wire.client, dbName: 'wire' });
    const { commands } = await wire.during(async () => {
      await store.readStream('card-1');
      await store.streamVersion('card-1');
      await store.readAll();
      await store.headPosition();
    });
    expect(sequence(commands)).toEqual([
      'aggregate commits',
      'find streams',
      'find commits',
      'find commits',
    ]);
    for (const c of commands) expect(c.body.readConcern).toEqual({ level: 'majority' });
    // A stream is read from the commits holding its events, through their multikey index.
    expect((commands[0]!.body.pipeline as Document[])[0]).toEqual({
      $match: { events: { $elemMatch: { stream: 'card-1', version: { $gte: 1 } } } },
    });
  });
});

describe('MongoEventStore stream reads on the wire', () => {
  it('maps the events the server kept for the stream, with their commit fields', async () => {
    const wire = await openWire();
    try {
      wire.fake.script((command) =>
        isCommand('aggregate', 'commits')(command)
          ? {
              cursor: {
                id: BSON.Long.ZERO,
                ns: 'wire.commits',
                firstBatch: [
                  {
                    _id: 'c3',
                    position: 3,
                    occurredAt: new Date('2026-01-01T00:00:00Z'),
                    actor: 'alice',
                    operation: 'moveCard',
                    metadata: {},
                    idempotencyKey: 'k3',
                    events: [
                      {
                        eventId: 'e1',
                        stream: 'card-1',
                        version: 2,
                        type: 'CardMoved',
                        data: { to: 'c' },
                        schemaVersion: 1,
                      },
                    ],
                  },
                ],
              },
              ok: 1,
            }
          : undefined,
      );
      const store = new MongoEventStore({ client: wire.client, dbName: 'wire' });
      expect(await store.readStream('card-1', { fromVersion: 2 })).toEqual([
        {
          type: 'CardMoved',
          data: { to: 'c' },
          schemaVersion: 1,
          stream: 'card-1',
          version: 2,
          eventId: 'e1',
          commitId: 'c3',
          position: 3,
          actor: 'alice',
          idempotencyKey: 'k3',
          occurredAt: new Date('2026-01-01T00:00:00Z'),
        },
      ]);
    } finally {
      await wire.close();
    }
  });
});

describe('MongoEventStore BSON sizes on the wire', () => {
  let wire: Wire;
  beforeEach(async () => {
    wire = await openWire();
  });
  afterEach(async () => {
    await wire.close();
  });

  it('refuses, before any round trip, a commit under the JSON limit whose BSON is over 16 MiB', async () => {
    // 60 events of 32,000 zeros: about 64 KiB of JSON each (3.8 MiB in all, within the
    // port's limits), but each array element costs its index as a key in BSON: over 20 MB.
    const events = Array.from({ length: 60 }, () => ({
      type: 'Bulk',
      data: { xs: Array.from({ length: 32_000 }, () => 0) },
    }));
    const request: AppendRequest = { streams: [{ stream: 'big', expected: ANY, events }] };
    expect(Buffer.byteLength(JSON.stringify(request))).toBeLessThan(4 * 1024 * 1024);
    const store = new MongoEventStore({ client: wire.client, dbName: 'wire' });
    const { value: error, commands } = await wire.during(() =>
      store.append(request).catch((e: unknown) => e),
    );
    expect(error).toBeInstanceOf(EventStoreValidationError);
    expect(String(error)).toMatch(/bytes of BSON/);
    expect(commands).toEqual([]);
  });

  it('still writes a commit of several MiB of BSON below the limit', async () => {
    const events = Array.from({ length: 10 }, () => ({
      type: 'Bulk',
      data: { xs: Array.from({ length: 32_000 }, () => 0) },
    }));
    const store = new MongoEventStore({ client: wire.client, dbName: 'wire' });
    const result = await store.append({ streams: [{ stream: 'big', expected: ANY, events }] });
    expect(result.position).toBe(1);
  });
});
