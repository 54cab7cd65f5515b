/**
 * Run as its own process by `tracing.wire.test.ts`: `node --import tsx
 * test/wire/tracedAppend.ts <mongodb uri>`. Starts tracing as `src/main.ts` does (from the
 * OTEL_* variables), only then imports the mongo adapter, and appends once inside a span,
 * as a command does. Prints the append's position.
 */
import { startTracing } from '../../src/telemetry/tracing.js';

const uri = process.argv[2];
if (!uri) throw new Error('usage: tracedAppend.ts <mongodb uri>');
const tracing = await startTracing(process.env);
if (!tracing) throw new Error('tracing is not configured');
const { trace } = await import('@opentelemetry/api');
const { MongoEventStore } = await import('../../src/eventstore/mongo/MongoEventStore.js');
const { appendOnce } = await import('../../src/boards/commandHandling/commits.js');

const store = await MongoEventStore.connect(uri, { dbName: 'traced' });
const appended = await trace.getTracer('traced-append').startActiveSpan('request', async (span) => {
  try {
    return await appendOnce(
      store,
      {
        streams: [
          { stream: 'card-1', expected: 'NO_STREAM', events: [{ type: 'CardAdded', data: {} }] },
        ],
        metadata: { operation: 'addCard' },
      },
      undefined,
    );
  } finally {
    span.end();
  }
});
await store.close();
await tracing.shutdown();
console.log(JSON.stringify({ appended }));
