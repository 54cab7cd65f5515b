import { randomBytes } from 'node:crypto';
import { trace } from '@opentelemetry/api';
import {
  InMemorySpanExporter,
  SimpleSpanProcessor,
  TracerProvider,
  type ReadableSpan,
} from '@opentelemetry/sdk-trace';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryEventStore } from '../../src/eventstore/memory/MemoryEventStore.js';
import { ANY, type EventStore, type TraceContext } from '../../src/eventstore/types.js';
import { createMemoryProjectorStorage } from '../../src/projector/memory/MemoryProjectorStorage.js';
import { ProjectorRuntime } from '../../src/projector/ProjectorRuntime.js';
import type { Projection, ReadDoc } from '../../src/projector/types.js';
import { Attr, MAX_SPAN_LINKS, SpanName } from '../../src/telemetry/spans.js';
import { until } from '../support/until.js';

/**
 * The projector's spans, with an SDK in this process exporting to memory: one span per
 * commit applied live, one per catch-up batch (linked to a bounded number of the batch's
 * commits' traces), never one per commit of a batch.
 */

const exporter = new InMemorySpanExporter();
const provider = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter })] });
beforeAll(() => {
  trace.setGlobalTracerProvider(provider);
});
afterAll(async () => {
  await provider.shutdown();
  trace.disable();
});

const logger = pino({ level: 'silent' });

interface Note extends ReadDoc {
  count: number;
}

/** Counts notes per stream. */
const noted: Projection = {
  name: 'noted',
  handles: ['Noted'],
  async apply(context) {
    for (const event of context.commit.events) {
      await context.update<Note>('notes', event.stream, event, (doc) => ({
        _id: event.stream,
        count: (doc?.count ?? 0) + 1,
      }));
    }
  },
};

/** A sampled W3C trace context of a new trace, as a traced request records on its commit. */
function sampledContext(): { context: TraceContext; traceId: string } {
  const traceId = randomBytes(16).toString('hex');
  return {
    context: { traceparent: `00-${traceId}-${randomBytes(8).toString('hex')}-01` },
    traceId,
  };
}

const note = (store: EventStore, traceContext: TraceContext) =>
  store.append({
    streams: [{ stream: 'n-1', expected: ANY, events: [{ type: 'Noted', data: {} }] }],
    metadata: { traceContext },
  });

const projectSpans = (): ReadableSpan[] =>
  exporter.getFinishedSpans().filter((span) => span.name === SpanName.Project);

describe('the projector’s spans', () => {
  it('gives a catch-up batch one span linked to its commits’ traces, and a live commit one of its own', async () => {
    const store = new MemoryEventStore();
    const commits = 300;
    const traceIds: string[] = [];
    for (let i = 0; i < commits; i++) {
      const { context, traceId } = sampledContext();
      traceIds.push(traceId);
      await note(store, context);
    }
    const storage = createMemoryProjectorStorage();
    const runtime = new ProjectorRuntime({ store, storage, projections: [noted], logger });
    try {
      runtime.start();
      await until(async () => (await runtime.lag()).checkpoint === commits);
      const covered = () =>
        projectSpans().map((span) => span.attributes[Attr.ProjectCommits] as number);
      // A span ends once its work (the checkpoint included) is done.
      await until(() => covered().reduce((a, b) => a + b, 0) === commits);

      // Far behind: the commits went through the batch path, a few spans for all of them.
      const batches = projectSpans();
      expect(batches.length).toBeLessThan(10);
      expect(covered().some((n) => n > MAX_SPAN_LINKS)).toBe(true);
      for (const span of batches) {
        const first = span.attributes[Attr.Position] as number;
        const last = span.attributes[Attr.ProjectLastPosition] as number | undefined;
        const count = span.attributes[Attr.ProjectCommits] as number;
        // Each link is to the trace of one of the span's own commits, in order, bounded.
        const expected = traceIds.slice(first - 1, first - 1 + Math.min(count, MAX_SPAN_LINKS));
        expect(span.links.map((link) => link.context.traceId)).toEqual(expected);
        if (count > 1) {
          expect(last).toBe(first + count - 1);
          expect(span.attributes[Attr.LinksOmitted]).toBe(count - expected.length);
        }
      }

      // Caught up: one span for the next commit, linked to its trace.
      exporter.reset();
      const { context, traceId } = sampledContext();
      await note(store, context);
      await until(() => projectSpans().length > 0);
      const [live, ...more] = projectSpans();
      expect(more).toEqual([]);
      expect(live!.attributes).toMatchObject({
        [Attr.Position]: commits + 1,
        [Attr.ProjectCommits]: 1,
      });
      expect(live!.links.map((link) => link.context.traceId)).toEqual([traceId]);
    } finally {
      await runtime.stop();
    }
  });
});
