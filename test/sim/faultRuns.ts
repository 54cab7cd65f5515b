/**
 * Seeded fault runs of the mongo adapters on the MongoDB simulator:
 *
 *   npm run test:sim -- --seeds 200      seeds 1..200
 *   npm run test:sim -- --seed 17        one seed, to replay a failure
 *
 * Each seed draws one schedule: several event store instances (each its own client, as
 * separate processes) appending to shared and disjoint streams with exact and loose
 * expectations, two projector runtimes racing for the lease (handovers, a rebuild), and
 * faults at seeded moments: stepdowns with failover (open transactions aborted, writes
 * past the majority commit point rolled back), cut connections, a commit whose reply is
 * lost, a replication lag, and a client that dies between `insert commits` and
 * `commitTransaction`. After the run it checks:
 *
 * 1. every acknowledged append is in the log exactly once, with its commit id;
 * 2. no append reported failed (other than CommitOutcomeUnknown) was committed;
 * 3. two feeds read from the start agree on one order of commits, which is the log's;
 * 4. per stream, versions are 1..n in log order;
 * 5. no read document was ever seen to regress (its applied versions only grow);
 * 6. the active generation's documents equal a fold of the committed events.
 *
 * Failing seeds are printed; the exit code is 1 if any failed.
 */
import { loadavg } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { MongoClient } from 'mongodb';
import { pino } from 'pino';
import { CommitOutcomeUnknown, VersionConflict } from '../../src/eventstore/errors.js';
import { MongoEventStore } from '../../src/eventstore/mongo/MongoEventStore.js';
import { ANY, NO_STREAM, type Commit } from '../../src/eventstore/types.js';
import { ProjectorRuntime } from '../../src/projector/ProjectorRuntime.js';
import { createMongoProjectorStorage } from '../../src/projector/mongo/MongoProjectorStorage.js';
import type { Projection, ProjectorStorage, ReadDoc } from '../../src/projector/types.js';
import { MongoSim } from './MongoSim.js';
import { Rng } from './rng.js';

const logger = pino({ level: 'silent' });
const DB = 'faults';
const INSTANCES = 3;

interface Tally extends ReadDoc {
  count: number;
  sum: number;
  version: number;
}

/** Per stream: how many events, their amounts summed, the last version applied. */
const tallies: Projection = {
  name: 'tallies',
  handles: ['Added'],
  async apply(context) {
    for (const event of context.commit.events) {
      await context.update<Tally>('tallies', event.stream, event, (doc) => ({
        _id: event.stream,
        count: (doc?.count ?? 0) + 1,
        sum: (doc?.sum ?? 0) + Number(event.data.amount),
        version: event.version,
      }));
    }
  },
};

interface Outcome {
  op: string;
  kind: 'ok' | 'failed' | 'unknown';
  commitId?: string;
  error?: string;
}

async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} did not finish in ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** What one seed found, and what it exercised. */
export interface SeedRun {
  /** The violations found (empty: the seed passed). */
  problems: string[];
  /** How often each thing happened: append outcomes, faults fired, rebuilds, commits. */
  tally: Map<string, number>;
}

/** Per client, its last SDAM events (heartbeats, server state, pool): printed when a seed fails. */
const sdamLog = new Map<string, string[]>();
/** Records `client`'s SDAM events under `app`, keeping the last 40. */
function watchSdam(client: MongoClient, app: string): void {
  const log: string[] = [];
  sdamLog.set(app, log);
  const t0 = Date.now();
  const add = (what: string) => {
    log.push(`${Date.now() - t0} ms ${what}`);
    if (log.length > 40) log.shift();
  };
  client.on('serverHeartbeatStarted', (e) => add(`hb started awaited=${e.awaited}`));
  client.on('serverHeartbeatSucceeded', (e) => add(`hb ok ${e.duration}ms`));
  client.on('serverHeartbeatFailed', (e) => add(`hb failed ${String(e.failure).slice(0, 120)}`));
  client.on('serverDescriptionChanged', (e) =>
    add(
      `server ${e.previousDescription.type} -> ${e.newDescription.type} ${String(e.newDescription.error ?? '').slice(0, 100)}`,
    ),
  );
  client.on('serverClosed', () => add('server closed'));
  client.on('topologyClosed', () => add('topology closed'));
  client.on('connectionPoolCleared', () => add('pool cleared'));
  client.on('connectionCreated', () => add('pool conn created'));
  client.on('connectionCheckOutFailed', (e) => add(`checkout failed ${e.reason}`));
}

/**
 * The driver's monitor of each server, from its internals: whether a heartbeat is running and
 * for how long, and the state of its connection and socket (a heartbeat that never ends leaves
 * the client unable to reconnect: see test/sim/driverConnection.sim.test.ts).
 */
function monitorState(client: MongoClient): string {
  const topology = (client as any).topology;
  if (!topology) return 'no topology';
  const out: string[] = [];
  for (const server of topology.s.servers.values()) {
    const m = server.monitor;
    const conn = m?.connection;
    const sock = conn?.socket;
    out.push(
      `state=${m?.s?.state} exec=${m?.monitorId?.isExecutionInProgress} lastEnded=${Math.round(performance.now() - (m?.monitorId?.lastExecutionEnded ?? 0))}ms-ago conn=${conn ? `closed=${conn.closed} dataEvents=${conn.dataEvents != null} err=${String(conn.error ?? '').slice(0, 60)} sock destroyed=${sock?.destroyed} wEnded=${sock?.writableEnded} rEnded=${sock?.readableEnded} wLen=${sock?.writableLength} needDrain=${sock?.writableNeedDrain}` : 'none'}`,
    );
  }
  return out.join(' | ');
}

/** Runs one seed. */
export async function runSeed(seed: number): Promise<SeedRun> {
  const tally = new Map<string, number>();
  const note = (what: string, n = 1) => tally.set(what, (tally.get(what) ?? 0) + n);
  const rng = new Rng(seed);
  const t0 = Date.now();
  const phase = (name: string) => {
    if (process.env.SIM_PHASES) console.info(`  ${name} at ${Date.now() - t0} ms`);
  };
  sdamLog.clear();
  const sim = await MongoSim.start({
    seed,
    transactionLifetimeLimitMs: 2_000,
    replicationLagMs: rng.chance(0.5) ? [0, 20] : [0, 0],
    electionMs: rng.int(50, 300),
  });
  const problems: string[] = [];
  const clients: MongoClient[] = [];
  const stores: MongoEventStore[] = [];
  const storages: ProjectorStorage[] = [];
  const runtimes: ProjectorRuntime[] = [];
  /** Appends in flight: op -> instance and start time (reported when a run gets stuck). */
  const pending = new Map<string, { instance: number; since: number }>();
  let reaper: NodeJS.Timeout | undefined;
  let reaped: Promise<unknown> | undefined;
  /** Aborted when the run ends, so no loop of it outlives it. */
  const giveUp = new AbortController();
  let checkerStorage: ProjectorStorage | undefined;
  let checkerClient: MongoClient | undefined;
  /** The scheduled fault being carried out, if any (reported when a run gets stuck). */
  let faultInProgress: string | undefined;
  try {
    for (let i = 0; i < INSTANCES; i += 1) {
      const client = await new MongoClient(sim.uri, {
        appName: `instance-${i}`,
        serverSelectionTimeoutMS: 10_000,
      }).connect();
      clients.push(client);
      watchSdam(client, `instance-${i}`);
      stores.push(
        await MongoEventStore.create({
          client,
          dbName: DB,
          appendTimeoutMs: 6_000,
          commitWaitMs: 1_000,
          closePositionTimeoutMs: 1_000,
          feed: { gapGraceMs: 500, maxAwaitTimeMS: 100 },
        }),
      );
    }
    for (let i = 0; i < 2; i += 1) {
      const storage = await createMongoProjectorStorage({
        client: clients[i]!,
        dbName: DB,
        pointerCacheMs: 0,
        generationDropDelayMs: 60_000,
      });
      storages.push(storage);
      runtimes.push(
        new ProjectorRuntime({
          store: stores[i]!,
          storage,
          projections: [tallies],
          logger,
          owner: `runtime-${i}`,
          leaseTtlMs: 400,
          retryDelayMs: 20,
        }),
      );
    }
    // The checks read through a client of their own: an instance's client may die (below).
    checkerClient = await new MongoClient(sim.uri, {
      appName: 'checker',
      serverSelectionTimeoutMS: 10_000,
    }).connect();
    const checker = await createMongoProjectorStorage({
      client: checkerClient,
      dbName: DB,
      pointerCacheMs: 0,
      ownsClient: true,
    });
    checkerStorage = checker;
    runtimes[0]!.start();
    if (rng.chance(0.7)) runtimes[1]!.start();

    // The doomed instance: a client that dies between its commit insert and its commit.
    const doomed = rng.chance(0.3) ? rng.int(0, INSTANCES - 1) : -1;
    phase(`doomed instance: ${doomed}`);
    if (doomed >= 0) {
      let left = rng.int(1, 4);
      sim.fault({
        action: 'killClient',
        match: (c) => {
          const fire =
            c.name === 'commitTransaction' && c.appName === `instance-${doomed}` && --left === 0;
          if (fire) note('fault: client died before its commitTransaction');
          return fire;
        },
      });
      // The client dies with its process: everything that process ran ends at once (no
      // graceful close, no lease release), and what its transactions held stays held.
      reaper = setInterval(() => {
        if (reaped || !sim.isDead(`instance-${doomed}`)) return;
        clearInterval(reaper);
        reaped = clients[doomed]!.close()
          .catch(() => undefined)
          .then(() =>
            Promise.allSettled([
              runtimes[doomed]?.stop(),
              storages[doomed]?.close(),
              stores[doomed]!.close(),
            ]),
          );
      }, 10);
    }
    if (rng.chance(0.4)) {
      let skip = rng.int(2, 15);
      sim.fault({
        action: 'hangUpAfter',
        match: (c) => {
          const fire = c.name === 'commitTransaction' && --skip === 0;
          if (fire) note('fault: commitTransaction reply lost');
          return fire;
        },
      });
    }

    // Readers watching for regressions while everything runs.
    const seenApplied = new Map<string, Record<string, number>>();
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        try {
          const view = await checker.readModels.active();
          for (const doc of await view.collection<Tally>('tallies').find({})) {
            const before = seenApplied.get(`${view.generation}/${doc._id}`);
            const now = doc._applied ?? {};
            for (const [stream, version] of Object.entries(before ?? {})) {
              if ((now[stream] ?? 0) < version) {
                problems.push(
                  `read document ${doc._id} regressed: ${stream} ${version} -> ${now[stream] ?? 0}`,
                );
              }
            }
            seenApplied.set(`${view.generation}/${doc._id}`, now);
          }
        } catch {
          // Reads fail during failovers; the next round reads again.
        }
        await sleep(30);
      }
    })();

    // The appends: writers per instance, on shared and own streams.
    const outcomes: Outcome[] = [];
    const appendsPerWriter = rng.int(4, 8);
    let opCounter = 0;
    const writer = async (instance: number, writerId: number) => {
      const store = stores[instance]!;
      for (let k = 0; k < appendsPerWriter; k += 1) {
        if (instance === doomed && !sim.isPrimary) await sleep(10);
        const shared = rng.chance(0.5);
        const stream = shared ? `shared-${rng.int(0, 2)}` : `own-${instance}-${writerId}`;
        const second = rng.chance(0.2) ? `shared-${rng.int(3, 4)}` : undefined;
        const op = `op-${++opCounter}`;
        const exact = !shared && rng.chance(0.5);
        let expected: number | typeof ANY | typeof NO_STREAM = ANY;
        if (exact) {
          try {
            const v = await store.streamVersion(stream);
            expected = v === 0 ? NO_STREAM : v;
          } catch {
            expected = ANY;
          }
        }
        pending.set(op, { instance, since: Date.now() });
        try {
          const result = await store.append({
            streams: [
              { stream, expected, events: [{ type: 'Added', data: { amount: 1, op } }] },
              ...(second && second !== stream
                ? [
                    {
                      stream: second,
                      expected: ANY as typeof ANY,
                      events: [{ type: 'Added', data: { amount: 10, op } }],
                    },
                  ]
                : []),
            ],
            metadata: { operation: op },
            ...(rng.chance(0.3) ? { idempotencyKey: `key-${op}` } : {}),
          });
          outcomes.push({ op, kind: 'ok', commitId: result.commitId });
          phase(`${op} on instance-${instance} ok after ${Date.now() - pending.get(op)!.since} ms`);
          pending.delete(op);
        } catch (error) {
          phase(
            `${op} on instance-${instance} failed after ${Date.now() - pending.get(op)!.since} ms: ${String(error)}`,
          );
          pending.delete(op);
          const kind = error instanceof CommitOutcomeUnknown ? 'unknown' : 'failed';
          outcomes.push({
            op,
            kind,
            error: error instanceof Error ? `${error.name}: ${error.message}` : String(error),
          });
          if (instance === doomed && !(error instanceof VersionConflict)) {
            // A dead process does not go on appending.
            if (sim.commandCounts.get('commitTransaction') && clientDead(sim, instance)) return;
          }
        }
        await sleep(rng.int(0, 15));
      }
    };

    // The faults on the schedule.
    const faults = (async () => {
      const count = rng.int(0, 3);
      for (let f = 0; f < count; f += 1) {
        await sleep(rng.int(20, 400));
        const kind = rng.pick([
          'stepDown',
          'stepDownCut',
          'cut',
          'lag',
          'handover',
          'rebuild',
        ] as const);
        note(`fault: ${kind}`);
        faultInProgress = kind;
        switch (kind) {
          case 'stepDown':
            await sim.stepDown();
            break;
          case 'stepDownCut':
            await sim.stepDown({ cutConnections: true });
            break;
          case 'cut':
            sim.cutConnections();
            break;
          case 'lag':
            sim.pauseReplication();
            await sleep(rng.int(10, 200));
            sim.resumeReplication();
            break;
          case 'handover':
            if (!runtimes[1]!.active) runtimes[1]!.start();
            await storages[1]!.leases
              .requestHandover('projector', 'runtime-1')
              .catch(() => undefined);
            break;
          case 'rebuild': {
            const holder = runtimes.find((r) => r.active);
            if (holder) {
              await holder.rebuild({ batchSize: 20 }).then(
                () => note('rebuild switched'),
                () => note('rebuild refused or failed'),
              );
            }
            break;
          }
          default: {
            const never: never = kind;
            throw new Error(String(never));
          }
        }
        faultInProgress = undefined;
      }
    })();

    const writers: Promise<void>[] = [];
    for (let i = 0; i < INSTANCES; i += 1) {
      for (let w = 0; w < 2; w += 1) writers.push(writer(i, w));
    }
    await withTimeout(Promise.all([...writers, faults]), 90_000, 'the appends');
    phase('appends done');
    sim.resumeReplication();

    // Settle: a live store reads the whole log (the doomed client's open transaction ends
    // at its lifetime limit; the feeds close the position it held).
    const reader = stores.find((_, i) => i !== doomed)!;
    const feedA = readFeed(reader);
    const feedB = readFeed(stores.find((_, i) => i !== doomed && stores[i] !== reader) ?? reader);
    const head = await withTimeout(settledHead(reader, giveUp.signal), 30_000, 'settling the log');
    phase('log settled');
    const log: Commit[] = [];
    for (let after = 0; ;) {
      const batch = await reader.readAll({ after, limit: 1_000 });
      if (batch.length === 0) break;
      log.push(...batch);
      after = batch.at(-1)!.position;
    }
    const [a, b] = await withTimeout(Promise.all([feedA(head), feedB(head)]), 30_000, 'the feeds');
    phase('feeds read');

    for (const o of outcomes) note(`append ${o.kind}`);
    note('commits in the log', log.length);
    note('positions closed as gaps', head - log.length);
    // 1, 2: acknowledged appends once; failed ones absent.
    const byOp = new Map<string, Commit[]>();
    for (const c of log) {
      const op = String(c.metadata.operation);
      byOp.set(op, [...(byOp.get(op) ?? []), c]);
    }
    for (const o of outcomes) {
      const found = byOp.get(o.op) ?? [];
      if (found.length > 1) problems.push(`${o.op} committed ${found.length} times (${o.kind})`);
      if (o.kind === 'ok' && (found.length !== 1 || found[0]!.commitId !== o.commitId)) {
        problems.push(
          `${o.op} was acknowledged as ${o.commitId} but the log has ${found.map((c) => c.commitId).join(',') || 'nothing'}`,
        );
      }
      if (o.kind === 'failed' && found.length > 0) {
        problems.push(`${o.op} was reported failed (${o.error}) but was committed`);
      }
    }
    // 3: the feeds agree with the log.
    const ids = log.map((c) => c.commitId).join(',');
    if (a.join(',') !== ids)
      problems.push(`feed A differs from the log (${a.length} vs ${log.length})`);
    if (b.join(',') !== ids)
      problems.push(`feed B differs from the log (${b.length} vs ${log.length})`);
    // 4: per-stream versions.
    const versions = new Map<string, number>();
    for (const c of log) {
      for (const e of c.events) {
        const want = (versions.get(e.stream) ?? 0) + 1;
        if (e.version !== want)
          problems.push(`${e.stream} has version ${e.version} where ${want} was due`);
        versions.set(e.stream, e.version);
      }
    }
    // 6: the read model equals the fold, once a runtime caught up.
    const fold = new Map<string, { count: number; sum: number; version: number }>();
    for (const e of log.flatMap((c) => c.events)) {
      const t = fold.get(e.stream) ?? { count: 0, sum: 0, version: 0 };
      fold.set(e.stream, {
        count: t.count + 1,
        sum: t.sum + Number(e.data.amount),
        version: e.version,
      });
    }
    // A dead process's runtime projects no more: a live one must catch up.
    const live = runtimes.filter((_, i) => i !== doomed);
    if (!live.some((r) => r.active)) live[0]!.start();
    const caughtUp = await waitFor(async () => (await checker.changeLog.head()) >= head, 30_000);
    if (!caughtUp) {
      problems.push(`the projector did not catch up to ${head}`);
      for (const r of runtimes) {
        const lag = await r.lag().catch((e: unknown) => String(e));
        problems.push(
          `  ${r.owner} active=${r.active} position=${r.position} ${JSON.stringify(lag)}`,
        );
      }
      problems.push(`  doomed instance ${doomed}`);
    } else {
      const view = await checker.readModels.active({ fresh: true });
      const docs = await view.collection<Tally>('tallies').find({});
      const got = new Map(
        docs.map((d) => [d._id, { count: d.count, sum: d.sum, version: d.version }]),
      );
      if (JSON.stringify([...got].sort()) !== JSON.stringify([...fold].sort())) {
        problems.push(
          `read model ${JSON.stringify([...got].sort())} != fold ${JSON.stringify([...fold].sort())}`,
        );
      }
    }
    phase('projector checked');
    watching = false;
    await watcher;
    return { problems, tally };
  } catch (error) {
    problems.push(`run failed: ${error instanceof Error ? error.stack : String(error)}`);
    for (const [op, p] of pending) {
      problems.push(`  ${op} on instance-${p.instance} pending for ${Date.now() - p.since} ms`);
    }
    for (const c of sim.inFlight()) problems.push(`  in flight: ${c}`);
    if (faultInProgress) problems.push(`  fault in progress: ${faultInProgress}`);
    for (const line of sim.connectionEvents()) problems.push(`  connections of ${line}`);
    for (const [i, c] of clients.entries())
      problems.push(`  monitor of instance-${i}: ${monitorState(c)}`);
    for (const [app, lines] of sdamLog) {
      problems.push(`  sdam of ${app}:`);
      for (const l of lines) problems.push(`    ${l}`);
    }
    problems.push(`  settling: ${JSON.stringify(settling)}`);
    const tail = await checkerClient
      ?.db(DB)
      .collection('commits')
      .find({ position: { $gt: settling.reached } }, { projection: { events: 0 } })
      .toArray()
      .catch((e: unknown) => String(e));
    problems.push(`  commits past the position settling reached: ${JSON.stringify(tail)}`);
    problems.push(
      `  reservations: ${JSON.stringify(
        await checkerClient
          ?.db(DB)
          .collection<{ _id: number }>('reservations')
          .find({ _id: { $gt: settling.reached } })
          .toArray()
          .catch(String),
      )}`,
    );
    for (const r of runtimes) {
      const lag = await r.lag().catch((e: unknown) => String(e));
      problems.push(`  ${r.owner} active=${r.active} ${JSON.stringify(lag).slice(0, 800)}`);
    }
    return { problems, tally };
  } finally {
    phase('closing');
    giveUp.abort();
    clearInterval(reaper);
    await reaped;
    await Promise.all(runtimes.map((r) => r.stop().catch(() => undefined)));
    await Promise.all(storages.map((s) => s.close().catch(() => undefined)));
    await Promise.all(stores.map((s) => s.close().catch(() => undefined)));
    await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
    await checkerStorage?.close().catch(() => undefined);
    await sim.close();
    phase('closed');
  }
}

function clientDead(sim: MongoSim, instance: number): boolean {
  return sim.isDead(`instance-${instance}`);
}

/** Where `settledHead` is (reported when settling gets stuck). */
const settling = { head: -1, reached: -1, feeds: 0, lastError: '' };

/**
 * The newest position, once nothing before it is missing (every hole closed): read by one
 * feed, as a consumer would, which closes a hole once its grace period has passed. A new
 * feed is opened only when one fails (from where the last one got to), since each new feed
 * starts its grace period over. Ends when `signal` aborts (the run gave up on it).
 */
async function settledHead(store: MongoEventStore, signal: AbortSignal): Promise<number> {
  Object.assign(settling, { head: -1, reached: -1, feeds: 0, lastError: '' });
  const head = async () => {
    settling.head = await store.headPosition().catch((e: unknown) => {
      settling.lastError = String(e);
      return -1;
    });
    return settling.head;
  };
  let reached = 0;
  while (!signal.aborted) {
    const now = await head();
    if (now >= 0 && reached >= now) return now;
    settling.feeds += 1;
    const feed = store.subscribe({ from: { position: reached } });
    const stop = () => void feed.close();
    signal.addEventListener('abort', stop);
    try {
      for await (const item of feed) {
        if (item.kind === 'heartbeat') continue;
        reached = settling.reached = item.checkpoint.position;
        const now = await head();
        if (now >= 0 && reached >= now) return now;
      }
    } catch (error) {
      settling.lastError = String(error);
    } finally {
      signal.removeEventListener('abort', stop);
      await feed.close();
    }
    await sleep(100);
  }
  throw new Error('settling was given up');
}

/** A feed from the start, collecting commit ids up to `head`. */
function readFeed(store: MongoEventStore): (head: number) => Promise<string[]> {
  return async (head) => {
    const feed = store.subscribe({ from: { position: 0 } });
    const ids: string[] = [];
    try {
      for await (const item of feed) {
        if (item.kind === 'commit') ids.push(item.commit.commitId);
        if (item.kind !== 'heartbeat' && item.checkpoint.position >= head) break;
      }
    } finally {
      await feed.close();
    }
    return ids;
  };
}

async function waitFor(condition: () => Promise<boolean>, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await condition().catch(() => false)) return true;
    await sleep(50);
  }
  return false;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const value = (name: string) => {
    const i = args.indexOf(name);
    return i >= 0 ? Number(args[i + 1]) : undefined;
  };
  const one = value('--seed');
  const count = value('--seeds') ?? 20;
  const first = value('--from') ?? 1;
  const seeds = one !== undefined ? [one] : Array.from({ length: count }, (_, i) => first + i);
  const failed: number[] = [];
  const started = Date.now();
  const totals = new Map<string, number>();
  for (const seed of seeds) {
    const t0 = Date.now();
    const { problems, tally } = await runSeed(seed);
    const ms = Date.now() - t0;
    for (const [what, n] of tally) totals.set(what, (totals.get(what) ?? 0) + n);
    if (problems.length > 0) {
      failed.push(seed);
      console.info(`seed ${seed}: FAILED (${ms} ms)`);
      for (const p of problems.slice(0, 30)) console.info(`  - ${p}`);
    } else {
      console.info(`seed ${seed}: ok (${ms} ms)`);
    }
  }
  const total = Math.round((Date.now() - started) / 1000);
  console.info('exercised, over all seeds run:');
  for (const [what, n] of [...totals].sort()) console.info(`  ${what}: ${n}`);
  console.info(
    `load average at the end: ${loadavg()
      .map((l) => l.toFixed(2))
      .join(', ')}`,
  );
  console.info(
    `${seeds.length - failed.length} passed, ${failed.length} failed in ${total} s` +
      (failed.length > 0 ? `; replay with --seed N for N in ${failed.join(', ')}` : ''),
  );
  process.exitCode = failed.length > 0 ? 1 : 0;
}

await main();
// A failed seed may leave a stuck operation of its own behind (what made it fail): the
// summary is printed, so exit rather than wait for it.
process.exit();
