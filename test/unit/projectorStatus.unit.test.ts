import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryEventStore } from '../../src/eventstore/memory/MemoryEventStore.js';
import { ANY, type CommitFeed, type EventStore } from '../../src/eventstore/types.js';
import { createMemoryProjectorStorage } from '../../src/projector/memory/MemoryProjectorStorage.js';
import { ProjectorRuntime } from '../../src/projector/ProjectorRuntime.js';
import { RebuildInProgressError } from '../../src/projector/projectorStatus.js';
import type { Projection } from '../../src/projector/types.js';
import { until } from '../support/until.js';

const logger = pino({ level: 'silent' });

/** Counts deposits per account; throws on the commits `failing` names while it does. */
function counting(failing: Set<number>): Projection {
  return {
    name: 'deposits',
    handles: ['Deposited'],
    async apply(context) {
      if (failing.has(context.commit.position))
        throw new Error(`cannot apply ${context.commit.position}`);
      for (const event of context.commit.events) {
        await context.update<{ _id: string; count: number }>(
          'deposits',
          event.stream,
          event,
          (doc) => ({
            _id: event.stream,
            count: (doc?.count ?? 0) + 1,
          }),
        );
      }
    },
  };
}

const deposit = (store: EventStore, account: string) =>
  store.append({
    streams: [{ stream: account, expected: ANY, events: [{ type: 'Deposited', data: {} }] }],
    metadata: {},
  });

describe('ProjectorRuntime status for operators', () => {
  const runtimes: ProjectorRuntime[] = [];
  afterEach(async () => {
    for (const r of runtimes.splice(0)) await r.stop();
  });
  const start = (store: EventStore, projection: Projection) => {
    const runtime = new ProjectorRuntime({
      store,
      storage: createMemoryProjectorStorage(),
      projections: [projection],
      logger,
      retryDelayMs: 20,
    });
    runtimes.push(runtime);
    runtime.start();
    return runtime;
  };

  it("keeps a failing projection's error with its commit, backs off, and resumes once the commit applies", async () => {
    const store = new MemoryEventStore();
    const failing = new Set([2]);
    const runtime = start(store, counting(failing));
    await deposit(store, 'acc-1');
    await deposit(store, 'acc-2');
    await until(async () => (await runtime.lag()).errors.length > 0);
    const lag = await runtime.lag();
    expect(lag.errors[0]).toMatchObject({
      position: 2,
      projection: 'deposits',
      message: 'cannot apply 2',
    });
    expect(lag.projections[0]!.errors).toHaveLength(lag.errors.length);
    expect(lag.checkpoint).toBe(1);
    expect(lag.commitsBehind).toBe(1);
    await until(() => runtime.status().restarts > 0);
    expect(runtime.status().lastError?.message).toBe('cannot apply 2');

    failing.clear();
    await until(async () => (await runtime.lag()).checkpoint === 2);
    const recovered = await runtime.lag();
    expect(recovered).toMatchObject({ commitsBehind: 0, commitsProcessed: 2, eventsProcessed: 2 });
    expect(recovered.projections[0]).toMatchObject({ eventsProcessed: 2, lastError: null });
    // The history stays for operators after the recovery.
    expect(recovered.errors[0]).toMatchObject({ position: 2, projection: 'deposits' });
    await until(() => runtime.status().state === 'running');
  });

  it('counts a gap when the feed skips commit positions', async () => {
    const inner = new MemoryEventStore();
    for (const account of ['a', 'b', 'c', 'd']) await deposit(inner, account);
    // A feed that loses commit 3, as a broken change stream could.
    const store: EventStore = {
      append: (r, o) => inner.append(r, o),
      readStream: (s, o) => inner.readStream(s, o),
      readStreamBackward: (s, o) => inner.readStreamBackward(s, o),
      streamVersion: (s, o) => inner.streamVersion(s, o),
      idempotentResult: (k, f, o) => inner.idempotentResult(k, f, o),
      readAll: (o) => inner.readAll(o),
      headPosition: () => inner.headPosition(),
      archiveStreams: (st, o) => inner.archiveStreams(st, o),
      restoreStreams: (st, o) => inner.restoreStreams(st, o),
      close: () => inner.close(),
      subscribe: (options): CommitFeed => {
        const feed = inner.subscribe(options);
        return {
          close: () => feed.close(),
          async *[Symbol.asyncIterator]() {
            for await (const item of feed) {
              if (item.kind === 'commit' && item.commit.position === 3) continue;
              yield item;
            }
          },
        };
      },
    };
    const runtime = start(store, counting(new Set()));
    await until(async () => (await runtime.lag()).gapsDetected > 0);
    expect((await runtime.lag()).gaps[0]).toMatchObject({ after: 2, before: 4 });
    // The change log refuses the gap too, so the projector stops there, visibly.
    await until(async () => (await runtime.lag()).errors.length > 0);
    const lag = await runtime.lag();
    expect(lag.errors[0]!.message).toContain('change log gap');
    expect(lag.checkpoint).toBe(2);
    expect(lag.commitsBehind).toBe(2);
  });

  it("refuses a second rebuild while one runs, and reports the first one's progress to the end", async () => {
    const store = new MemoryEventStore();
    for (let i = 0; i < 40; i++) await deposit(store, `acc-${i % 5}`);
    const runtime = start(store, counting(new Set()));
    await until(async () => (await runtime.lag()).checkpoint === 40);
    const first = runtime.startRebuild({ batchSize: 1 });
    expect(first).toMatchObject({ state: 'running', processed: 0 });
    expect(() => runtime.startRebuild()).toThrow(RebuildInProgressError);
    await expect(runtime.rebuild()).rejects.toBeInstanceOf(RebuildInProgressError);
    await until(async () => (await runtime.lag()).rebuild?.state === 'succeeded');
    const done = (await runtime.lag()).rebuild!;
    expect(done).toMatchObject({
      id: first.id,
      processed: 40,
      total: 40,
      etaSeconds: null,
      error: null,
    });
    expect(done.rate).toBeGreaterThan(0);
    expect(done.finishedAt!.getTime()).toBeGreaterThanOrEqual(done.startedAt.getTime());
  });
});
