import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import {
  ANY,
  type EventStore,
  type ReadAllOptions,
  type StreamAppend,
  type SubscribeOptions,
} from '../../src/eventstore/types.js';
import { ChangeLogFollower } from '../../src/projector/ChangeLogFollower.js';
import { ProjectorRuntime } from '../../src/projector/ProjectorRuntime.js';
import type {
  Projection,
  ProjectorStorage,
  ReadCollection,
  ReadDoc,
  ReadView,
} from '../../src/projector/types.js';
import { projectorAdapters, type ReadSide } from '../support/projectorAdapters.js';
import { until } from '../support/until.js';

const logger = pino({ level: 'silent' });

interface Account extends ReadDoc {
  label: string;
  balance: number;
  version: number;
  group: string;
}

/** A small domain for the runtime: accounts receive deposits and labels. */
function accountProjection(options: { failAt?: { position: number; afterUpdates: number } } = {}) {
  const projection: Projection = {
    name: 'accounts',
    handles: ['Deposited', 'Labelled'],
    async apply(context) {
      let updates = 0;
      for (const event of context.commit.events) {
        const id = event.stream.slice('acc-'.length);
        const group = String(event.data.group);
        if (
          options.failAt?.position === context.commit.position &&
          updates === options.failAt.afterUpdates
        ) {
          throw new Error('projector killed in the middle of a commit');
        }
        await context.update<Account>('accounts', id, event, (doc) => {
          const base = doc ?? { _id: id, label: '', balance: 0, version: 0, group };
          return event.type === 'Deposited'
            ? { ...base, balance: base.balance + Number(event.data.amount), version: event.version }
            : { ...base, label: String(event.data.label), version: event.version };
        });
        updates++;
        context.invalidate(group, {
          typename: 'Account',
          id,
          fields: event.type === 'Deposited' ? ['balance'] : ['label'],
          version: event.version,
        });
      }
    },
  };
  return projection;
}

/** The expected read documents: a plain fold over every stream's events. */
async function foldAccounts(store: EventStore): Promise<Map<string, Omit<Account, '_applied'>>> {
  const accounts = new Map<string, Omit<Account, '_applied'>>();
  for (let after = 0; ;) {
    const commits = await store.readAll({ after, limit: 1000 });
    if (commits.length === 0) return accounts;
    for (const event of commits.flatMap((c) => c.events)) {
      const id = event.stream.slice('acc-'.length);
      const base = accounts.get(id) ?? {
        _id: id,
        label: '',
        balance: 0,
        version: 0,
        group: String(event.data.group),
      };
      accounts.set(
        id,
        event.type === 'Deposited'
          ? { ...base, balance: base.balance + Number(event.data.amount), version: event.version }
          : { ...base, label: String(event.data.label), version: event.version },
      );
    }
    after = commits.at(-1)!.position;
  }
}

async function readAccounts(storage: ProjectorStorage) {
  const view = await storage.readModels.active();
  const docs = await view.collection<Account>('accounts').find({}, { sort: ['_id', 1] });
  return new Map(docs.map(({ _applied, ...doc }) => [doc._id, doc]));
}

/**
 * Commits `count` deposits over `accounts` accounts, `parallel` at a time; some commits span
 * two streams. By default no more writers than accounts: the extra ones could only conflict
 * (twenty writers on three streams made appends on the simulator at load 20 lose every race
 * for their whole deadline).
 */
async function commitDeposits(
  store: EventStore,
  count: number,
  accounts = 50,
  parallel = Math.min(20, accounts),
) {
  let next = 0;
  const writer = async () => {
    while (next < count) {
      const i = next++;
      const a = i % accounts;
      const b = (i * 7 + 3) % accounts;
      const streams: StreamAppend[] = [
        {
          stream: `acc-${a}`,
          expected: ANY,
          events: [{ type: 'Deposited', data: { amount: i, group: `g${a % 3}` } }],
        },
      ];
      if (i % 5 === 0 && b !== a) {
        streams.push({
          stream: `acc-${b}`,
          expected: ANY,
          events: [{ type: 'Labelled', data: { label: `l${i}`, group: `g${b % 3}` } }],
        });
      }
      await store.append({ streams, metadata: { actor: `user-${i % 4}`, operation: 'deposit' } });
    }
  };
  await Promise.all(Array.from({ length: parallel }, writer));
}

/** A switch that holds calls while paused, as a frozen process would. */
function pauseGate() {
  let paused = false;
  let release: (() => void) | undefined;
  let opened = Promise.resolve();
  const gate = {
    held: 0,
    pause() {
      paused = true;
      opened = new Promise((resolve) => (release = resolve));
    },
    resume() {
      paused = false;
      release?.();
    },
    async pass() {
      if (!paused) return;
      gate.held += 1;
      await opened;
    },
  };
  return gate;
}

/**
 * The storage as a paused process uses it: lease calls and document writes wait at the gate.
 * With `freezeAtSwitch`, the process freezes (the gate closes) as it calls `activate`.
 */
function pausable(
  storage: ProjectorStorage,
  gate: ReturnType<typeof pauseGate>,
  options: { freezeAtSwitch?: boolean } = {},
): ProjectorStorage {
  const view = (inner: ReadView): ReadView => ({
    generation: inner.generation,
    collection: <T extends ReadDoc>(name: string) => {
      const c = inner.collection<T>(name);
      const paused: ReadCollection<T> = {
        get: (id, o) => c.get(id, o),
        getMany: (ids, o) => c.getMany(ids, o),
        find: (f, o) => c.find(f, o),
        count: (f, o) => c.count(f, o),
        putMany: (docs) => c.putMany(docs),
        delete: (id) => c.delete(id),
        put: async (doc: T) => {
          await gate.pass();
          await c.put(doc);
        },
        putEach: async (docs) => {
          await gate.pass();
          await c.putEach(docs);
        },
      };
      return paused;
    },
  });
  return {
    ...storage,
    readModels: {
      active: (o) => storage.readModels.active(o),
      view: (generation, o) => view(storage.readModels.view(generation, o)),
      createGeneration: () => storage.readModels.createGeneration(),
      activate: async (g, e, f) => {
        if (options.freezeAtSwitch) gate.pause();
        await gate.pass();
        return storage.readModels.activate(g, e, f);
      },
      dropGeneration: (g) => storage.readModels.dropGeneration(g),
    },
    leases: {
      acquire: async (n, o, t) => {
        await gate.pass();
        return storage.leases.acquire(n, o, t);
      },
      release: (n, o) => storage.leases.release(n, o),
      requestHandover: (n, o) => storage.leases.requestHandover(n, o),
      holder: (n) => storage.leases.holder(n),
    },
  };
}

describe.each(projectorAdapters())('projector runtime contract ($name)', (adapter) => {
  const cleanup: (() => Promise<void>)[] = [];
  const open = async (options?: { changeLogRetention?: number }) => {
    const side = await adapter.open(options);
    cleanup.push(() => side.close());
    return side;
  };
  const runtime = (
    side: ReadSide,
    projection = accountProjection(),
    owner?: string,
    leaseTtlMs = 300,
  ) => {
    const r = new ProjectorRuntime({
      store: side.store,
      storage: side.storage,
      projections: [projection],
      logger,
      leaseTtlMs,
      retryDelayMs: 20,
      ...(owner ? { owner } : {}),
    });
    cleanup.push(() => r.stop());
    return r;
  };
  const caughtUp = async (side: ReadSide) =>
    (await side.storage.changeLog.head()) === (await side.store.headPosition());

  afterEach(async () => {
    for (const c of cleanup.splice(0).reverse()) await c();
  });

  const volume = Math.round(10_000 * adapter.scale);
  it(`projects ${volume} commits into documents equal to a fold of all events, with change log cursors 1..N`, async () => {
    const side = await open();
    const projector = runtime(side);
    projector.start();
    await commitDeposits(side.store, volume);
    await until(() => caughtUp(side), 60_000);

    expect(await readAccounts(side.storage)).toEqual(await foldAccounts(side.store));
    const cursors: number[] = [];
    for (let after = 0; ;) {
      const read = await side.storage.changeLog.read(after, { limit: 2_000 });
      if (read.kind !== 'entries') throw new Error('change log expired unexpectedly');
      if (read.entries.length === 0) break;
      cursors.push(...read.entries.map((e) => e.cursor));
      after = read.entries.at(-1)!.cursor;
    }
    expect(cursors).toEqual(Array.from({ length: volume }, (_, i) => i + 1));
  });

  it('records an empty change log entry for a gap: cursors stay dense, waitFor passes it, a rebuild skips it', async () => {
    const side = await open();
    const projector = runtime(side);
    projector.start();
    await commitDeposits(side.store, 3, 2, 1);
    const gap = await side.makeGap();
    await commitDeposits(side.store, 3, 2, 1);
    const follower = new ChangeLogFollower(side.storage.changeLog, logger);
    await follower.start();
    cleanup.push(() => follower.stop());
    await follower.waitFor(gap + 3, { timeoutMs: 20_000 });

    const read = await side.storage.changeLog.read(0);
    if (read.kind !== 'entries') throw new Error('change log expired unexpectedly');
    expect(read.entries.map((e) => e.cursor)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(read.entries[gap - 1]).toMatchObject({
      cursor: gap,
      scopes: [],
      invalidated: [],
      actor: null,
      operation: null,
    });
    expect(await readAccounts(side.storage)).toEqual(await foldAccounts(side.store));
    await projector.rebuild();
    expect(await readAccounts(side.storage)).toEqual(await foldAccounts(side.store));
  });

  it('records one change log entry per commit naming every resource it touched', async () => {
    const side = await open();
    runtime(side).start();
    await side.store.append({
      streams: [
        {
          stream: 'acc-1',
          expected: ANY,
          events: [{ type: 'Deposited', data: { amount: 5, group: 'g1' } }],
        },
        {
          stream: 'acc-2',
          expected: ANY,
          events: [
            { type: 'Labelled', data: { label: 'x', group: 'g1' } },
            { type: 'Deposited', data: { amount: 1, group: 'g1' } },
          ],
        },
      ],
      metadata: { actor: 'alice', operation: 'transfer' },
    });
    await until(() => caughtUp(side));
    const read = await side.storage.changeLog.read(0);
    expect(read).toMatchObject({
      kind: 'entries',
      entries: [
        {
          cursor: 1,
          scopes: ['g1'],
          operation: 'transfer',
          actor: 'alice',
          invalidated: [
            { typename: 'Account', id: '1', fields: ['balance'], version: 1 },
            { typename: 'Account', id: '2', fields: ['label', 'balance'], version: 2 },
          ],
        },
      ],
    });
  });

  it('restarted after dying halfway through a commit, ends with the documents of a clean run', async () => {
    const side = await open();
    await commitDeposits(side.store, 100);
    // The first runtime dies at a commit spanning two streams, after applying only the first.
    const commits = await side.store.readAll({ after: 30 });
    const victim = commits.find((c) => c.events.length === 2)!.position;
    const dying = runtime(
      side,
      accountProjection({ failAt: { position: victim, afterUpdates: 1 } }),
    );
    dying.start();
    await until(async () => (await dying.lag()).lastError !== null);
    await dying.stop();
    expect(await side.storage.changeLog.head()).toBe(victim - 1);
    const halfApplied = await readAccounts(side.storage);
    expect(halfApplied).not.toEqual(await foldAccounts(side.store));

    const restarted = runtime(side);
    restarted.start();
    await commitDeposits(side.store, 50);
    await until(() => caughtUp(side));

    const clean = await open();
    for (const commit of await side.store.readAll({ limit: 10_000 })) {
      await clean.store.append({
        streams: [...new Set(commit.events.map((e) => e.stream))].map((stream) => ({
          stream,
          expected: ANY,
          events: commit.events
            .filter((e) => e.stream === stream)
            .map(({ type, data }) => ({ type, data })),
        })),
      });
    }
    runtime(clean).start();
    await until(() => caughtUp(clean));
    expect(await readAccounts(side.storage)).toEqual(await readAccounts(clean.storage));
    expect(await readAccounts(side.storage)).toEqual(await foldAccounts(side.store));
  });

  it('lets only one of two runtimes project, and the other take over when it stops', async () => {
    const side = await open();
    // A lease long enough that a loaded machine's event-loop stalls never outlast it, so the
    // holder keeping it shows renewal, not luck; the wait below still outlasts one lease.
    const lease = 2_000;
    const first = runtime(side, accountProjection(), 'first', lease);
    const second = runtime(side, accountProjection(), 'second', lease);
    first.start();
    await until(() => first.active);
    second.start();
    await commitDeposits(side.store, 200);
    await until(() => caughtUp(side));
    await sleep(lease + 500); // longer than the lease: the holder keeps renewing it
    expect(first.active).toBe(true);
    expect(second.active).toBe(false);
    expect(await side.storage.leases.holder('projector')).toBe('first');

    await first.stop();
    await until(() => second.active, 20_000);
    await commitDeposits(side.store, 100);
    await until(() => caughtUp(side));
    expect(await readAccounts(side.storage)).toEqual(await foldAccounts(side.store));
  });

  it('lets another runtime take over within the lease time when the holder dies without releasing it', async () => {
    const side = await open();
    // The holder dies: its loop stops and its release never reaches the store. Its lease
    // is long enough that a loaded machine's pauses cannot lose it while it still runs.
    const ttlMs = 2_000;
    const holder = new ProjectorRuntime({
      store: side.store,
      storage: {
        ...side.storage,
        leases: {
          acquire: (n, o, t) => side.storage.leases.acquire(n, o, t),
          release: async () => {},
          requestHandover: (n, o) => side.storage.leases.requestHandover(n, o),
          holder: (n) => side.storage.leases.holder(n),
        },
      },
      projections: [accountProjection()],
      logger,
      leaseTtlMs: ttlMs,
      owner: 'doomed',
    });
    holder.start();
    await until(() => holder.active);
    const standby = runtime(side, accountProjection(), 'standby');
    standby.start();
    await commitDeposits(side.store, 50);
    await until(() => caughtUp(side));
    await holder.stop();
    expect(await side.storage.leases.holder('projector')).toBe('doomed');

    const died = Date.now();
    await until(() => standby.active, 15_000);
    // Within the lease time, give or take a loaded machine's scheduling.
    expect(Date.now() - died).toBeLessThan(ttlMs + 3_000);
    await commitDeposits(side.store, 50);
    await until(() => caughtUp(side));
    expect(await readAccounts(side.storage)).toEqual(await foldAccounts(side.store));
  });

  it('fences a holder paused past its lease: resumed, it regresses no read document', async () => {
    const side = await open();
    const gate = pauseGate();
    // The first runtime's process freezes (a GC pause, a VM migration): its lease renewals
    // and its read document writes wait at the gate, a write already computed included.
    const frozen: ReadSide = { ...side, storage: pausable(side.storage, gate) };
    const first = runtime(frozen, accountProjection(), 'first');
    first.start();
    await until(() => first.active);
    await commitDeposits(side.store, 60, 3);
    await until(() => caughtUp(side));

    gate.pause();
    await commitDeposits(side.store, 1, 3);
    await until(() => gate.held > 0); // a stale write is computed and waiting
    const second = runtime(side, accountProjection(), 'second');
    second.start();
    await until(() => second.active, 20_000);
    await commitDeposits(side.store, 60, 3);
    await until(() => caughtUp(side));
    const newest = await readAccounts(side.storage);

    // Watch every document while the first runtime wakes up and runs its stale writes.
    const regressions: string[] = [];
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        for (const [id, doc] of await readAccounts(side.storage)) {
          const seen = newest.get(id)!;
          if (doc.version < seen.version)
            regressions.push(`${id}: ${seen.version} -> ${doc.version}`);
        }
        await sleep(5);
      }
    })();
    gate.resume();
    await until(() => !first.active);
    await sleep(400);
    watching = false;
    await watcher;

    expect(regressions).toEqual([]);
    expect(await side.storage.leases.holder('projector')).toBe('second');
    await commitDeposits(side.store, 20, 3);
    await until(() => caughtUp(side));
    expect(await readAccounts(side.storage)).toEqual(await foldAccounts(side.store));
  });

  it('rebuilds while commits keep arriving, and no reader sees an empty or half-built generation', async () => {
    const side = await open();
    const projector = runtime(side);
    projector.start();
    const initial = Math.round(2_000 * adapter.scale);
    await commitDeposits(side.store, initial);
    await until(() => caughtUp(side));
    const before = await side.storage.readModels.active();

    let writing = true;
    const writer = (async () => {
      let i = 0;
      while (writing) {
        await side.store.append({
          streams: [
            {
              stream: `acc-live-${i % 10}`,
              expected: ANY,
              events: [{ type: 'Deposited', data: { amount: 1, group: 'g0' } }],
            },
          ],
        });
        i++;
        await sleep(1);
      }
    })();
    const minimum = (await readAccounts(side.storage)).size;
    const observed: number[] = [];
    let reading = true;
    const reader = (async () => {
      while (reading) {
        const view = await side.storage.readModels.active();
        observed.push(await view.collection<Account>('accounts').count({}));
        await sleep(2);
      }
    })();

    const progress: number[] = [];
    const report = await projector.rebuild({
      onProgress: (p) => progress.push(p.applied),
      batchSize: 200,
    });
    writing = false;
    await writer;
    await until(() => caughtUp(side));
    reading = false;
    await reader;

    expect(report.from).toBe(before.generation);
    expect((await side.storage.readModels.active()).generation).toBe(report.to);
    expect(report.commits).toBeGreaterThanOrEqual(initial);
    expect(progress.length).toBeGreaterThan(1);
    expect(Math.min(...observed)).toBeGreaterThanOrEqual(minimum);
    expect(await readAccounts(side.storage)).toEqual(await foldAccounts(side.store));
  });

  it('refuses the switch of a rebuild whose runtime lost the lease just before it, and keeps the generation the new holder writes', async () => {
    const side = await open();
    const gate = pauseGate();
    // The rebuilding runtime's process freezes as it switches (after every check it makes
    // before): its lease lapses and another runtime takes over and projects meanwhile.
    const frozen: ReadSide = {
      ...side,
      storage: pausable(side.storage, gate, { freezeAtSwitch: true }),
    };
    // A lease that a loaded machine's event-loop stalls never outlast: the rebuild must reach
    // its switch still holding it, so that only the freeze there makes it lapse.
    const lease = 2_000;
    // Two writers: the test is about the switch, not about appends racing. Twenty writers on
    // ten streams (the default) conflicted so often on the simulator at load 16 that an
    // append lost every race for its whole 15 s deadline (5 runs of 5 at once failed so).
    const writers = 2;
    const first = runtime(frozen, accountProjection(), 'first', lease);
    first.start();
    await commitDeposits(side.store, 200, 10, writers);
    await until(() => caughtUp(side));
    const before = (await side.storage.readModels.active()).generation;

    const rebuilt = first.rebuild({ batchSize: 50 }).then(
      () => 'switched',
      (error: unknown) => (error instanceof Error ? error.message : String(error)),
    );
    await until(() => gate.held > 0);
    const second = runtime(side, accountProjection(), 'second', lease);
    second.start();
    await until(() => second.active, 5 * lease);
    await commitDeposits(side.store, 100, 10, writers);
    await until(() => caughtUp(side));
    gate.resume();
    expect(await rebuilt).not.toBe('switched');

    // Reads stay on the generation the holder writes, and it holds every commit.
    await commitDeposits(side.store, 50, 10, writers);
    await until(() => caughtUp(side));
    expect((await side.storage.readModels.active()).generation).toBe(before);
    expect(await readAccounts(side.storage)).toEqual(await foldAccounts(side.store));
  });

  it('rebuilds from a second runtime: the active one hands the lease over and takes it back after', async () => {
    const side = await open();
    const server = runtime(side, accountProjection(), 'server');
    server.start();
    await commitDeposits(side.store, 300);
    await until(() => caughtUp(side));
    const before = (await side.storage.readModels.active()).generation;

    const rebuilder = runtime(side, accountProjection(), 'rebuilder');
    const report = await rebuilder.rebuild();
    expect(report.from).toBe(before);
    expect(report.commits).toBe(300);
    await rebuilder.stop();

    await until(() => server.active, 20_000);
    await commitDeposits(side.store, 50);
    await until(() => caughtUp(side));
    expect((await side.storage.readModels.active()).generation).toBe(report.to);
    expect(await readAccounts(side.storage)).toEqual(await foldAccounts(side.store));
  });

  it('rebuilds on a standby runtime that stalls right after asking for the lease: it asks the holder again', async () => {
    const side = await open();
    // A lease a loaded machine's stalls never outlast, so the holder really holds it when the
    // rebuild asks (with 300 ms a stall could pass it to the rebuilder, which then never asks).
    const ttl = 1_500;
    const gate = pauseGate();
    const stalling = pausable(side.storage, gate);
    // The rebuilder's process stalls right after its handover request, past the one ttl the
    // request reserves the lease: the holder yields, nobody takes the lease in time, and the
    // holder takes it back, asked by nobody.
    let requests = 0;
    const storage: ProjectorStorage = {
      ...stalling,
      leases: {
        acquire: (n, o, t) => stalling.leases.acquire(n, o, t),
        release: (n, o) => stalling.leases.release(n, o),
        holder: (n) => stalling.leases.holder(n),
        requestHandover: async (n, o) => {
          await stalling.leases.requestHandover(n, o);
          requests += 1;
          if (requests > 1) return;
          gate.pause();
          await sleep(2 * ttl);
          gate.resume();
        },
      },
    };
    const holder = runtime(side, accountProjection(), 'holder', ttl);
    holder.start();
    await until(() => holder.active);
    const rebuilder = runtime({ ...side, storage }, accountProjection(), 'rebuilder', ttl);
    rebuilder.start();
    await commitDeposits(side.store, 50);
    await until(() => caughtUp(side));
    const before = (await side.storage.readModels.active()).generation;

    // Bounded, so that a rebuild waiting for a lease nobody hands over fails the test.
    const report = await rebuilder.rebuild({ signal: AbortSignal.timeout(60_000) });
    expect(requests).toBeGreaterThan(1);
    expect(report.from).toBe(before);
    expect(report.commits).toBe(50);
    await rebuilder.stop();
    await until(() => holder.active, 20_000);
    await commitDeposits(side.store, 10);
    await until(() => caughtUp(side));
    expect((await side.storage.readModels.active()).generation).toBe(report.to);
    expect(await readAccounts(side.storage)).toEqual(await foldAccounts(side.store));
  });

  it('resolves waitFor only once the commit is visible in the read documents', async () => {
    const side = await open();
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const slow = accountProjection();
    const gated: Projection = {
      ...slow,
      apply: async (context) => {
        await gate;
        await slow.apply(context);
      },
    };
    runtime(side, gated).start();
    const follower = new ChangeLogFollower(side.storage.changeLog, logger);
    await follower.start();
    cleanup.push(() => follower.stop());

    const { position } = await side.store.append({
      streams: [
        {
          stream: 'acc-7',
          expected: ANY,
          events: [{ type: 'Deposited', data: { amount: 42, group: 'g0' } }],
        },
      ],
    });
    let resolved = false;
    const waiting = follower.waitFor(position, { timeoutMs: 20_000 }).then(() => (resolved = true));
    await sleep(100);
    expect(resolved).toBe(false);
    release();
    await waiting;
    const doc = await (
      await side.storage.readModels.active()
    )
      .collection<Account>('accounts')
      .get('7');
    expect(doc).toMatchObject({ balance: 42, version: 1 });

    for (let i = 0; i < 20; i++) {
      const r = await side.store.append({
        streams: [
          {
            stream: 'acc-7',
            expected: ANY,
            events: [{ type: 'Deposited', data: { amount: 1, group: 'g0' } }],
          },
        ],
      });
      await follower.waitFor(r.position, { timeoutMs: 20_000 });
      const seen = await (
        await side.storage.readModels.active()
      )
        .collection<Account>('accounts')
        .get('7');
      expect(seen?.balance).toBe(43 + i);
    }
  });

  it('times out waitFor when nobody projects, and reports the lag', async () => {
    const side = await open();
    const projector = runtime(side);
    const follower = new ChangeLogFollower(side.storage.changeLog, logger);
    await follower.start();
    cleanup.push(() => follower.stop());
    await commitDeposits(side.store, 30);
    await expect(follower.waitFor(30, { timeoutMs: 50 })).rejects.toThrow(
      /not projected within 50 ms/,
    );
    const lag = await projector.lag();
    expect(lag).toMatchObject({
      checkpoint: 0,
      head: 30,
      commitsBehind: 30,
      activeProjector: null,
    });
    expect(lag.secondsBehind).toBeGreaterThanOrEqual(0);

    projector.start();
    await follower.waitFor(30, { timeoutMs: 20_000 });
    // The checkpoint is written after the commits' change log entries, so wait for that write.
    await expect.poll(async () => (await projector.lag()).checkpoint, { timeout: 20_000 }).toBe(30);
    expect(await projector.lag()).toMatchObject({
      checkpoint: 30,
      commitsBehind: 0,
      secondsBehind: 0,
      lastError: null,
    });
  });

  it('ends a change log tail closed while it is reading', async () => {
    const side = await open();
    const tail = side.storage.changeLog.tail(0);
    const iterator = tail[Symbol.asyncIterator]();
    const next = iterator.next();
    await tail.close();
    await expect(next).resolves.toMatchObject({ done: true });
  });

  it('says explicitly when a change log cursor is older than the retained window', async () => {
    const side = await open({ changeLogRetention: 10 });
    runtime(side).start();
    await commitDeposits(side.store, 25);
    await until(() => caughtUp(side));
    expect(await side.storage.changeLog.read(3)).toEqual({ kind: 'expired', oldest: 16, head: 25 });
    const recent = await side.storage.changeLog.read(15);
    expect(recent.kind === 'entries' && recent.entries.map((e) => e.cursor)).toEqual(
      Array.from({ length: 10 }, (_, i) => i + 16),
    );
  });

  it('records a run of entries (recordMany) as record one by one would: in order, each once, whichever instance recorded some first; a gap or a broken run is refused', async () => {
    const side = await open({ changeLogRetention: 10 });
    const first = side.storage.changeLog;
    const second = (await side.anotherStorage()).changeLog;
    const entry = (cursor: number) => ({
      cursor,
      commitId: `c${cursor}`,
      scopes: [`s${cursor % 2}`],
      operation: 'deposit',
      actor: null,
      at: new Date(cursor * 1_000),
      invalidated: [],
    });
    const run = (from: number, to: number) =>
      Array.from({ length: to - from + 1 }, (_, i) => entry(from + i));
    await second.recordMany(run(1, 2));
    // 1..2 are there already: skipped.
    await first.recordMany(run(1, 5));
    // The second instance last wrote 2; 3..5 were written by the first meanwhile.
    await second.recordMany(run(3, 8));
    await first.recordMany([]);
    await expect(first.recordMany(run(10, 12))).rejects.toThrow(/gap/);
    await expect(first.recordMany([entry(9), entry(11)])).rejects.toThrow(/consecutive/);
    await expect(second.recordMany(run(6, 9).reverse())).rejects.toThrow(/consecutive/);
    expect(await first.head()).toBe(8);
    await second.recordMany(run(7, 25));

    const read = await first.read(15);
    expect(read).toEqual({ kind: 'entries', entries: run(16, 25) });
    expect(await first.read(3)).toEqual({ kind: 'expired', oldest: 16, head: 25 });
    const odd = await second.read(15, { scope: 's1' });
    expect(odd.kind === 'entries' && odd.entries.map((e) => e.cursor)).toEqual([
      17, 19, 21, 23, 25,
    ]);
  });

  it('catches up far behind in batches across gaps and a change log write failing halfway: every commit applied and recorded once, the checkpoint never past an entry not recorded', async () => {
    const side = await open();
    const stretches = 4;
    const perStretch = Math.max(30, Math.round(300 * adapter.scale));
    for (let i = 0; i < stretches; i += 1) {
      await commitDeposits(side.store, perStretch, 10, 5);
      await side.makeGap();
    }
    await commitDeposits(side.store, perStretch, 10, 5);
    const head = await side.store.headPosition();

    const inner = side.storage;
    const runs: number[] = [];
    let failed = false;
    const overshoots: string[] = [];
    const storage: ProjectorStorage = {
      ...inner,
      changeLog: {
        record: (e) => inner.changeLog.record(e),
        read: (a, o) => inner.changeLog.read(a, o),
        head: () => inner.changeLog.head(),
        tail: (after) => inner.changeLog.tail(after),
        recordMany: async (entries) => {
          runs.push(entries.length);
          if (!failed && entries.length >= 10) {
            failed = true;
            await inner.changeLog.recordMany(entries.slice(0, entries.length >> 1));
            throw new Error('change log write failed halfway (test)');
          }
          await inner.changeLog.recordMany(entries);
        },
      },
      checkpoints: {
        load: (g) => inner.checkpoints.load(g),
        save: async (g, position, fence) => {
          const recorded = await inner.changeLog.head();
          if (position.position > recorded) {
            overshoots.push(`checkpoint ${position.position} saved with entries up to ${recorded}`);
          }
          await inner.checkpoints.save(g, position, fence);
        },
      },
    };
    const projector = new ProjectorRuntime({
      store: side.store,
      storage,
      projections: [accountProjection()],
      logger,
      leaseTtlMs: 2_000,
      retryDelayMs: 20,
    });
    cleanup.push(() => projector.stop());
    projector.start();
    await until(async () => (await projector.lag()).checkpoint === head, 60_000);

    expect(failed).toBe(true);
    expect((await projector.lag()).errors.map((e) => e.message)).toContain(
      'change log write failed halfway (test)',
    );
    // Batches: far fewer change log writes than entries.
    expect(runs.length).toBeLessThan(head / 5);
    expect(overshoots).toEqual([]);
    expect(await readAccounts(inner)).toEqual(await foldAccounts(side.store));
    const cursors: number[] = [];
    for (let after = 0; ;) {
      const read = await inner.changeLog.read(after, { limit: 2_000 });
      if (read.kind !== 'entries') throw new Error('change log expired unexpectedly');
      if (read.entries.length === 0) break;
      cursors.push(...read.entries.map((e) => e.cursor));
      after = read.entries.at(-1)!.cursor;
    }
    expect(cursors).toEqual(Array.from({ length: head }, (_, i) => i + 1));
    const commits = await side.store.readAll({ limit: head });
    const read = await inner.changeLog.read(0, { limit: head });
    if (read.kind !== 'entries') throw new Error('change log expired unexpectedly');
    const entries = new Map(read.entries.map((e) => [e.cursor, e]));
    for (const commit of commits) {
      expect(entries.get(commit.position)?.commitId).toBe(commit.commitId);
    }
  });

  it("catches up by pages read from the store when down for many commits: gaps recorded, the feed opened only near the head, another writer's newer document kept", async () => {
    const side = await open();
    const batch = 20;
    const perStretch = Math.max(30, Math.round(200 * adapter.scale));
    for (let i = 0; i < 3; i += 1) {
      await commitDeposits(side.store, perStretch, 10, 5);
      await side.makeGap();
    }
    await commitDeposits(side.store, perStretch, 10, 5);
    const head = await side.store.headPosition();

    // What the runtime asks the store: pages (readAll of a batch) and where feeds start.
    const pages: number[] = [];
    const feedsFrom: number[] = [];
    const store = new Proxy(side.store, {
      get(target, name) {
        if (name === 'readAll')
          return (o?: ReadAllOptions) => {
            if (o?.limit === batch) pages.push(o.after ?? 0);
            return target.readAll(o);
          };
        if (name === 'subscribe')
          return (o?: SubscribeOptions) => {
            feedsFrom.push(o?.from?.position ?? 0);
            return target.subscribe(o);
          };
        const value: unknown = Reflect.get(target, name);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    // Another writer has already applied far more to account 0 when the first batch is
    // written: the batch must not regress it.
    const newer: Account = {
      _id: '0',
      label: 'newer',
      balance: -1,
      version: 1_000_000,
      group: 'g0',
      _applied: { 'acc-0': 1_000_000 },
    };
    let wroteNewer = false;
    const inner = side.storage;
    const writeNewerBefore = async (generation: string, name: string, docs: readonly ReadDoc[]) => {
      if (wroteNewer || !docs.some((d) => d._id === newer._id)) return;
      wroteNewer = true;
      await inner.readModels.view(generation).collection<Account>(name).put(newer);
    };
    const storage: ProjectorStorage = {
      ...inner,
      readModels: {
        active: (o) => inner.readModels.active(o),
        createGeneration: () => inner.readModels.createGeneration(),
        activate: (g, e, f) => inner.readModels.activate(g, e, f),
        dropGeneration: (g) => inner.readModels.dropGeneration(g),
        view: (generation, o) => {
          const view = inner.readModels.view(generation, o);
          return {
            generation,
            collection: <T extends ReadDoc>(name: string) => {
              const c = view.collection<T>(name);
              return {
                get: (id, options) => c.get(id, options),
                getMany: (ids, options) => c.getMany(ids, options),
                find: (f, options) => c.find(f, options),
                count: (f, options) => c.count(f, options),
                put: (doc: T) => c.put(doc),
                delete: (id) => c.delete(id),
                putEach: async (docs) => {
                  await writeNewerBefore(generation, name, docs);
                  await c.putEach(docs);
                },
                putMany: async (docs) => {
                  await writeNewerBefore(generation, name, docs);
                  await c.putMany(docs);
                },
              } satisfies ReadCollection<T>;
            },
          };
        },
      },
    };
    const projector = new ProjectorRuntime({
      store,
      storage,
      projections: [accountProjection()],
      logger,
      leaseTtlMs: 2_000,
      retryDelayMs: 20,
      catchUpBatchSize: batch,
    });
    cleanup.push(() => projector.stop());
    projector.start();
    // Caught up to the head and then following the feed: the checkpoint reaches the head
    // with the last page, before the feed is opened.
    await until(
      async () => (await projector.lag()).checkpoint === head && feedsFrom.length > 0,
      60_000,
    );

    // Read by pages from the checkpoint (0) on, each after the last one applied; the feed
    // was first opened within a batch of the head, not from the start.
    expect(pages[0]).toBe(0);
    expect(pages.length).toBeGreaterThanOrEqual(Math.floor(head / batch) - 1);
    expect(pages).toEqual([...pages].sort((a, b) => a - b));
    expect(feedsFrom[0]).toBeGreaterThan(head - batch);
    expect(wroteNewer).toBe(true);
    const { [newer._id]: _, ...rest } = Object.fromEntries(await foldAccounts(side.store));
    const { _applied, ...newest } = newer;
    expect(Object.fromEntries(await readAccounts(inner))).toEqual({ ...rest, '0': newest });
    const read = await inner.changeLog.read(0, { limit: head });
    if (read.kind !== 'entries') throw new Error('change log expired unexpectedly');
    expect(read.entries.map((e) => e.cursor)).toEqual(
      Array.from({ length: head }, (_, i) => i + 1),
    );
    const commits = await side.store.readAll({ limit: head });
    const entries = new Map(read.entries.map((e) => [e.cursor, e.commitId]));
    for (const commit of commits) expect(entries.get(commit.position)).toBe(commit.commitId);
    expect(read.entries.filter((e) => e.commitId.startsWith('gap-'))).toHaveLength(3);

    // Caught up, it follows the feed: a new commit is applied with no page read.
    const paged = pages.length;
    await commitDeposits(side.store, 1, 1);
    await until(async () => (await projector.lag()).checkpoint === head + 1);
    expect(pages).toHaveLength(paged);
  });

  it('reads one scope through its index: its entries after a cursor, in order, by pages, expired as the whole log', async () => {
    const side = await open({ changeLogRetention: 50 });
    const { changeLog } = side.storage;
    const at = new Date(0);
    // 120 entries: every 7th names board b1 (and b2), the rest b3 only.
    for (let cursor = 1; cursor <= 120; cursor += 1) {
      await changeLog.record({
        cursor,
        commitId: `c${cursor}`,
        scopes: cursor % 7 === 0 ? ['b1', 'b2'] : ['b3'],
        operation: 'editCard',
        actor: null,
        at,
        invalidated: [],
      });
    }
    const cursors = async (after: number, scope: string, limit?: number) => {
      const read = await changeLog.read(after, { scope, ...(limit ? { limit } : {}) });
      return read.kind === 'entries' ? read.entries.map((e) => e.cursor) : read;
    };
    // Retained: 71..120; b1's there are 77, 84, ..., 119.
    expect(await cursors(70, 'b1')).toEqual([77, 84, 91, 98, 105, 112, 119]);
    expect(await cursors(84, 'b1', 2)).toEqual([91, 98]);
    expect(await cursors(98, 'b2', 100)).toEqual([105, 112, 119]);
    expect(await cursors(119, 'b1')).toEqual([]);
    expect(await cursors(110, 'nobody')).toEqual([]);
    expect(await cursors(3, 'b1')).toEqual({ kind: 'expired', oldest: 71, head: 120 });
  });
});
