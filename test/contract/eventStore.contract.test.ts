import { afterEach, describe, expect, it } from 'vitest';
import {
  EventStoreValidationError,
  IdempotencyKeyReused,
  VersionConflict,
} from '../../src/eventstore/errors.js';
import { fingerprintOf } from '../../src/eventstore/idempotency.js';
import {
  ANY,
  NO_STREAM,
  STREAM_EXISTS,
  type AppendRequest,
  type Commit,
  type EventStore,
  type FeedPosition,
} from '../../src/eventstore/types.js';
import { UpcasterRegistry } from '../../src/eventstore/upcasters.js';
import { appendLimits } from '../../src/eventstore/validation.js';
import { storeAdapters } from '../support/storeAdapters.js';

const event = (type: string, data: Record<string, unknown> = {}) => ({ type, data });

/** Collects `count` commits from a feed started at `from`, then closes it. */
async function takeCommits(store: EventStore, from: FeedPosition, count: number) {
  const feed = store.subscribe({ from });
  const commits: Commit[] = [];
  let last = from;
  for await (const item of feed) {
    last = item.checkpoint;
    if (item.kind === 'commit') commits.push(item.commit);
    if (commits.length === count) break;
  }
  await feed.close();
  return { commits, last };
}

describe.each(storeAdapters())('event store contract ($name)', (adapter) => {
  const opened: EventStore[] = [];
  const open = async (options?: {
    upcasters?: UpcasterRegistry;
    now?: () => Date;
    idempotencyTtlMs?: number;
  }) => {
    const store = await adapter.createEventStore(options);
    opened.push(store);
    return store;
  };
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((s) => s.close()));
  });

  it('appends events with consecutive versions and reads them back in order', async () => {
    const store = await open();
    const first = await store.append({
      streams: [{ stream: 'a', expected: NO_STREAM, events: [event('One'), event('Two')] }],
      metadata: { actor: 'u1', operation: 'test' },
    });
    expect(first.streams).toEqual([{ stream: 'a', version: 2 }]);
    expect(first.position).toBe(1);
    await store.append({
      streams: [{ stream: 'a', expected: 2, events: [event('Three', { n: 3 })] }],
    });

    const events = await store.readStream('a');
    expect(events.map((e) => [e.type, e.version, e.position])).toEqual([
      ['One', 1, 1],
      ['Two', 2, 1],
      ['Three', 3, 2],
    ]);
    expect(events[0]).toMatchObject({ actor: 'u1', commitId: first.commitId, schemaVersion: 1 });
    expect(events[2]!.data).toEqual({ n: 3 });
    expect((await store.readStream('a', { fromVersion: 3 })).map((e) => e.version)).toEqual([3]);
    expect(await store.streamVersion('a')).toBe(3);
    expect(await store.streamVersion('missing')).toBe(0);
    expect(await store.readStream('missing')).toEqual([]);
    expect(await store.headPosition()).toBe(2);
  });

  it('reads one stream backward by version, a page at a time, upcast, other streams left out', async () => {
    const upcasters = new UpcasterRegistry().register('Old', 1, (data) => ({
      ...data,
      lifted: true,
    }));
    const store = await open({ upcasters });
    // Commits holding several events of the stream, interleaved with another stream's.
    await store.append({
      streams: [
        {
          stream: 'a',
          expected: NO_STREAM,
          events: [event('Old', { n: 1 }), event('E', { n: 2 })],
        },
        { stream: 'b', expected: NO_STREAM, events: [event('E', { n: 100 })] },
      ],
      metadata: { actor: 'u1' },
    });
    for (let n = 3; n <= 7; n += 1) {
      await store.append({
        streams: [
          { stream: 'b', expected: ANY, events: [event('E', { n: 100 + n })] },
          { stream: 'a', expected: n - 1, events: [event('E', { n })] },
        ],
      });
    }
    await store.append({
      streams: [{ stream: 'a', expected: 7, events: [event('E', { n: 8 }), event('E', { n: 9 })] }],
    });
    const page = async (before: number | undefined, limit: number) =>
      (await store.readStreamBackward('a', { before, limit })).map((e) => [e.version, e.data.n]);

    expect(await page(undefined, 3)).toEqual([
      [9, 9],
      [8, 8],
      [7, 7],
    ]);
    expect(await page(7, 3)).toEqual([
      [6, 6],
      [5, 5],
      [4, 4],
    ]);
    expect(await page(4, 3)).toEqual([
      [3, 3],
      [2, 2],
      [1, 1],
    ]);
    expect(await page(2, 3)).toEqual([[1, 1]]);
    expect(await page(1, 3)).toEqual([]);
    // The page is the versions [before - limit, before - 1], beyond the head or not.
    expect(await page(11, 3)).toEqual([
      [9, 9],
      [8, 8],
    ]);
    expect(await page(100, 2)).toEqual([]);
    const [oldest] = await store.readStreamBackward('a', { before: 2, limit: 1 });
    expect(oldest).toMatchObject({ type: 'Old', schemaVersion: 2, actor: 'u1', stream: 'a' });
    expect(oldest!.data).toEqual({ n: 1, lifted: true });
    expect(await store.readStreamBackward('missing', { limit: 5 })).toEqual([]);
    // Every version exactly once, across pages of every size.
    for (const limit of [1, 2, 4, 9, 20]) {
      const seen: number[] = [];
      let before: number | undefined;
      for (;;) {
        const events = await store.readStreamBackward('a', { before, limit });
        if (events.length === 0) break;
        seen.push(...events.map((e) => e.version));
        before = events.at(-1)!.version;
      }
      expect(seen).toEqual([9, 8, 7, 6, 5, 4, 3, 2, 1]);
    }
  });

  it("keeps a commit's trace context for its feed and readers, outside the key's fingerprint", async () => {
    const store = await open();
    const traceContext = {
      traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
      tracestate: 'vendor=1',
    };
    const request = (traceparent: string): AppendRequest => ({
      streams: [{ stream: 'traced', expected: ANY, events: [event('Traced')] }],
      idempotencyKey: 'traced-key',
      metadata: { actor: 'u1', operation: 'test', traceContext: { ...traceContext, traceparent } },
    });
    const first = await store.append(request(traceContext.traceparent));
    // A retry of the same request is traced anew: same key, same request, another context.
    const retried = await store.append(
      request('00-11111111111111111111111111111111-2222222222222222-01'),
    );
    expect(retried.commitId).toBe(first.commitId);
    const [read] = await store.readAll();
    expect(read?.metadata.traceContext).toEqual(traceContext);
    const { commits } = await takeCommits(store, { position: 0 }, 1);
    expect(commits[0]?.metadata.traceContext).toEqual(traceContext);
  });

  it('rejects a stale expected version with the stream, the expectation and the actual head', async () => {
    const store = await open();
    await store.append({
      streams: [{ stream: 's', expected: NO_STREAM, events: [event('A'), event('B')] }],
    });
    const error = await store
      .append({ streams: [{ stream: 's', expected: 1, events: [event('C')] }] })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(VersionConflict);
    expect(error).toMatchObject({ stream: 's', expected: 1, actual: 2 });
    expect(await store.streamVersion('s')).toBe(2);
  });

  it('honours NO_STREAM, STREAM_EXISTS and ANY', async () => {
    const store = await open();
    await expect(
      store.append({ streams: [{ stream: 'x', expected: STREAM_EXISTS, events: [event('A')] }] }),
    ).rejects.toMatchObject({ stream: 'x', expected: STREAM_EXISTS, actual: 0 });
    await store.append({ streams: [{ stream: 'x', expected: ANY, events: [event('A')] }] });
    await store.append({
      streams: [{ stream: 'x', expected: STREAM_EXISTS, events: [event('B')] }],
    });
    await expect(
      store.append({ streams: [{ stream: 'x', expected: NO_STREAM, events: [event('C')] }] }),
    ).rejects.toMatchObject({ stream: 'x', expected: NO_STREAM, actual: 2 });
    await store.append({ streams: [{ stream: 'x', expected: ANY, events: [event('C')] }] });
    expect(await store.streamVersion('x')).toBe(3);
  });

  it('lets exactly one of 50 appends racing at the same expected version commit', async () => {
    const store = await open();
    await store.append({
      streams: [{ stream: 'hot', expected: NO_STREAM, events: [event('Seed')] }],
    });
    const results = await Promise.allSettled(
      Array.from({ length: 50 }, (_, i) =>
        store.append({ streams: [{ stream: 'hot', expected: 1, events: [event('Race', { i })] }] }),
      ),
    );
    const won = results.filter((r) => r.status === 'fulfilled');
    const lost = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(49);
    for (const error of lost) {
      expect(error).toBeInstanceOf(VersionConflict);
      expect(error).toMatchObject({ stream: 'hot', expected: 1, actual: 2 });
    }
    const events = await store.readStream('hot');
    expect(events.map((e) => e.type)).toEqual(['Seed', 'Race']);
  });

  it('commits with a condition (a stream with no events) only while that stream is at its version, writing nothing to it', async () => {
    const store = await open();
    await store.append({ streams: [{ stream: 's', expected: NO_STREAM, events: [event('A')] }] });
    const asserted = await store.append({
      streams: [
        { stream: 't', expected: NO_STREAM, events: [event('B')] },
        { stream: 's', expected: 1, events: [] },
      ],
    });
    expect(asserted.streams).toEqual([
      { stream: 't', version: 1 },
      { stream: 's', version: 1 },
    ]);
    expect(await store.streamVersion('s')).toBe(1);
    const [commit] = await store.readAll({ after: asserted.position - 1, limit: 1 });
    expect(commit!.events.map((e) => e.stream)).toEqual(['t']);
    await store.append({ streams: [{ stream: 's', expected: 1, events: [event('C')] }] });
    const stale = store.append({
      streams: [
        { stream: 't', expected: 1, events: [event('D')] },
        { stream: 's', expected: 1, events: [] },
      ],
    });
    await expect(stale).rejects.toMatchObject({ name: 'VersionConflict', stream: 's', actual: 2 });
    expect(await store.streamVersion('t')).toBe(1);
  });

  it('commits nothing to any stream when the third of three expectations fails', async () => {
    const store = await open();
    await store.append({ streams: [{ stream: 'c', expected: NO_STREAM, events: [event('A')] }] });
    const before = await store.headPosition();
    const request: AppendRequest = {
      streams: [
        { stream: 'a', expected: NO_STREAM, events: [event('A')] },
        { stream: 'b', expected: ANY, events: [event('B')] },
        { stream: 'c', expected: 5, events: [event('C')] },
      ],
    };
    await expect(store.append(request)).rejects.toMatchObject({
      stream: 'c',
      expected: 5,
      actual: 1,
    });
    expect(await store.readStream('a')).toEqual([]);
    expect(await store.readStream('b')).toEqual([]);
    expect((await store.readStream('c')).map((e) => e.type)).toEqual(['A']);
    expect(await store.headPosition()).toBe(before);
    expect(await store.readAll()).toHaveLength(1);
  });

  it('lets exactly one of 20 racing NO_STREAM claims on one stream win', async () => {
    const store = await open();
    const results = await Promise.allSettled(
      Array.from({ length: 20 }, (_, i) =>
        store.append({
          streams: [
            { stream: `owner-${i}`, expected: NO_STREAM, events: [event('Owner', { i })] },
            { stream: 'claim-alice', expected: NO_STREAM, events: [event('Claimed', { by: i })] },
          ],
        }),
      ),
    );
    const winners = results.flatMap((r, i) => (r.status === 'fulfilled' ? [i] : []));
    expect(winners).toHaveLength(1);
    for (const r of results) {
      if (r.status === 'rejected')
        expect(r.reason).toMatchObject({ stream: 'claim-alice', actual: 1 });
    }
    const claim = await store.readStream('claim-alice');
    expect(claim).toHaveLength(1);
    expect(claim[0]!.data).toEqual({ by: winners[0] });
    // The losers' own streams were not written either: the commit is all or nothing.
    const owners = await Promise.all(results.map((_, i) => store.streamVersion(`owner-${i}`)));
    expect(owners.filter((v) => v > 0)).toEqual([1]);
  });

  it('returns the first result to 10 racing appends with one idempotency key and commits once', async () => {
    const store = await open();
    const request: AppendRequest = {
      idempotencyKey: 'key-1',
      streams: [{ stream: 'idem', expected: ANY, events: [event('Once')] }],
    };
    const results = await Promise.all(Array.from({ length: 10 }, () => store.append(request)));
    for (const r of results) expect(r).toEqual(results[0]);
    expect(await store.streamVersion('idem')).toBe(1);
    expect(await store.readAll()).toHaveLength(1);

    const later = await store.append(request);
    expect(later).toEqual(results[0]);
    expect(await store.streamVersion('idem')).toBe(1);
  });

  it('refuses an idempotency key reused by another request, writing and revealing nothing', async () => {
    const store = await open();
    const first: AppendRequest = {
      idempotencyKey: 'shared',
      requestFingerprint: 'request-a',
      streams: [{ stream: 'owner-a', expected: NO_STREAM, events: [event('Claimed')] }],
    };
    const result = await store.append(first);
    const other = { ...first, requestFingerprint: 'request-b' };
    // Ten at once, as an attacker would race the owner's retry.
    const attempts = await Promise.allSettled(
      Array.from({ length: 10 }, () => store.append(other)),
    );
    for (const a of attempts) {
      expect(a.status).toBe('rejected');
      if (a.status === 'rejected') expect(a.reason).toBeInstanceOf(IdempotencyKeyReused);
    }
    await expect(store.idempotentResult('shared', 'request-b')).rejects.toBeInstanceOf(
      IdempotencyKeyReused,
    );
    expect(await store.idempotentResult('shared', 'request-a')).toEqual(result);
    expect(await store.append(first)).toEqual(result);
    expect(await store.readAll()).toHaveLength(1);
  });

  it('binds a key without an explicit fingerprint to the request itself', async () => {
    const store = await open();
    const request: AppendRequest = {
      idempotencyKey: 'k',
      streams: [{ stream: 's', expected: ANY, events: [event('E', { n: 1 })] }],
    };
    const result = await store.append(request);
    expect(await store.idempotentResult('k', fingerprintOf(request))).toEqual(result);
    const changed: AppendRequest = {
      ...request,
      streams: [{ stream: 's', expected: ANY, events: [event('E', { n: 2 })] }],
    };
    await expect(store.append(changed)).rejects.toBeInstanceOf(IdempotencyKeyReused);
    expect(await store.streamVersion('s')).toBe(1);
  });

  it('forgets an idempotency key once its time to live has passed', async () => {
    let now = Date.parse('2026-01-01T00:00:00Z');
    const store = await open({ now: () => new Date(now), idempotencyTtlMs: 60_000 });
    const request: AppendRequest = {
      idempotencyKey: 'ttl',
      requestFingerprint: 'same',
      streams: [{ stream: 't', expected: ANY, events: [event('E')] }],
    };
    const first = await store.append(request);
    now += 59_000;
    expect(await store.append(request)).toEqual(first);
    now += 2_000;
    expect(await store.idempotentResult('ttl', 'same')).toBeUndefined();
    const second = await store.append(request);
    // A new commit. Not necessarily at first + 1: on mongo the replay above reserved a
    // position before it found the key, and left a gap there.
    expect(second.commitId).not.toBe(first.commitId);
    expect(second.position).toBeGreaterThan(first.position);
    expect(await store.streamVersion('t')).toBe(2);
  });

  it('lets a retry succeed after the first attempt with its idempotency key failed', async () => {
    const store = await open();
    const attempt = (expected: number) =>
      store.append({
        idempotencyKey: 'retry-key',
        streams: [{ stream: 'r', expected, events: [event('E')] }],
      });
    await expect(attempt(3)).rejects.toBeInstanceOf(VersionConflict);
    const ok = await attempt(0);
    expect(ok.streams).toEqual([{ stream: 'r', version: 1 }]);
  });

  it.each([
    [
      'an empty stream name',
      { streams: [{ stream: '', expected: ANY, events: [event('E')] }] },
      'streams.0.stream',
    ],
    ['no streams', { streams: [] }, 'streams'],
    [
      'an empty event list',
      { streams: [{ stream: 's', expected: ANY, events: [] }] },
      'streams.0.events',
    ],
    ['only conditions', { streams: [{ stream: 's', expected: 1, events: [] }] }, 'streams'],
    [
      'a condition on a stream that may not exist',
      {
        streams: [
          { stream: 's', expected: NO_STREAM, events: [] },
          { stream: 't', expected: ANY, events: [event('E')] },
        ],
      },
      'streams.0.events',
    ],
    [
      'a negative version',
      { streams: [{ stream: 's', expected: -1, events: [event('E')] }] },
      'streams.0.expected',
    ],
    [
      'a fractional version',
      { streams: [{ stream: 's', expected: 1.5, events: [event('E')] }] },
      'streams.0.expected',
    ],
    [
      'an empty event type',
      { streams: [{ stream: 's', expected: ANY, events: [event('')] }] },
      'streams.0.events.0.type',
    ],
    [
      'an oversized event',
      {
        streams: [
          {
            stream: 's',
            expected: ANY,
            events: [event('Big', { blob: 'x'.repeat(appendLimits.maxEventBytes) })],
          },
        ],
      },
      'streams.0.events.0.data',
    ],
    [
      'a stream named twice',
      {
        streams: [
          { stream: 's', expected: ANY, events: [event('E')] },
          { stream: 's', expected: ANY, events: [event('E')] },
        ],
      },
      'streams.1.stream',
    ],
  ] as const)('rejects %s with a validation error and writes nothing', async (_, request, path) => {
    const store = await open();
    const error = await store.append(request as unknown as AppendRequest).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(EventStoreValidationError);
    expect(error).toMatchObject({ path });
    expect(await store.headPosition()).toBe(0);
    expect(await store.streamVersion('s')).toBe(0);
  });

  it('feeds every commit exactly once in commit order, and resumes from a saved position without skipping or repeating', async () => {
    const store = await open();
    const writers = Array.from({ length: 8 }, (_, w) =>
      (async () => {
        for (let i = 0; i < 10; i++) {
          await store.append({
            streams: [{ stream: `w-${w}`, expected: ANY, events: [event('Tick', { w, i })] }],
          });
        }
      })(),
    );
    // The consumer runs while the writers commit.
    const firstRun = takeCommits(store, { position: 0 }, 30);
    await Promise.all(writers);
    const { commits: head, last } = await firstRun;
    const { commits: tail } = await takeCommits(store, last, 50);
    const all = [...head, ...tail];
    expect(all.map((c) => c.position)).toEqual(Array.from({ length: 80 }, (_, i) => i + 1));
    expect(new Set(all.map((c) => c.commitId)).size).toBe(80);
    // Each writer's own events arrive in the order it wrote them.
    for (let w = 0; w < 8; w++) {
      const mine = all.flatMap((c) => c.events).filter((e) => e.stream === `w-${w}`);
      expect(mine.map((e) => e.data.i)).toEqual(Array.from({ length: 10 }, (_, i) => i));
    }
    const logged = await store.readAll({ after: 40, limit: 5 });
    expect(logged.map((c) => c.position)).toEqual([41, 42, 43, 44, 45]);
  });

  it('feeds commits made after the consumer started waiting', async () => {
    const store = await open();
    const pending = takeCommits(store, { position: 0 }, 2);
    await store.append({
      streams: [{ stream: 'late', expected: NO_STREAM, events: [event('A')] }],
    });
    await store.append({
      streams: [
        { stream: 'late', expected: 1, events: [event('B')] },
        { stream: 'other', expected: NO_STREAM, events: [event('C')] },
      ],
      metadata: { actor: 'u9', operation: 'demo' },
    });
    const { commits } = await pending;
    expect(commits[1]).toMatchObject({ position: 2, actor: 'u9', operation: 'demo' });
    expect(commits[1]!.events.map((e) => `${e.stream}@${e.version}`)).toEqual([
      'late@2',
      'other@1',
    ]);
  });

  it('upcasts old-schema events on stream reads, readAll and the feed', async () => {
    const upcasters = new UpcasterRegistry()
      .register('Renamed', 1, (d) => ({ title: d.name }))
      .register('Renamed', 2, (d) => ({ ...d, reason: 'unknown' }));
    const store = await open({ upcasters });
    await store.append({
      streams: [
        {
          stream: 'u',
          expected: NO_STREAM,
          events: [
            { type: 'Renamed', data: { name: 'old' }, schemaVersion: 1 },
            { type: 'Renamed', data: { title: 'new', reason: 'typo' }, schemaVersion: 3 },
          ],
        },
      ],
    });
    const expected = [
      { schemaVersion: 3, data: { title: 'old', reason: 'unknown' } },
      { schemaVersion: 3, data: { title: 'new', reason: 'typo' } },
    ];
    expect(await store.readStream('u')).toMatchObject(expected);
    expect((await store.readAll())[0]!.events).toMatchObject(expected);
    const { commits } = await takeCommits(store, { position: 0 }, 1);
    expect(commits[0]!.events).toMatchObject(expected);
  });

  it('stops a read whose signal is already aborted', async () => {
    const store = await open();
    const controller = new AbortController();
    controller.abort();
    await expect(store.readStream('a', { signal: controller.signal })).rejects.toThrow();
    await expect(
      store.append(
        { streams: [{ stream: 'a', expected: ANY, events: [event('E')] }] },
        { signal: controller.signal },
      ),
    ).rejects.toThrow();
    expect(await store.streamVersion('a')).toBe(0);
  });
});
