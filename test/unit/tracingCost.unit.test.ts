import { context, ROOT_CONTEXT, SpanKind, trace, type Tracer } from '@opentelemetry/api';
import {
  InMemorySpanExporter,
  ParentBasedSampler,
  SamplingDecision,
  SimpleSpanProcessor,
  TraceIdRatioBasedSampler,
  TracerProvider,
} from '@opentelemetry/sdk-trace';
import { setTimeout as sleep } from 'node:timers/promises';
import { parse, type DocumentNode } from 'graphql';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { PushTraces } from '../../src/live/liveTraces.js';
import type { SubscriptionGroups } from '../../src/live/SubscriptionGroups.js';
import type { ChangeLogEntry } from '../../src/projector/types.js';
import {
  ASYNC_CONTEXT_LINGER_MS,
  corkboardContextManager,
} from '../../src/telemetry/contextManager.js';
import { documentAttribute } from '../../src/telemetry/graphqlTracing.js';
import { LinkedTraceSampler } from '../../src/telemetry/sampler.js';
import {
  Attr,
  inSpan,
  linksTo,
  markTracingStarted,
  SpanName,
  TRACER_NAME,
} from '../../src/telemetry/spans.js';

/**
 * What tracing costs the work it does not record: a request not sampled starts no span
 * of Corkboard's (no ids, no sampling decision), nor does the work on a commit of such a
 * request (its projection, its push); a sampled push does not switch async context on
 * for its fan-out; and a traced operation's document is looked through once per
 * document, not on every execution.
 */

const exporter = new InMemorySpanExporter();
// New traces sampled at ratio 1: whatever is not recorded below is not for lack of luck.
const sampler = new ParentBasedSampler({
  root: new LinkedTraceSampler(new TraceIdRatioBasedSampler(1)),
});
// The context manager of `startTracing`, counting the sampled spans open as it does there.
const manager = corkboardContextManager();
const provider = new TracerProvider({
  sampler,
  spanProcessors: [manager.spanProcessor, new SimpleSpanProcessor({ exporter })],
});
/** The names of the spans started through Corkboard's tracer, recorded or not. */
const started: string[] = [];
const counted = (tracer: Tracer): Tracer => ({
  startSpan: (name, ...rest) => {
    started.push(name);
    return tracer.startSpan(name, ...rest);
  },
  startActiveSpan: (name: string, ...rest: unknown[]) => {
    started.push(name);
    return (tracer.startActiveSpan as (...args: unknown[]) => unknown)(name, ...rest);
  },
});
beforeAll(() => {
  context.setGlobalContextManager(manager.enable());
  trace.setGlobalTracerProvider({
    getTracer: (name, version, options) => {
      const tracer = provider.getTracer(name, version, options);
      return name === TRACER_NAME ? counted(tracer) : tracer;
    },
  });
  markTracingStarted({ childrenNeedSampledParent: true });
});
afterAll(async () => {
  await provider.shutdown();
  trace.disable();
  context.disable();
});

/** A command with its append, as a mutation's resolver runs them. */
const command = (parent?: Parameters<typeof context.with>[0]) =>
  inSpan(SpanName.Command, { parent }, (commandSpan) =>
    inSpan(SpanName.Append, {}, (appendSpan) =>
      Promise.resolve([commandSpan.isRecording(), appendSpan.isRecording()]),
    ),
  );

describe('tracing cost of unrecorded work', () => {
  it('starts no span for the work of a request not sampled, and records it under a sampled one', async () => {
    exporter.reset();
    started.length = 0;
    // No parent: the work of a request that is not traced (or not sampled).
    expect(await command()).toEqual([false, false]);
    // Nor under a parent that is not sampled.
    const unsampledParent = trace.setSpan(
      ROOT_CONTEXT,
      trace.wrapSpanContext({
        traceId: 'a'.repeat(32),
        spanId: 'b'.repeat(16),
        traceFlags: 0,
      }),
    );
    expect(await command(unsampledParent)).toEqual([false, false]);
    expect(started).toEqual([]);
    expect(exporter.getFinishedSpans()).toEqual([]);

    // Under a sampled request's span, both are recorded, the append the command's child.
    const request = provider.getTracer('test').startSpan('request', { kind: SpanKind.SERVER });
    expect(await command(trace.setSpan(ROOT_CONTEXT, request))).toEqual([true, true]);
    request.end();
    const spans = exporter.getFinishedSpans();
    const commandSpan = spans.find((s) => s.name === SpanName.Command)!;
    const appendSpan = spans.find((s) => s.name === SpanName.Append)!;
    expect(commandSpan.parentSpanContext?.spanId).toBe(request.spanContext().spanId);
    expect(appendSpan.parentSpanContext?.spanId).toBe(commandSpan.spanContext().spanId);
  });

  it('samples the work on a commit only when it links to a sampled trace', () => {
    const decide = (name: string, links: { traceFlags: number }[]) =>
      sampler.shouldSample(
        ROOT_CONTEXT,
        'c'.repeat(32),
        name,
        SpanKind.INTERNAL,
        {},
        links.map(({ traceFlags }) => ({
          context: { traceId: 'd'.repeat(32), spanId: 'e'.repeat(16), traceFlags },
        })),
      ).decision;
    for (const name of [SpanName.Project, SpanName.Push]) {
      // A commit of a request not sampled (no trace context, or an unsampled one): not
      // sampled on a ratio of its own, even at ratio 1.
      expect(decide(name, [])).toBe(SamplingDecision.NOT_RECORD);
      expect(decide(name, [{ traceFlags: 0 }])).toBe(SamplingDecision.NOT_RECORD);
      expect(decide(name, [{ traceFlags: 0 }, { traceFlags: 1 }])).toBe(
        SamplingDecision.RECORD_AND_SAMPLED,
      );
    }
    // A subscription's replay starts a trace on the ratio (1 here); a command never does.
    expect(decide(SpanName.Replay, [])).toBe(SamplingDecision.RECORD_AND_SAMPLED);
    expect(decide(SpanName.Command, [])).toBe(SamplingDecision.NOT_RECORD);
  });

  it('looks through a document for inline arguments once, however often it runs', () => {
    const counting = (source: string) => {
      const parsed = parse(source);
      let reads = 0;
      const document = {
        kind: parsed.kind,
        get definitions() {
          reads += 1;
          return parsed.definitions;
        },
      } as DocumentNode;
      return { document, reads: () => reads };
    };
    const plain = counting('query Board($id: ID!) { board(id: $id) { id name } }');
    const text = documentAttribute(plain.document);
    expect(text).toContain('board(id: $id)');
    const readsOnce = plain.reads();
    expect(readsOnce).toBeGreaterThan(0);
    for (let i = 0; i < 5; i++) expect(documentAttribute(plain.document)).toBe(text);
    expect(plain.reads()).toBe(readsOnce);

    // Inline argument values may be user data: such a document is not recorded.
    const inline = counting('query { board(id: "b1") { id } }');
    expect(documentAttribute(inline.document)).toBeUndefined();
    const inlineReads = inline.reads();
    expect(documentAttribute(inline.document)).toBeUndefined();
    expect(inline.reads()).toBe(inlineReads);
  });

  it('starts no projection or push span for a commit of a request not sampled', async () => {
    started.length = 0;
    const pushes = new PushTraces({} as SubscriptionGroups);
    const projected = (carried?: { traceparent: string }) =>
      inSpan(SpanName.Project, { root: true, links: linksTo([carried]) }, (span) =>
        Promise.resolve(span.isRecording()),
      );
    // No trace context on the commit (its request was not sampled), or an unsampled one.
    expect(await projected()).toBe(false);
    expect(await projected(carried(0))).toBe(false);
    expect(pushes.begin(entryOf(), 200, 1)).toBeUndefined();
    expect(pushes.begin(entryOf(carried(0)), 200, 1)).toBeUndefined();
    expect(started).toEqual([]);

    // A commit of a sampled request: both recorded.
    expect(await projected(carried(1))).toBe(true);
    const push = pushes.begin(entryOf(carried(1)), 200, 1);
    expect(push).toBeDefined();
    push!.finish(200);
    expect(started).toEqual([SpanName.Project, SpanName.Push]);
  });

  it('keeps async context off across the fan-out of a sampled push', async () => {
    await vi.waitFor(() => expect(manager.asyncContextOn).toBe(false), {
      timeout: ASYNC_CONTEXT_LINGER_MS + 5_000,
    });
    exporter.reset();
    const pushes = new PushTraces({} as SubscriptionGroups);
    const push = pushes.begin(entryOf(carried(1)), 200, 1)!;
    // A delivery started in the push, as the hub starts each subscriber's.
    const delivery = push.run(() => {
      const before = trace.getActiveSpan();
      return (async () => {
        await sleep(1);
        return { before, after: trace.getActiveSpan(), on: manager.asyncContextOn };
      })();
    });
    push.executed(delivery);
    push.finish(200);
    const seen = await delivery;
    // The push's span is active for the synchronous part only: no async context switched on.
    expect(seen.before?.spanContext().traceId).not.toBe(TRACE_ID);
    expect(seen.before?.isRecording()).toBe(true);
    expect(seen.after).toBeUndefined();
    expect(seen.on).toBe(false);
    expect(manager.asyncContextOn).toBe(false);
    // Its span, linked to the mutation's trace, ends once the executions it started settle.
    const span = await vi.waitFor(() => {
      const found = exporter.getFinishedSpans().find((s) => s.name === SpanName.Push);
      expect(found).toBeDefined();
      return found!;
    });
    expect(span.links.map((l) => l.context.traceId)).toEqual([TRACE_ID]);
    expect(span.attributes[Attr.Frames]).toBe(200);
    expect(span.spanContext().spanId).toBe(seen.before?.spanContext().spanId);
  });
});

/** The trace a commit's carried trace context names. */
const TRACE_ID = 'a'.repeat(32);

/** A commit's carried trace context, with `flags` (1: sampled). */
const carried = (flags: 0 | 1) => ({
  traceparent: `00-${TRACE_ID}-${'b'.repeat(16)}-0${flags}`,
});

/** A change log entry of one board's change, carrying `traceContext`. */
const entryOf = (traceContext?: { traceparent: string }): ChangeLogEntry => ({
  cursor: 7,
  commitId: 'c7',
  scopes: ['board-1'],
  operation: 'editCard',
  actor: null,
  at: new Date(),
  invalidated: [],
  ...(traceContext && { traceContext }),
});
