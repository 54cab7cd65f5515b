/**
 * Append throughput and cost. Memory adapter always; with MONGODB_URI also the mongo
 * adapter and a baseline of raw driver transactions writing the same documents, and the
 * ours/raw ratio.
 *
 *   npm run bench          (BENCH_SECONDS=3 per run by default)
 *
 * Scenarios, each for BENCH_SECONDS:
 * - contended: 16 concurrent writers on ONE stream;
 * - distinct: 16 writers on 16 streams, one store instance;
 * - scale-out: 16 writers x 4 store instances over one store (mongo: each instance its own
 *   client, as separate processes would have), all on distinct streams.
 *
 * Every writer loops: read the stream's version, append with exactly that expectation,
 * count the commit; on VersionConflict count a conflict and loop (re-reading). An
 * EventStoreUnavailable (retries exhausted) is counted as "gave up" and the writer loops.
 *
 * Round trips per append are printed on every run: with the real driver against a
 * scripted replica-set primary on loopback (test/wire/fakePrimary.ts), counted by the
 * driver's command monitoring, for each shape of append; with MONGODB_URI, also counted
 * on the server during the scale-out run. For memory: port calls per committed append.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { loadavg } from 'node:os';
import {
  MongoClient,
  WriteConcern,
  type ClientSession,
  type Db,
  type TransactionOptions,
} from 'mongodb';
import { EventStoreUnavailable, VersionConflict } from '../../src/eventstore/errors.js';
import { MemoryEventLog, MemoryEventStore } from '../../src/eventstore/memory/MemoryEventStore.js';
import { MongoEventStore } from '../../src/eventstore/mongo/MongoEventStore.js';
import { ANY, NO_STREAM, type AppendRequest, type EventStore } from '../../src/eventstore/types.js';
import { FakePrimary } from '../../test/wire/fakePrimary.js';
import { printTable } from './report.js';

const WRITERS = 16;
const INSTANCES = 4;
const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);

type Scenario = 'contended' | 'distinct' | 'scale-out';
const scenarios: Scenario[] = ['contended', 'distinct', 'scale-out'];
const scenarioLabel: Record<Scenario, string> = {
  contended: `${WRITERS} writers, 1 stream`,
  distinct: `${WRITERS} writers, ${WRITERS} streams`,
  'scale-out': `${WRITERS} writers x ${INSTANCES} instances, distinct streams`,
};

/** What one writer does once: read the version, append at it. */
type AppendOnce = (stream: string) => Promise<'committed' | 'conflict' | 'gave-up'>;

interface Row {
  adapter: string;
  scenario: Scenario;
  commits: number;
  seconds: number;
  conflicts: number;
  gaveUp: number;
}

/** Runs one writer loop per entry of `writers` for SECONDS and counts what happened. */
async function measure(adapter: string, scenario: Scenario, writers: AppendOnce[]): Promise<Row> {
  const row: Row = { adapter, scenario, commits: 0, seconds: 0, conflicts: 0, gaveUp: 0 };
  const started = performance.now();
  const deadline = started + SECONDS * 1_000;
  await Promise.all(
    writers.map(async (appendOnce, w) => {
      const stream = scenario === 'contended' ? 'hot' : `stream-${w}`;
      while (performance.now() < deadline) {
        const outcome = await appendOnce(stream);
        if (outcome === 'committed') row.commits += 1;
        else if (outcome === 'conflict') row.conflicts += 1;
        else row.gaveUp += 1;
      }
    }),
  );
  row.seconds = (performance.now() - started) / 1_000;
  return row;
}

/** `WRITERS` writers for a scenario, spread over `instances` (one each but for scale-out). */
function writersFor(scenario: Scenario, instances: AppendOnce[]): AppendOnce[] {
  const count = scenario === 'scale-out' ? WRITERS * INSTANCES : WRITERS;
  return Array.from({ length: count }, (_, w) => instances[w % instances.length]!);
}

/** One writer step against the EventStore port. */
function viaStore(store: EventStore): AppendOnce {
  return async (stream) => {
    const version = await store.streamVersion(stream);
    try {
      await store.append({
        streams: [
          { stream, expected: version, events: [{ type: 'Ticked', data: { at: version } }] },
        ],
        metadata: { actor: 'bench', operation: 'bench' },
      });
      return 'committed';
    } catch (error) {
      if (error instanceof VersionConflict) return 'conflict';
      if (error instanceof EventStoreUnavailable) return 'gave-up';
      throw error;
    }
  };
}

const TRANSACTION_OPTIONS: TransactionOptions = {
  readConcern: { level: 'snapshot' },
  writeConcern: new WriteConcern('majority'),
  readPreference: 'primary',
};

/**
 * The baseline: the same documents written the same way by a bare driver transaction
 * (the head, version-conditional; the position from the counter outside the transaction;
 * the commit document), with the driver's own retries and nothing of ours (no
 * validation, no idempotency, no budget, no tombstones).
 */
function viaRawDriver(client: MongoClient, db: Db): AppendOnce {
  const streams = db.collection<{ _id: string; version: number }>('streams');
  const counters = db.collection<{ _id: string; value: number }>('counters');
  const commits = db.collection('commits');
  return async (stream) => {
    const version = (await streams.findOne({ _id: stream }))?.version ?? 0;
    const session = client.startSession();
    try {
      return await session.withTransaction(async (s: ClientSession) => {
        const next = version + 1;
        if (version === 0) {
          await streams.insertOne({ _id: stream, version: next }, { session: s });
        } else {
          const updated = await streams.updateOne(
            { _id: stream, version },
            { $set: { version: next } },
            { session: s },
          );
          if (updated.matchedCount === 0) return 'conflict' as const;
        }
        const counter = await counters.findOneAndUpdate(
          { _id: 'position' },
          { $inc: { value: 1 } },
          { upsert: true, returnDocument: 'after', writeConcern: { w: 1 } },
        );
        await commits.insertOne(
          {
            _id: randomUUID(),
            position: counter!.value,
            occurredAt: new Date(),
            actor: 'bench',
            operation: 'bench',
            events: [
              {
                eventId: randomUUID(),
                stream,
                version: next,
                type: 'Ticked',
                data: { at: version },
                schemaVersion: 1,
              },
            ],
          } as never,
          { session: s },
        );
        return 'committed' as const;
      }, TRANSACTION_OPTIONS);
    } catch (error) {
      if (error instanceof Error && 'code' in error && error.code === 11000) return 'conflict';
      throw error;
    } finally {
      await session.endSession();
    }
  };
}

/** Counts calls on the port, to report port calls per committed append. */
function counting(store: EventStore, calls: { n: number }): EventStore {
  return new Proxy(store, {
    get(target, property, receiver) {
      const value: unknown = Reflect.get(target, property, receiver);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        calls.n += 1;
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
}

async function benchMemory(): Promise<{ rows: Row[]; portCalls: number }> {
  const rows: Row[] = [];
  let portCalls = 0;
  for (const scenario of scenarios) {
    const log = new MemoryEventLog();
    const calls = { n: 0 };
    const stores = Array.from({ length: scenario === 'scale-out' ? INSTANCES : 1 }, () =>
      counting(new MemoryEventStore({ log }), calls),
    );
    const row = await measure('memory', scenario, writersFor(scenario, stores.map(viaStore)));
    rows.push(row);
    if (scenario === 'scale-out') portCalls = calls.n / Math.max(1, row.commits);
    await Promise.all(stores.map((s) => s.close()));
  }
  return { rows, portCalls };
}

async function benchMongo(uri: string): Promise<{ rows: Row[]; roundTrips: number }> {
  const rows: Row[] = [];
  let roundTrips = NaN;
  const fresh = () => `corkboard_bench_${randomBytes(6).toString('hex')}`;
  const clients = await Promise.all(
    Array.from({ length: INSTANCES }, () =>
      new MongoClient(uri, { monitorCommands: true }).connect(),
    ),
  );
  let commands = 0;
  for (const c of clients) c.on('commandStarted', () => (commands += 1));
  try {
    for (const scenario of scenarios) {
      const dbName = fresh();
      const used = scenario === 'scale-out' ? clients : clients.slice(0, 1);
      const stores = await Promise.all(
        used.map((client) => MongoEventStore.create({ client, dbName })),
      );
      try {
        const before = commands;
        const row = await measure('mongo', scenario, writersFor(scenario, stores.map(viaStore)));
        rows.push(row);
        // The writers' own streamVersion reads are one command per attempt: not the append's.
        if (scenario === 'scale-out') {
          roundTrips = (commands - before - row.commits - row.conflicts) / Math.max(1, row.commits);
        }
      } finally {
        await Promise.all(stores.map((s) => s.close()));
        await clients[0]!.db(dbName).dropDatabase();
      }
    }
    for (const scenario of scenarios) {
      const dbName = fresh();
      // Same collections and indexes as ours, created up front, so only the appends differ.
      await (await MongoEventStore.create({ client: clients[0]!, dbName })).close();
      const used = scenario === 'scale-out' ? clients : clients.slice(0, 1);
      try {
        const writers = used.map((client) => viaRawDriver(client, client.db(dbName)));
        rows.push(await measure('raw driver', scenario, writersFor(scenario, writers)));
      } finally {
        await clients[0]!.db(dbName).dropDatabase();
      }
    }
  } finally {
    await Promise.all(clients.map((c) => c.close()));
  }
  return { rows, roundTrips };
}

/**
 * Commands the driver sends for one append of each shape, counted by command monitoring
 * against a scripted primary that answers every command at once (no conflicts).
 */
async function roundTripsOnTheWire(): Promise<[string, number][]> {
  const fake = await FakePrimary.start();
  const client = new MongoClient(fake.uri, { monitorCommands: true });
  let commands = 0;
  client.on('commandStarted', (e) => {
    if (e.commandName !== 'hello' && e.commandName !== 'isMaster') commands += 1;
  });
  await client.connect();
  const store = new MongoEventStore({ client, dbName: 'bench' });
  const event = [{ type: 'Ticked', data: {} }];
  const shapes: [string, AppendRequest][] = [
    ['one stream at an exact version', { streams: [{ stream: 'a', expected: 3, events: event }] }],
    [
      'one new stream (NO_STREAM)',
      { streams: [{ stream: 'b', expected: NO_STREAM, events: event }] },
    ],
    ['one stream, ANY', { streams: [{ stream: 'c', expected: ANY, events: event }] }],
    [
      'one stream at an exact version, idempotency key',
      { streams: [{ stream: 'd', expected: 3, events: event }], idempotencyKey: 'k' },
    ],
    [
      'two streams (one exact, one new), idempotency key',
      {
        streams: [
          { stream: 'e', expected: 3, events: event },
          { stream: 'f', expected: NO_STREAM, events: event },
        ],
        idempotencyKey: 'k2',
      },
    ],
  ];
  const counts: [string, number][] = [];
  try {
    for (const [label, request] of shapes) {
      const before = commands;
      await store.append(request);
      counts.push([label, commands - before]);
    }
  } finally {
    await client.close();
    await fake.close();
  }
  return counts;
}

/** Latencies the scripted primary adds: every command, and the commit's majority wait. */
const SIMULATED_COMMAND_MS = 1;
const SIMULATED_COMMIT_MS = 5;

/**
 * Appends/s of 16 writers x 4 instances (each its own client) on distinct streams against
 * the scripted primary, which answers every command after SIMULATED_COMMAND_MS and every
 * commit after SIMULATED_COMMIT_MS: what the write path's round trips and any serialisation
 * cost when the server itself is never the bottleneck (it does no work and has no
 * conflicts). Every append creates a new stream (NO_STREAM), which the scripted primary
 * accepts as a real one would.
 */
async function simulatedThroughput(
  writers: number,
  instances: number,
): Promise<{ appends: number; seconds: number }> {
  const fake = await FakePrimary.start();
  fake.script((command) =>
    command.name === 'commitTransaction'
      ? { $delayMs: SIMULATED_COMMIT_MS, reply: { ok: 1 } }
      : { $delayMs: SIMULATED_COMMAND_MS, reply: fake.defaultReply(command) },
  );
  const clients = await Promise.all(
    Array.from({ length: instances }, () => new MongoClient(fake.uri).connect()),
  );
  const stores = clients.map((client) => new MongoEventStore({ client, dbName: 'bench' }));
  let appends = 0;
  const started = performance.now();
  const deadline = started + SECONDS * 1_000;
  try {
    await Promise.all(
      Array.from({ length: writers }, async (_, w) => {
        const store = stores[w % instances]!;
        for (let i = 0; performance.now() < deadline; i += 1) {
          await store.append({
            streams: [
              { stream: `w${w}-${i}`, expected: NO_STREAM, events: [{ type: 'E', data: {} }] },
            ],
          });
          appends += 1;
        }
      }),
    );
  } finally {
    await Promise.all(clients.map((c) => c.close()));
    await fake.close();
  }
  return { appends, seconds: (performance.now() - started) / 1_000 };
}

function ratios(rows: Row[]): string[] {
  const lines: string[] = [];
  for (const scenario of scenarios) {
    const ours = rows.find((r) => r.adapter === 'mongo' && r.scenario === scenario);
    const raw = rows.find((r) => r.adapter === 'raw driver' && r.scenario === scenario);
    if (!ours || !raw || raw.commits === 0) continue;
    const ratio = ours.commits / ours.seconds / (raw.commits / raw.seconds);
    lines.push(`ours/raw, ${scenarioLabel[scenario]}: ${ratio.toFixed(2)}`);
  }
  return lines;
}

const load = loadavg()
  .map((l) => l.toFixed(1))
  .join(' ');
const wire = await roundTripsOnTheWire();
const simulated = [
  { label: '1 writer', ...(await simulatedThroughput(1, 1)) },
  { label: `${WRITERS} writers, 1 instance`, ...(await simulatedThroughput(WRITERS, 1)) },
  {
    label: scenarioLabel['scale-out'],
    ...(await simulatedThroughput(WRITERS * INSTANCES, INSTANCES)),
  },
];
const memory = await benchMemory();
const rows = [...memory.rows];
const uri = process.env.MONGODB_URI;
const mongo = uri ? await benchMongo(uri) : undefined;
if (mongo) rows.push(...mongo.rows);

console.log(
  `append throughput, ${SECONDS} s per run, node ${process.version}, load average ${load}`,
);
printTable(
  ['adapter', 'scenario', 'commits', 'seconds', 'commits/s', 'conflicts', 'gave up'],
  rows.map((r) => [
    r.adapter,
    scenarioLabel[r.scenario],
    String(r.commits),
    r.seconds.toFixed(1),
    (r.commits / r.seconds).toFixed(0),
    String(r.conflicts),
    String(r.gaveUp),
  ]),
  2,
);
console.log('');
console.log('round trips per append (real driver, scripted primary, command monitoring)');
printTable(
  ['append', 'commands'],
  wire.map(([label, n]) => [label, String(n)]),
  1,
);
console.log('');
console.log(
  `appends/s against the scripted primary (${SIMULATED_COMMAND_MS} ms per command, ` +
    `${SIMULATED_COMMIT_MS} ms per commit; client and primary share this process's CPU)`,
);
printTable(
  ['writers', 'appends', 'seconds', 'appends/s'],
  simulated.map((r) => [
    r.label,
    String(r.appends),
    r.seconds.toFixed(1),
    (r.appends / r.seconds).toFixed(0),
  ]),
  1,
);
console.log(
  `memory: ${memory.portCalls.toFixed(2)} port calls per committed append (scale-out; the writer's streamVersion read included)`,
);
if (mongo) {
  console.log(
    `mongo: ${mongo.roundTrips.toFixed(2)} commands per committed append (scale-out, counted on the server run; the writers' reads excluded)`,
  );
  for (const line of ratios(rows)) console.log(line);
} else {
  console.log('(mongo and raw driver skipped: MONGODB_URI is not set)');
}
