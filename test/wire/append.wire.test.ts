import { BSON, MongoError, type Document } from 'mongodb';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  CommitOutcomeUnknown,
  EventStoreBusy,
  EventStoreUnavailable,
  EventStoreValidationError,
  IdempotencyKeyReused,
  VersionConflict,
} from '../../src/eventstore/errors.js';
import {
  MongoEventStore,
  type MongoEventStoreOptions,
} from '../../src/eventstore/mongo/MongoEventStore.js';
import { POSITION_COUNTER_ID, RESERVATION_TTL_MS } from '../../src/eventstore/mongo/documents.js';
import { ANY, type AppendRequest } from '../../src/eventstore/types.js';
import { duplicateKeyReply, serverError, type WireCommand } from './fakePrimary.js';
import { isCommand, openWire, sequence, type Wire } from './harness.js';
import { fingerprintOf } from '../../src/eventstore/idempotency.js';

/** One event on an existing stream at an exact version: the usual command's append. */
const oneStream: AppendRequest = {
  streams: [{ stream: 'card-1', expected: 3, events: [{ type: 'CardRenamed', data: { n: 1 } }] }],
};

const onStream = (stream: string, expected: AppendRequest['streams'][number]['expected']) => ({
  streams: [{ stream, expected, events: [{ type: 'CardRenamed', data: { n: 1 } }] }],
});

const twoStreams = (idempotencyKey?: string): AppendRequest => ({
  streams: [
    { stream: 'card-1', expected: 3, events: [{ type: 'CardMoved', data: {} }] },
    { stream: 'column-1', expected: 'NO_STREAM', events: [{ type: 'CardEntered', data: {} }] },
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

const writeConflict = serverError(112, 'WriteConflict', ['TransientTransactionError']);

/** `find streams` answers that `card-1` is at version `version`. */
const cardAt =
  (version: number) =>
  (command: WireCommand): Document | undefined =>
    isCommand('find', 'streams')(command)
      ? {
          cursor: {
            id: BSON.Long.ZERO,
            ns: `${command.db}.streams`,
            firstBatch: [{ _id: 'card-1', version }],
          },
          ok: 1,
        }
      : undefined;

/** A conditional head update that matches nothing: the head is at another version. */
const headElsewhere = (command: WireCommand): Document | undefined =>
  isCommand('update', 'streams')(command) ? { n: 0, nModified: 0, ok: 1 } : undefined;

const inTransaction = (c: WireCommand) => c.body.autocommit === false;
/** An insert into `commits` outside any transaction: a tombstone. */
const isTombstone = (c: WireCommand) => isCommand('insert', 'commits')(c) && !inTransaction(c);
const lsidOf = (c: WireCommand) => JSON.stringify((c.body.lsid as Document | undefined)?.id);

/** The documents a command writes, as `collection/key` strings (unique index keys included). */
function touched(c: WireCommand): string[] {
  const collection = String(c.body[c.name]);
  if (c.name === 'insert') {
    return (c.body.documents as Document[]).flatMap((d) => [
      `${collection}/_id=${String(d._id)}`,
      ...(collection === 'commits' ? [`${collection}/position=${String(d.position)}`] : []),
    ]);
  }
  if (c.name === 'update') {
    return (c.body.updates as Document[]).map((u) => `${collection}/_id=${String(u.q._id)}`);
  }
  if (c.name === 'findAndModify') return [`${collection}/_id=${String(c.body.query?._id)}`];
  return [];
}

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
    it('appends at an exact version in four round trips; the position is reserved outside the transaction', async () => {
      const { value, commands } = await wire.during(() => store().append(oneStream));
      expect(sequence(commands)).toEqual([
        'update streams',
        'findAndModify counters',
        'insert reservations',
        'insert commits',
        'commitTransaction',
      ]);
      expect(value).toMatchObject({ position: 1, streams: [{ stream: 'card-1', version: 4 }] });
      const [head, counter, reservation, commit, commitTransaction] = commands as [
        WireCommand,
        WireCommand,
        WireCommand,
        WireCommand,
        WireCommand,
      ];
      // The head write starts the transaction at snapshot; the version check is its filter.
      expect(head.body).toMatchObject({
        startTransaction: true,
        autocommit: false,
        readConcern: { level: 'snapshot' },
      });
      expect(head.body.updates).toEqual([
        { q: { _id: 'card-1', version: 3 }, u: { $set: { version: 4 } } },
      ]);
      // The counter is one single-document write of its own session, in no transaction,
      // acknowledged by the primary alone: nothing holds it.
      expect(counter.body.autocommit).toBeUndefined();
      expect(counter.body.startTransaction).toBeUndefined();
      expect(lsidOf(counter)).not.toEqual(lsidOf(head));
      expect(counter.body.writeConcern).toEqual({ w: 1 });
      // One atomic increment of the one counter document, created if missing, read after.
      expect(counter.body).toMatchObject({
        query: { _id: POSITION_COUNTER_ID },
        update: { $inc: { value: 1 } },
        upsert: true,
        new: true,
      });
      // Which session reserved the position is recorded before the commit document exists,
      // outside the transaction, so a dead appender's transaction can be ended by lsid.
      expect(reservation.body.autocommit).toBeUndefined();
      expect((reservation.body.documents as Document[])[0]).toMatchObject({
        _id: 1,
        lsid: head.body.lsid,
      });
      // It expires (TTL index) well after any transaction could still hold the position,
      // and is acknowledged by the primary alone, as the counter is.
      const expiresAt = (reservation.body.documents as { expiresAt: Date }[])[0]!.expiresAt;
      expect(expiresAt.getTime()).toBeGreaterThan(Date.now() + RESERVATION_TTL_MS - 60_000);
      expect(reservation.body.writeConcern).toEqual({ w: 1 });
      // The commit document and the commit belong to the head's transaction.
      for (const c of [commit, commitTransaction]) {
        expect(inTransaction(c)).toBe(true);
        expect(c.body.txnNumber).toEqual(head.body.txnNumber);
        expect(lsidOf(c)).toEqual(lsidOf(head));
      }
      expect((commit.body.documents as Document[])[0]).toMatchObject({
        position: 1,
        events: [{ stream: 'card-1', version: 4, type: 'CardRenamed' }],
      });
      expect(commitTransaction.body.writeConcern).toMatchObject({ w: 'majority', wtimeout: 5_000 });
      expect(commitTransaction.body.maxTimeMS).toBe(5_000);
      // What the driver reported is what went over the wire.
      expect(wire.started.slice(-commands.length).map((e) => e.commandName)).toEqual(
        commands.map((c) => c.name),
      );
    });

    it('reads the head in the transaction only for ANY and STREAM_EXISTS', async () => {
      wire.fake.script(cardAt(3));
      const { commands } = await wire.during(() => store().append(onStream('card-1', ANY)));
      expect(sequence(commands)).toEqual([
        'find streams',
        'update streams',
        'findAndModify counters',
        'insert reservations',
        'insert commits',
        'commitTransaction',
      ]);
      expect(commands[1]!.body.updates).toEqual([
        { q: { _id: 'card-1', version: 3 }, u: { $set: { version: 4 } } },
      ]);
    });

    it('writes several heads in one update and one insert, before the reservation', async () => {
      const { commands } = await wire.during(() => store().append(twoStreams()));
      expect(sequence(commands)).toEqual([
        'update streams',
        'insert streams',
        'findAndModify counters',
        'insert reservations',
        'insert commits',
        'commitTransaction',
      ]);
      expect(commands[1]!.body.documents).toEqual([{ _id: 'column-1', version: 1 }]);
    });

    it('with an idempotency key, writes the key in the transaction, unless a live record holds it', async () => {
      const { commands } = await wire.during(() => store().append(twoStreams('key-1')));
      expect(sequence(commands)).toEqual([
        'update streams',
        'insert streams',
        'findAndModify counters',
        'insert reservations',
        'insert commits',
        'update idempotency',
        'commitTransaction',
      ]);
      const [keyWrite] = commands[5]!.body.updates as Document[];
      // Matches only a missing or expired record; a live one makes the upsert a duplicate key.
      expect(keyWrite).toMatchObject({
        q: { _id: 'key-1', expiresAt: { $lte: expect.any(Date) } },
        upsert: true,
      });
      expect(inTransaction(commands[5]!)).toBe(true);
    });

    it('appends to disjoint streams write no common document inside their transactions', async () => {
      const s = store();
      const from = wire.fake.commands.length;
      await Promise.all([
        s.append(onStream('card-1', 3)),
        s.append(onStream('card-2', 'NO_STREAM')),
        s.append({ ...onStream('card-3', 7), idempotencyKey: 'k-3' }),
        s.append({ ...onStream('card-4', 1), idempotencyKey: 'k-4' }),
      ]);
      const byTransaction = new Map<string, Set<string>>();
      for (const c of wire.fake.commands.slice(from).filter(inTransaction)) {
        const keys = byTransaction.get(lsidOf(c)) ?? new Set<string>();
        for (const k of touched(c)) keys.add(k);
        byTransaction.set(lsidOf(c), keys);
      }
      expect(byTransaction.size).toBe(4);
      const all = [...byTransaction.values()].flatMap((keys) => [...keys]);
      // Every document (and unique key) a transaction writes is its own.
      expect(new Set(all).size).toBe(all.length);
      expect(all.some((k) => k.startsWith('counters/'))).toBe(false);
    });

    it('runs appends to disjoint streams at the same time (no per-instance queue)', async () => {
      let firstCommitAnsweredAt: number | undefined;
      let arrivedMeanwhile = 0;
      wire.fake.script((command) => {
        if (!isCommand('commitTransaction')(command)) return undefined;
        const now = performance.now();
        if (firstCommitAnsweredAt === undefined) firstCommitAnsweredAt = now + 400;
        else if (now < firstCommitAnsweredAt) arrivedMeanwhile += 1;
        return { $delayMs: 400, reply: { ok: 1 } };
      });
      const s = store();
      const results = await Promise.all(
        Array.from({ length: 8 }, (_, i) => s.append(onStream(`card-${i}`, 'NO_STREAM'))),
      );
      // While the first commit was held, others had reached their own commit: with a queue
      // per instance, none could have.
      expect(arrivedMeanwhile).toBeGreaterThanOrEqual(3);
      expect(new Set(results.map((r) => r.position)).size).toBe(8);
    });
  });

  describe('faults', () => {
    it('retries after a WriteConflict on a head, before any position is reserved', async () => {
      wire.fake.failNext(isCommand('update', 'streams'), writeConflict);
      const { value, commands } = await wire.during(() => store().append(oneStream));
      expect(sequence(commands)).toEqual([
        'update streams',
        'abortTransaction',
        'update streams',
        'findAndModify counters',
        'insert reservations',
        'insert commits',
        'commitTransaction',
      ]);
      expect(commands[2]!.body.txnNumber).not.toEqual(commands[0]!.body.txnNumber);
      expect(value.position).toBe(1);
    });

    it('closes the reserved position with a tombstone when the attempt fails after reserving it', async () => {
      wire.fake.failNext(isCommand('insert', 'commits'), writeConflict);
      const { value, commands } = await wire.during(() => store().append(oneStream));
      expect(sequence(commands)).toEqual([
        'update streams',
        'findAndModify counters',
        'insert reservations',
        'insert commits',
        'abortTransaction',
        'insert commits',
        'update streams',
        'findAndModify counters',
        'insert reservations',
        'insert commits',
        'commitTransaction',
      ]);
      const tombstone = commands[5]!;
      expect(isTombstone(tombstone)).toBe(true);
      expect(tombstone.body.documents).toEqual([
        expect.objectContaining({ _id: 'gap-1', position: 1, gap: true, events: [] }),
      ]);
      expect(tombstone.body.writeConcern).toMatchObject({ w: 'majority' });
      expect(tombstone.body.maxTimeMS).toBe(5_000);
      expect(value.position).toBe(2);
    });

    it('raises VersionConflict when the head is elsewhere, reserving nothing', async () => {
      wire.fake.script(cardAt(5));
      wire.fake.script(headElsewhere);
      const { value: error, commands } = await wire.during(() =>
        store()
          .append(oneStream)
          .catch((e: unknown) => e),
      );
      expect(error).toBeInstanceOf(VersionConflict);
      expect(error).toMatchObject({ stream: 'card-1', expected: 3, actual: 5 });
      expect(sequence(commands)).toEqual(['update streams', 'abortTransaction', 'find streams']);
      // The heads are read after the abort, at majority, only to say what the conflict is.
      expect(commands[2]!.body).toMatchObject({ readConcern: { level: 'majority' } });
      expect(commands[2]!.body.autocommit).toBeUndefined();
    });

    it('answers a replay of a committed append with its first result, not a conflict', async () => {
      const first = {
        commitId: 'first-commit',
        position: 7,
        streams: [{ stream: 'card-1', version: 4 }],
        occurredAt: new Date('2026-01-01T00:00:00Z'),
      };
      const request = { ...oneStream, idempotencyKey: 'key-1' };
      wire.fake.script(headElsewhere);
      wire.fake.script(idempotencyRecord('key-1', first, fingerprintOf(request)));
      const { value, commands } = await wire.during(() => store().append(request));
      expect(value).toEqual(first);
      expect(sequence(commands)).toEqual([
        'update streams',
        'abortTransaction',
        'find idempotency',
      ]);
      expect(commands[2]!.body).toMatchObject({ readConcern: { level: 'majority' } });
    });

    it('returns the first result when a live record holds the key (11000), closing the position', async () => {
      const first = {
        commitId: 'first-commit',
        position: 7,
        streams: [{ stream: 'card-1', version: 4 }],
        occurredAt: new Date('2026-01-01T00:00:00Z'),
      };
      wire.fake.script(idempotencyRecord('key-1', first, fingerprintOf(twoStreams('key-1'))));
      wire.fake.failNext(
        isCommand('update', 'idempotency'),
        duplicateKeyReply('wire.idempotency', 'key-1'),
      );
      const { value, commands } = await wire.during(() => store().append(twoStreams('key-1')));
      expect(value).toEqual(first);
      expect(sequence(commands).slice(-4)).toEqual([
        'update idempotency',
        'abortTransaction',
        'insert commits',
        'find idempotency',
      ]);
      expect(isTombstone(commands.at(-2)!)).toBe(true);
      expect(commands.filter(isCommand('commitTransaction'))).toHaveLength(0);
    });

    it('retries a commit whose outcome is unknown, as the same transaction, and succeeds', async () => {
      wire.fake.failNext(isCommand('commitTransaction'), writeConcernTimeout, 2);
      const { value, commands } = await wire.during(() => store().append(oneStream));
      const commits = commands.filter(isCommand('commitTransaction'));
      expect(commits).toHaveLength(3);
      for (const c of commits) expect(c.body.txnNumber).toEqual(commits[0]!.body.txnNumber);
      // Never a second transaction: one reservation, one commit document, no tombstone.
      expect(commands.filter(isCommand('insert', 'commits'))).toHaveLength(1);
      expect(value.position).toBe(1);
    });

    it('settles an unknown outcome with a tombstone, then runs the append again safely', async () => {
      wire.fake.failNext(isCommand('commitTransaction'), writeConcernTimeout, 3);
      const started = performance.now();
      const { value, commands } = await wire.during(() =>
        store({ maxCommitAttempts: 3 }).append(oneStream),
      );
      // Three calls of the first transaction, the tombstone that proves it can never
      // commit, then a second attempt at a new position.
      expect(commands.filter(isCommand('commitTransaction'))).toHaveLength(4);
      const tombstones = commands.filter(isTombstone);
      expect(tombstones).toHaveLength(1);
      expect((tombstones[0]!.body.documents as Document[])[0]).toMatchObject({ position: 1 });
      expect(value.position).toBe(2);
      // withTransaction would have kept retrying the first commit for 120 s.
      expect(performance.now() - started).toBeLessThan(5_000);
    });

    it('returns the result when the tombstone finds the unknown commit holding its position', async () => {
      let commitId: string | undefined;
      wire.fake.failNext(isCommand('commitTransaction'), writeConcernTimeout, 100);
      wire.fake.script((command) => {
        if (isCommand('insert', 'commits')(command) && inTransaction(command)) {
          commitId = String((command.body.documents as Document[])[0]!._id);
          return undefined;
        }
        if (isTombstone(command))
          return duplicateKeyReply('wire.commits', 'gap-1', 'position_1_unique');
        if (isCommand('find', 'commits')(command)) {
          expect(command.body.filter).toEqual({ position: 1 });
          return {
            cursor: { id: BSON.Long.ZERO, ns: 'wire.commits', firstBatch: [{ _id: commitId }] },
            ok: 1,
          };
        }
        return undefined;
      });
      const { value, commands } = await wire.during(() =>
        store({ maxCommitAttempts: 2 }).append(oneStream),
      );
      expect(value).toMatchObject({ commitId, position: 1 });
      expect(commands.filter(isCommand('findAndModify'))).toHaveLength(1);
    });

    it('raises CommitOutcomeUnknown, never appending twice, when the tombstone is refused and a majority read finds nothing', async () => {
      // The majority read trails the write that refused the tombstone: that write may be
      // this very commit. Running the append again would commit its events twice (ANY).
      wire.fake.failNext(isCommand('commitTransaction'), writeConcernTimeout, 100);
      wire.fake.script((command) =>
        isTombstone(command)
          ? duplicateKeyReply('wire.commits', 'gap-1', 'position_1_unique')
          : undefined,
      );
      const { value: error, commands } = await wire.during(() =>
        store({ maxCommitAttempts: 2 })
          .append(onStream('card-1', ANY))
          .catch((e: unknown) => e),
      );
      expect(error).toBeInstanceOf(CommitOutcomeUnknown);
      expect(commands.filter(isCommand('findAndModify', 'counters'))).toHaveLength(1);
      expect(commands.filter(isCommand('insert', 'commits')).filter(inTransaction)).toHaveLength(1);
    });

    it('runs the append again when a different document visibly holds the position', async () => {
      wire.fake.failNext(isCommand('commitTransaction'), writeConcernTimeout, 2);
      wire.fake.script((command) => {
        if (isTombstone(command))
          return duplicateKeyReply('wire.commits', 'gap-1', 'position_1_unique');
        if (isCommand('find', 'commits')(command)) {
          // The feed's tombstone took position 1 first: the first transaction never commits.
          return {
            cursor: { id: BSON.Long.ZERO, ns: 'wire.commits', firstBatch: [{ _id: 'gap-1' }] },
            ok: 1,
          };
        }
        return undefined;
      });
      const value = await store({ maxCommitAttempts: 2 }).append(oneStream);
      expect(value.position).toBe(2);
    });

    it('ends its own session before settling an unknown outcome, so the tombstone need not wait for it', async () => {
      wire.fake.failNext(isCommand('commitTransaction'), writeConcernTimeout, 2);
      const { commands } = await wire.during(() =>
        store({ maxCommitAttempts: 2 }).append(oneStream),
      );
      const kill = commands.findIndex(isCommand('killSessions'));
      const tombstone = commands.findIndex(isTombstone);
      expect(kill).toBeGreaterThan(-1);
      expect(kill).toBeLessThan(tombstone);
      const transaction = commands.find(isCommand('commitTransaction'))!;
      expect(commands[kill]!.body).toMatchObject({ killSessions: [transaction.body.lsid] });
      expect(commands[kill]!.db).toBe('admin');
    });

    it('raises CommitOutcomeUnknown only when the tombstone cannot be written either', async () => {
      wire.fake.failNext(isCommand('commitTransaction'), writeConcernTimeout, 100);
      wire.fake.script((command) =>
        isTombstone(command) ? serverError(50, 'MaxTimeMSExpired') : undefined,
      );
      const error = await store({ maxCommitAttempts: 2 })
        .append(oneStream)
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(CommitOutcomeUnknown);
      expect(error).toBeInstanceOf(EventStoreUnavailable);
    });

    it('answers committed when the commit applied but its reply was lost with an error carrying no unknown-result label', async () => {
      // The server applies the commit and the reply is lost (connection cut): a network
      // error, labelled retryable, that clears the pool. The driver retries the commit
      // once, on a new connection; while that retry is in flight another operation's
      // network error clears the pool again, so the retry's own network error comes from
      // a stale connection, which the driver passes on undecorated: no RetryableWriteError,
      // hence no UnknownTransactionCommitResult (driver `Server.decorateCommandError`,
      // `ClientSession.commitTransaction`). Only the tombstone can tell what happened.
      let commitId: string | undefined;
      let sideFailure: Promise<unknown> | undefined;
      let commitCalls = 0;
      wire.fake.script((command) => {
        if (isCommand('insert', 'commits')(command) && inTransaction(command)) {
          commitId = String((command.body.documents as Document[])[0]!._id);
          return undefined;
        }
        if (isCommand('ping')(command)) return { $hangUp: true };
        if (isCommand('commitTransaction')(command)) {
          commitCalls += 1;
          // The first call: applied, its reply lost.
          if (commitCalls === 1) return { $hangUp: true };
          // The driver's retry: lost too, once another connection's failure cleared the pool.
          sideFailure = wire.client.db('admin').command({ ping: 1 });
          return { $await: sideFailure, reply: { $hangUp: true } };
        }
        // The tombstone finds the position taken, and a majority read shows by our commit.
        if (isTombstone(command))
          return duplicateKeyReply('wire.commits', 'gap-1', 'position_1_unique');
        if (isCommand('find', 'commits')(command)) {
          return {
            cursor: { id: BSON.Long.ZERO, ns: 'wire.commits', firstBatch: [{ _id: commitId }] },
            ok: 1,
          };
        }
        return undefined;
      });
      const { value, commands } = await wire.during(() =>
        store()
          .append(onStream('card-1', ANY))
          .catch((e: unknown) => e),
      );
      // The holder of the position is read by position, at majority: a local read could
      // see a commit a failover then rolls back.
      const holderRead = commands.filter(isCommand('find', 'commits'));
      expect(holderRead).toHaveLength(1);
      expect(holderRead[0]!.body).toMatchObject({
        filter: { position: 1 },
        readConcern: { level: 'majority' },
      });
      // The side operation really failed, so the retry's error was the unlabelled one.
      await expect(sideFailure).rejects.toThrow();
      expect(value).not.toBeInstanceOf(Error);
      expect(value).toMatchObject({ commitId, position: 1 });
      // The first call and the driver's one retry, and no commit call of ours after it:
      // the error carried no unknown-result label.
      expect(commands.filter(isCommand('commitTransaction'))).toHaveLength(2);
      // Settled by the tombstone, and never run again: one reservation, one commit document.
      expect(commands.filter(isTombstone)).toHaveLength(1);
      expect(commands.filter(isCommand('findAndModify', 'counters'))).toHaveLength(1);
      expect(commands.filter(isCommand('insert', 'commits')).filter(inTransaction)).toHaveLength(1);
    });

    it('stops at an aborted request once the tombstone proves nothing was written', async () => {
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
      expect(error).toEqual(new Error('client went away'));
      expect(commands.filter(isCommand('commitTransaction'))).toHaveLength(1);
      expect(commands.filter(isTombstone)).toHaveLength(1);
    });

    it('runs the transaction again after NoSuchTransaction (251) on commit, closing the first position', async () => {
      wire.fake.failNext(
        isCommand('commitTransaction'),
        serverError(251, 'NoSuchTransaction', ['TransientTransactionError']),
      );
      const { value, commands } = await wire.during(() => store().append(oneStream));
      expect(commands.filter(isCommand('findAndModify'))).toHaveLength(2);
      expect(commands.filter(isCommand('commitTransaction'))).toHaveLength(2);
      expect(commands.filter(isTombstone)).toHaveLength(1);
      expect(value.position).toBe(2);
    });

    it('raises VersionConflict when a stream head insert collides (11000) with a racing commit', async () => {
      let collided = false;
      wire.fake.script((command) => {
        if (isCommand('insert', 'streams')(command)) {
          collided = true;
          return duplicateKeyReply('wire.streams', 'card-1');
        }
        if (collided && isCommand('find', 'streams')(command)) return cardAt(3)(command);
        return undefined;
      });
      const { value: error, commands } = await wire.during(() =>
        store()
          .append(onStream('card-1', 'NO_STREAM'))
          .catch((e: unknown) => e),
      );
      expect(error).toBeInstanceOf(VersionConflict);
      expect(error).toMatchObject({ stream: 'card-1', actual: 3 });
      expect(commands.filter(isCommand('findAndModify'))).toHaveLength(0);
    });

    it('bounds the attempts of an append that keeps conflicting', async () => {
      wire.fake.failNext(isCommand('update', 'streams'), writeConflict, 1_000);
      const { value: error, commands } = await wire.during(() =>
        store({ maxAttempts: 4 })
          .append(oneStream)
          .catch((e: unknown) => e),
      );
      expect(error).toBeInstanceOf(EventStoreUnavailable);
      expect(String(error)).toContain('4 transaction attempts');
      expect(commands.filter(isCommand('update', 'streams'))).toHaveLength(4);
      expect(commands.filter(isCommand('findAndModify'))).toHaveLength(0);
      expect(commands.filter(isCommand('commitTransaction'))).toHaveLength(0);
    });

    it('stops retrying at the append deadline', async () => {
      wire.fake.failNext(isCommand('update', 'streams'), writeConflict, 10_000);
      const started = performance.now();
      const error = await store({ maxAttempts: 10_000, appendTimeoutMs: 300 })
        .append(oneStream)
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(EventStoreUnavailable);
      expect(String(error)).toContain('timed out');
      expect(performance.now() - started).toBeLessThan(3_000);
    });

    it('runs at most maxConcurrentAppends at once and refuses beyond the queue bound with EventStoreBusy', async () => {
      // Every commit takes a while, so the first two hold their permits while the rest arrive.
      wire.fake.script((command) =>
        isCommand('commitTransaction')(command) ? { $delayMs: 100, reply: { ok: 1 } } : undefined,
      );
      const s = store({ maxConcurrentAppends: 2, maxQueuedAppends: 3 });
      const results = await Promise.allSettled(
        Array.from({ length: 10 }, (_, i) => s.append(onStream(`s-${i}`, 'NO_STREAM'))),
      );
      const busy = results.filter((r) => r.status === 'rejected');
      expect(busy).toHaveLength(5);
      for (const r of busy) {
        expect(r.status === 'rejected' && r.reason).toBeInstanceOf(EventStoreBusy);
        expect(r.status === 'rejected' && (r.reason as Error).message).toMatch(
          /^append refused: .+ on this instance$/,
        );
      }
      const done = results.filter((r) => r.status === 'fulfilled');
      expect(done).toHaveLength(5);
      expect(wire.fake.commands.filter(isCommand('commitTransaction'))).toHaveLength(5);
    });

    it('drops a queued append at once when its signal fires, sending nothing for it', async () => {
      let releaseCommit!: () => void;
      const held = new Promise<void>((resolve) => (releaseCommit = resolve));
      // The running append holds the only permit until its commit is answered.
      let commitSeen!: () => void;
      const committing = new Promise<void>((resolve) => (commitSeen = resolve));
      wire.fake.script((command) => {
        if (!isCommand('commitTransaction')(command)) return undefined;
        commitSeen();
        return { $delayMs: 3_000, reply: { ok: 1 } };
      });
      const s = store({ maxConcurrentAppends: 1 });
      const running = s.append(onStream('s-1', 'NO_STREAM')).finally(() => releaseCommit());
      await committing;
      const controller = new AbortController();
      const queued = s
        .append(onStream('s-2', 'NO_STREAM'), { signal: controller.signal })
        .catch((e: unknown) => e);
      controller.abort(new Error('client went away'));
      const settledFirst = await Promise.race([
        queued.then(() => 'queued'),
        held.then(() => 'running'),
      ]);
      expect(settledFirst).toBe('queued');
      expect(await queued).toEqual(new Error('client went away'));
      await running;
      const streams = wire.fake.commands
        .filter((c) => isCommand('insert', 'streams')(c))
        .flatMap((c) => (c.body.documents as Document[]).map((d) => d._id));
      expect(streams).toEqual(['s-1']);
    });

    it('translates a network error on a head write into EventStoreUnavailable', async () => {
      wire.fake.failNext(isCommand('update', 'streams'), { $hangUp: true }, 1_000);
      const error = await store({ appendTimeoutMs: 1_000 })
        .append(oneStream)
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(EventStoreUnavailable);
    });
  });
});

/** `find idempotency` answers with the record of `key`. */
function idempotencyRecord(key: string, result: Document, fingerprint: string) {
  return (command: WireCommand): Document | undefined =>
    isCommand('find', 'idempotency')(command)
      ? {
          cursor: {
            id: BSON.Long.ZERO,
            ns: 'wire.idempotency',
            firstBatch: [
              { _id: key, result, fingerprint, expiresAt: new Date(Date.now() + 60_000) },
            ],
          },
          ok: 1,
        }
      : undefined;
}

describe('MongoEventStore reads on the wire', () => {
  let wire: Wire;
  beforeEach(async () => {
    wire = await openWire();
  });
  afterEach(async () => {
    await wire.close();
  });

  it('names the read in the error when the server refuses it', async () => {
    const store = new MongoEventStore({ client: wire.client, dbName: 'wire' });
    const refused = serverError(2, 'BadValue');
    const cases: [string, (c: WireCommand) => boolean, () => Promise<unknown>][] = [
      ['streamVersion', isCommand('find', 'streams'), () => store.streamVersion('s')],
      ['readStream', isCommand('aggregate', 'commits'), () => store.readStream('s')],
      [
        'readStreamBackward',
        isCommand('aggregate', 'commits'),
        () => store.readStreamBackward('s', { before: 3, limit: 2 }),
      ],
      ['readAll', isCommand('find', 'commits'), () => store.readAll()],
      ['headPosition', isCommand('find', 'commits'), () => store.headPosition()],
      [
        'idempotentResult',
        isCommand('find', 'idempotency'),
        () => store.idempotentResult('k', 'f'),
      ],
      ['archiveStreams', isCommand('find', 'commits'), () => store.archiveStreams(['s'])],
      ['restoreStreams', isCommand('find', 'archive_commits'), () => store.restoreStreams(['s'])],
    ];
    for (const [what, match, read] of cases) {
      wire.fake.failNext(match, refused);
      const error: unknown = await read().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(EventStoreUnavailable);
      expect(error).toMatchObject({ message: `${what} failed: BadValue (scripted)` });
    }
  });

  it('creates the unique index on position that decides between a commit and a tombstone', async () => {
    const { commands } = await wire.during(() =>
      MongoEventStore.create({ client: wire.client, dbName: 'wire' }),
    );
    const indexes = commands
      .filter(isCommand('createIndexes', 'commits'))
      .flatMap((c) => c.body.indexes as Document[]);
    expect(indexes).toContainEqual({
      key: { position: 1 },
      name: 'position_1_unique',
      unique: true,
    });
  });

  it('refuses an idempotency key recorded for another request with IdempotencyKeyReused', async () => {
    const store = new MongoEventStore({ client: wire.client, dbName: 'wire' });
    const first = {
      commitId: 'first-commit',
      position: 7,
      streams: [{ stream: 'card-1', version: 4 }],
      occurredAt: new Date('2026-01-01T00:00:00Z'),
    };
    wire.fake.script(idempotencyRecord('key-1', first, 'fingerprint-of-another-request'));
    const error = await store
      .idempotentResult('key-1', fingerprintOf({ ...oneStream, idempotencyKey: 'key-1' }))
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(IdempotencyKeyReused);
  });

  it('reads streams, heads and the log at majority, so a replay never sees what a failover could undo', async () => {
    const store = new MongoEventStore({ client: wire.client, dbName: 'wire' });
    const { commands } = await wire.during(async () => {
      await store.readStream('card-1');
      await store.streamVersion('card-1');
      await store.readAll();
      await store.headPosition();
    });
    // A stream read asks for the head and the hot commits at once; the archive is read
    // only when those do not hold every version up to the head (here: none exists).
    expect(sequence(commands).slice(0, 2).sort()).toEqual(['aggregate commits', 'find streams']);
    expect(sequence(commands).slice(2)).toEqual([
      'find streams',
      'find commits',
      'find archive_commits',
      'find commits',
      'find archive_commits',
    ]);
    for (const c of commands) expect(c.body.readConcern).toEqual({ level: 'majority' });
    // A stream is read from the commits holding its events, through their multikey index.
    const aggregate = commands.find((c) => c.name === 'aggregate')!;
    expect((aggregate.body.pipeline as Document[])[0]).toEqual({
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
});

describe('MongoEventStore.append on the wire, when the server refuses or time runs out', () => {
  let wire: Wire;
  const store = (options: Partial<MongoEventStoreOptions> = {}) =>
    new MongoEventStore({ client: wire.client, dbName: 'wire', ...options });
  const failure = (append: Promise<unknown>) =>
    append.then(
      () => undefined,
      (e: unknown) => e,
    );

  beforeEach(async () => {
    wire = await openWire();
  });
  afterEach(async () => {
    await wire.close();
  });

  it('answers EventStoreUnavailable at once, aborting the transaction, when a write is refused for good', async () => {
    wire.fake.failNext(isCommand('update', 'streams'), serverError(2, 'BadValue'));
    const { value: error, commands } = await wire.during(() => failure(store().append(oneStream)));
    expect(error).toBeInstanceOf(EventStoreUnavailable);
    expect(error).toMatchObject({ message: 'append failed: BadValue (scripted)' });
    expect((error as Error).cause).toBeInstanceOf(MongoError);
    // Not tried again: one head write, aborted, and nothing reserved.
    expect(sequence(commands)).toEqual(['update streams', 'abortTransaction']);
  });

  it('answers EventStoreUnavailable, not running again, when the commit is refused without a label and the tombstone goes in', async () => {
    wire.fake.failNext(isCommand('commitTransaction'), serverError(2, 'BadValue'));
    const { value: error, commands } = await wire.during(() => failure(store().append(oneStream)));
    expect(error).toBeInstanceOf(EventStoreUnavailable);
    expect(error).not.toBeInstanceOf(CommitOutcomeUnknown);
    expect(error).toMatchObject({ message: 'append commit failed: BadValue (scripted)' });
    expect((error as Error).cause).toBeInstanceOf(MongoError);
    expect(commands.filter(isCommand('commitTransaction'))).toHaveLength(1);
    expect(commands.filter(isTombstone)).toHaveLength(1);
    expect(commands.filter(isCommand('findAndModify', 'counters'))).toHaveLength(1);
  });

  it('answers CommitOutcomeUnknown when the commit is refused without a label and the tombstone fails too', async () => {
    wire.fake.failNext(isCommand('commitTransaction'), serverError(2, 'BadValue'));
    wire.fake.script((command) =>
      isTombstone(command) ? serverError(50, 'MaxTimeMSExpired') : undefined,
    );
    const error = await failure(store().append(oneStream));
    expect(error).toBeInstanceOf(CommitOutcomeUnknown);
    expect(error).toMatchObject({
      message: 'append commit outcome unknown: BadValue (scripted)',
    });
    expect((error as Error).cause).toBeInstanceOf(MongoError);
  });

  it('answers CommitOutcomeUnknown when the commit is refused without a label and its position is taken by what a majority read cannot see or cannot read', async () => {
    for (const holderRead of [
      undefined, // the majority read finds nothing
      serverError(2, 'BadValue'), // the majority read fails
    ]) {
      wire.fake.failNext(isCommand('commitTransaction'), serverError(2, 'BadValue'));
      wire.fake.failNext(
        isTombstone,
        duplicateKeyReply('wire.commits', 'gap-1', 'position_1_unique'),
      );
      if (holderRead) wire.fake.failNext(isCommand('find', 'commits'), holderRead);
      const { value: error, commands } = await wire.during(() =>
        failure(store().append(oneStream)),
      );
      expect(error).toBeInstanceOf(CommitOutcomeUnknown);
      expect(error).toMatchObject({
        message: 'append commit outcome unknown: BadValue (scripted)',
      });
      expect(commands.filter(isCommand('find', 'commits'))).toHaveLength(1);
    }
  });

  it("answers EventStoreUnavailable naming the append when reading the key holder's result fails", async () => {
    wire.fake.failNext(
      isCommand('update', 'idempotency'),
      duplicateKeyReply('wire.idempotency', 'key-1'),
    );
    wire.fake.failNext(isCommand('find', 'idempotency'), serverError(2, 'BadValue'), 10);
    const error = await failure(store().append(twoStreams('key-1')));
    expect(error).toBeInstanceOf(EventStoreUnavailable);
    expect(error).toMatchObject({ message: 'append failed: BadValue (scripted)' });
  });

  it('names the last error when the attempts run out: aborted commits', async () => {
    wire.fake.failNext(
      isCommand('commitTransaction'),
      serverError(251, 'NoSuchTransaction', ['TransientTransactionError']),
      100,
    );
    const { value: error, commands } = await wire.during(() =>
      failure(store({ maxAttempts: 2 }).append(oneStream)),
    );
    expect(error).toBeInstanceOf(EventStoreUnavailable);
    expect(error).toMatchObject({
      message: 'append gave up after 2 transaction attempts: NoSuchTransaction (scripted)',
    });
    expect((error as Error).cause).toBeInstanceOf(MongoError);
    expect(commands.filter(isCommand('commitTransaction'))).toHaveLength(2);
    expect(commands.filter(isTombstone)).toHaveLength(2);
  });

  it('names the last error when the attempts run out: commits whose outcome stayed unknown', async () => {
    wire.fake.failNext(isCommand('commitTransaction'), writeConcernTimeout, 100);
    const { value: error, commands } = await wire.during(() =>
      failure(store({ maxAttempts: 1, maxCommitAttempts: 2 }).append(oneStream)),
    );
    expect(error).toBeInstanceOf(EventStoreUnavailable);
    expect(error).toMatchObject({
      message: 'append gave up after 1 transaction attempts: waiting for replication timed out',
    });
    expect(commands.filter(isCommand('commitTransaction'))).toHaveLength(2);
  });

  it('stops retrying an unknown commit outcome at the append deadline, and says so once the tombstone proves nothing was written', async () => {
    wire.fake.script((command) =>
      isCommand('commitTransaction')(command)
        ? { $delayMs: 50, reply: writeConcernTimeout }
        : undefined,
    );
    const { value: error, commands } = await wire.during(() =>
      failure(store({ maxCommitAttempts: 10_000, appendTimeoutMs: 300 }).append(oneStream)),
    );
    expect(error).toBeInstanceOf(EventStoreUnavailable);
    expect(error).toMatchObject({
      message: 'append did not commit within its time: waiting for replication timed out',
    });
    expect((error as Error).cause).toBeInstanceOf(MongoError);
    // One transaction, settled by its tombstone, and not run again.
    expect(commands.filter(isTombstone)).toHaveLength(1);
    expect(commands.filter(isCommand('findAndModify', 'counters'))).toHaveLength(1);
  });

  it('names the conflicts it met when the deadline stops the retries', async () => {
    wire.fake.failNext(isCommand('update', 'streams'), writeConflict, 10_000);
    const error = await failure(
      store({ maxAttempts: 10_000, appendTimeoutMs: 300 }).append(oneStream),
    );
    expect(error).toBeInstanceOf(EventStoreUnavailable);
    expect((error as Error).message).toMatch(
      /^append timed out after 300 ms and \d+ transaction attempts: WriteConflict \(scripted\)$/,
    );
    expect((error as Error).cause).toBeInstanceOf(MongoError);
  });

  it('times out an append that waited in the queue past its deadline, having sent nothing', async () => {
    wire.fake.script((command) =>
      isCommand('commitTransaction')(command) ? { $delayMs: 400, reply: { ok: 1 } } : undefined,
    );
    const s = store({ maxConcurrentAppends: 1, appendTimeoutMs: 200 });
    const running = s.append(onStream('s-1', 'NO_STREAM'));
    const queued = failure(s.append(onStream('s-2', 'NO_STREAM')));
    expect((await running).position).toBe(1);
    const error = await queued;
    expect(error).toBeInstanceOf(EventStoreUnavailable);
    expect(error).toMatchObject({
      message: 'append timed out after 200 ms and 0 transaction attempts',
    });
    const streams = wire.fake.commands
      .filter(isCommand('insert', 'streams'))
      .flatMap((c) => (c.body.documents as Document[]).map((d) => d._id));
    expect(streams).toEqual(['s-1']);
  });

  it('runs an ANY append again when its head insert meets a racing one that left its expectation satisfied', async () => {
    let collided = false;
    wire.fake.script((command) => {
      if (!collided && isCommand('insert', 'streams')(command)) {
        collided = true;
        return duplicateKeyReply('wire.streams', 'card-1');
      }
      if (collided && isCommand('find', 'streams')(command)) return cardAt(3)(command);
      return undefined;
    });
    const { value, commands } = await wire.during(() => store().append(onStream('card-1', ANY)));
    expect(value.position).toBe(1);
    expect(commands.filter(isCommand('commitTransaction'))).toHaveLength(1);
  });

  it('writes a commit of exactly the BSON limit, and refuses one byte more', async () => {
    // 49 events of 32,000 zeros (about 16.7 MB of BSON), and a padding string (under the
    // port's 64 KiB per event) sized from the size the refusal reports, so that the
    // commit is exactly the limit.
    const request = (pad: number): AppendRequest => ({
      streams: [
        {
          stream: 'big',
          expected: ANY,
          events: [
            ...Array.from({ length: 49 }, () => ({
              type: 'Bulk',
              data: { xs: Array.from({ length: 32_000 }, () => 0) },
            })),
            { type: 'Pad', data: { pad: 'x'.repeat(pad) } },
          ],
        },
      ],
    });
    const s = store();
    const refusal = async (pad: number) => {
      const error = await failure(s.append(request(pad)));
      expect(error).toBeInstanceOf(EventStoreValidationError);
      expect(error).toMatchObject({ path: 'streams' });
      const [, bytes, limit] =
        /the commit would be (\d+) bytes of BSON, over MongoDB's limit of (\d+)$/.exec(
          (error as Error).message,
        ) ?? [];
      return { bytes: Number(bytes), limit: Number(limit) };
    };
    const widest = 60_000;
    const { bytes, limit } = await refusal(widest);
    const exact = widest - (bytes - limit);
    expect(exact).toBeGreaterThan(0);
    expect(await refusal(exact + 1)).toEqual({ bytes: limit + 1, limit });
    const { value, commands } = await wire.during(() => s.append(request(exact)));
    expect(value.position).toBe(1);
    expect(commands.filter(isCommand('insert', 'commits'))).toHaveLength(1);
  });
});
