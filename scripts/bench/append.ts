/**
 * Append throughput: 16 concurrent writers on ONE stream (contended) and on 16 distinct
 * streams, each for a fixed time. Memory adapter always; with MONGODB_URI also the mongo
 * adapter and a baseline of raw driver transactions writing the same documents (head,
 * counter, events, commit) without our code, and the ours/raw ratio.
 *
 *   npx tsx scripts/bench/append.ts          (BENCH_SECONDS=3 per run by default)
 *
 * Every writer loops: read the stream's version, append with exactly that expectation,
 * count the commit; on VersionConflict count a conflict and loop (re-reading). An
 * EventStoreUnavailable (retries exhausted) is counted as "gave up" and the writer loops.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { MongoClient, WriteConcern, type Db, type TransactionOptions } from 'mongodb';
import { EventStoreUnavailable, VersionConflict } from '../../src/eventstore/errors.js';
import { MemoryEventStore } from '../../src/eventstore/memory/MemoryEventStore.js';
import { MongoEventStore } from '../../src/eventstore/mongo/MongoEventStore.js';
import type { EventStore } from '../../src/eventstore/types.js';

const WRITERS = 16;
const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);

type Scenario = 'contended' | 'distinct';
const scenarios: Scenario[] = ['contended', 'distinct'];
const scenarioLabel: Record<Scenario, string> = {
  contended: `${WRITERS} writers, 1 stream`,
  distinct: `${WRITERS} writers, ${WRITERS} streams`,
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

/** Runs WRITERS writer loops for SECONDS and counts what happened. */
async function measure(adapter: string, scenario: Scenario, appendOnce: AppendOnce): Promise<Row> {
  const row: Row = { adapter, scenario, commits: 0, seconds: 0, conflicts: 0, gaveUp: 0 };
  const started = performance.now();
  const deadline = started + SECONDS * 1_000;
  await Promise.all(
    Array.from({ length: WRITERS }, async (_, w) => {
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
 * The baseline: the same documents written by a bare driver transaction, with the
 * driver's own retries and nothing of ours (no validation, no idempotency, no budget).
 */
function viaRawDriver(client: MongoClient, db: Db): AppendOnce {
  const streams = db.collection<{ _id: string; version: number }>('streams');
  const counters = db.collection<{ _id: string; value: number }>('counters');
  const commits = db.collection('commits');
  return async (stream) => {
    const version = (await streams.findOne({ _id: stream }))?.version ?? 0;
    const session = client.startSession();
    try {
      return await session.withTransaction(async (s) => {
        const head = await streams.findOne({ _id: stream }, { session: s });
        if ((head?.version ?? 0) !== version) return 'conflict' as const;
        const counter = await counters.findOneAndUpdate(
          { _id: 'position' },
          { $inc: { value: 1 } },
          { session: s, upsert: true, returnDocument: 'after' },
        );
        const position = counter!.value;
        const next = version + 1;
        if (head) {
          await streams.updateOne(
            { _id: stream, version },
            { $set: { version: next } },
            { session: s },
          );
        } else {
          await streams.insertOne({ _id: stream, version: next }, { session: s });
        }
        const commitId = randomUUID();
        const occurredAt = new Date();
        const event = { type: 'Ticked', data: { at: version }, schemaVersion: 1 };
        const eventId = randomUUID();
        await commits.insertOne(
          {
            _id: commitId,
            position,
            occurredAt,
            actor: 'bench',
            operation: 'bench',
            events: [{ eventId, stream, version: next, ...event }],
          } as never,
          { session: s },
        );
        return 'committed' as const;
      }, TRANSACTION_OPTIONS);
    } finally {
      await session.endSession();
    }
  };
}

async function benchMemory(): Promise<Row[]> {
  const rows: Row[] = [];
  for (const scenario of scenarios) {
    const store = new MemoryEventStore();
    rows.push(await measure('memory', scenario, viaStore(store)));
    await store.close();
  }
  return rows;
}

async function benchMongo(uri: string): Promise<Row[]> {
  const client = await new MongoClient(uri).connect();
  const rows: Row[] = [];
  const fresh = () => `corkboard_bench_${randomBytes(6).toString('hex')}`;
  try {
    for (const scenario of scenarios) {
      const dbName = fresh();
      const store = await MongoEventStore.create({ client, dbName });
      try {
        rows.push(await measure('mongo', scenario, viaStore(store)));
      } finally {
        await store.close();
        await client.db(dbName).dropDatabase();
      }
    }
    for (const scenario of scenarios) {
      const dbName = fresh();
      // Same collections and indexes as ours, created up front, so only the appends differ.
      await (await MongoEventStore.create({ client, dbName })).close();
      try {
        rows.push(await measure('raw driver', scenario, viaRawDriver(client, client.db(dbName))));
      } finally {
        await client.db(dbName).dropDatabase();
      }
    }
  } finally {
    await client.close();
  }
  return rows;
}

function printTable(rows: Row[]): void {
  const header = ['adapter', 'scenario', 'commits', 'seconds', 'commits/s', 'conflicts', 'gave up'];
  const body = rows.map((r) => [
    r.adapter,
    scenarioLabel[r.scenario],
    String(r.commits),
    r.seconds.toFixed(1),
    (r.commits / r.seconds).toFixed(0),
    String(r.conflicts),
    String(r.gaveUp),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  console.log(line(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const b of body) console.log(line(b));
}

function printRatios(rows: Row[]): void {
  for (const scenario of scenarios) {
    const ours = rows.find((r) => r.adapter === 'mongo' && r.scenario === scenario);
    const raw = rows.find((r) => r.adapter === 'raw driver' && r.scenario === scenario);
    if (!ours || !raw || raw.commits === 0) continue;
    const ratio = ours.commits / ours.seconds / (raw.commits / raw.seconds);
    console.log(`ours/raw, ${scenarioLabel[scenario]}: ${ratio.toFixed(2)}`);
  }
}

const rows = await benchMemory();
const uri = process.env.MONGODB_URI;
if (uri) rows.push(...(await benchMongo(uri)));
console.log(
  `append throughput, ${WRITERS} concurrent writers, ${SECONDS} s per run, node ${process.version}`,
);
printTable(rows);
if (uri) printRatios(rows);
else console.log('(mongo and raw driver skipped: MONGODB_URI is not set)');
