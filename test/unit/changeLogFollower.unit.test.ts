import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { ChangeLogFollower } from '../../src/projector/ChangeLogFollower.js';
import { createMemoryProjectorStorage } from '../../src/projector/memory/MemoryProjectorStorage.js';
import type { ChangeLog, ChangeLogEntry, ChangeLogTail } from '../../src/projector/types.js';

const entry = (cursor: number): ChangeLogEntry => ({
  cursor,
  commitId: `commit-${cursor}`,
  scopes: ['b1'],
  operation: 'editCard',
  actor: 'u1',
  at: new Date(1_000 * cursor),
  invalidated: [{ typename: 'Card', id: `card-${cursor}`, fields: ['title'], version: cursor }],
});

/**
 * A change log whose tails fail like a driver read would (a server selection
 * timeout): `failures` tails throw once they have yielded `failAfter` entries.
 */
function flakyChangeLog(inner: ChangeLog, failures: number, failAfter: number): ChangeLog {
  let left = failures;
  return {
    record: (e) => inner.record(e),
    recordMany: (e) => inner.recordMany(e),
    read: (after, options) => inner.read(after, options),
    head: () => inner.head(),
    tail(after): ChangeLogTail {
      const tail = inner.tail(after);
      const fail = left-- > 0;
      return {
        close: () => tail.close(),
        async *[Symbol.asyncIterator]() {
          let yielded = 0;
          for await (const e of tail) {
            if (fail && yielded === failAfter) {
              throw new Error('Server selection timed out after 30000 ms');
            }
            yielded += 1;
            yield e;
          }
        },
      };
    },
  };
}

const silent = pino({ level: 'silent' });
const followers: ChangeLogFollower[] = [];
afterEach(async () => {
  await Promise.all(followers.splice(0).map((f) => f.stop()));
});

describe('ChangeLogFollower', () => {
  it('resumes after a failed read, delivering every later entry once and in order', async () => {
    const { changeLog } = createMemoryProjectorStorage({ changeLogRetention: 1_000 });
    const follower = new ChangeLogFollower(flakyChangeLog(changeLog, 3, 2), silent, {
      initialMs: 1,
      maxMs: 5,
    });
    followers.push(follower);
    const delivered: number[] = [];
    follower.onEntry((e) => delivered.push(e.cursor));
    await follower.start();

    for (let cursor = 1; cursor <= 20; cursor += 1) await changeLog.record(entry(cursor));
    await follower.waitFor(20, { timeoutMs: 20_000 });

    expect(delivered).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    const status = follower.status();
    expect(status.state).toBe('running');
    expect(status.restarts).toBe(3);
    expect(status.lastError?.message).toMatch(/Server selection timed out/);
  });

  it('a waitFor issued while the tail is failing resolves once the tail recovers', async () => {
    const { changeLog } = createMemoryProjectorStorage({ changeLogRetention: 1_000 });
    const follower = new ChangeLogFollower(flakyChangeLog(changeLog, 1, 0), silent, {
      initialMs: 50,
      maxMs: 50,
      random: () => 1,
    });
    followers.push(follower);
    await follower.start();
    const waiting = follower.waitFor(1, { timeoutMs: 20_000 });
    await changeLog.record(entry(1));
    await expect(waiting).resolves.toBeUndefined();
    expect(follower.seen).toBe(1);
  });

  it('stops promptly while backing off, and reports stopped', async () => {
    const { changeLog } = createMemoryProjectorStorage({ changeLogRetention: 1_000 });
    const follower = new ChangeLogFollower(flakyChangeLog(changeLog, 100, 0), silent, {
      initialMs: 60_000,
      maxMs: 60_000,
      random: () => 1,
    });
    await follower.start();
    await changeLog.record(entry(1));
    for (let i = 0; i < 100 && follower.status().state !== 'backoff'; i += 1) {
      await new Promise((r) => setTimeout(r, 5));
    }
    expect(follower.status().state).toBe('backoff');
    const started = Date.now();
    await follower.stop();
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(follower.status().state).toBe('stopped');
  });
});
