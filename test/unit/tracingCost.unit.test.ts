import { context, ROOT_CONTEXT, SpanKind, trace, type Tracer } from '@opentelemetry/api';
import {
  InMemorySpanExporter,
  ParentBasedSampler,
  SamplingDecision,
  SimpleSpanProcessor,
  TraceIdRatioBasedSampler,
  TracerProvider,
} from '@opentelemetry/sdk-trace';
import { parse, type DocumentNode } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SampledContextManager } from '../../src/telemetry/contextManager.js';
import { documentAttribute } from '../../src/telemetry/graphqlTracing.js';
import { LinkedTraceSampler } from '../../src/telemetry/sampler.js';
import { inSpan, markTracingStarted, SpanName, TRACER_NAME } from '../../src/telemetry/spans.js';

/**
 * What tracing costs the work it does not record: a request not sampled starts no span
 * of Corkboard's (no ids, no sampling decision), a commit of such a request gets no
 * sampled projection or push of its own, and a traced operation's document is looked
 * through once per document, not on every execution.
 */

const exporter = new InMemorySpanExporter();
// New traces sampled at ratio 1: whatever is not recorded below is not for lack of luck.
const sampler = new ParentBasedSampler({
  root: new LinkedTraceSampler(new TraceIdRatioBasedSampler(1)),
});
const provider = new TracerProvider({
  sampler,
  spanProcessors: [new SimpleSpanProcessor({ exporter })],
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
const manager = new SampledContextManager();

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
});
