import { trace } from '@opentelemetry/api';
import {
  InMemorySpanExporter,
  SimpleSpanProcessor,
  TracerProvider,
} from '@opentelemetry/sdk-trace';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { endTracedReplay, tracedReplayPage, tracedResync } from '../../src/live/liveTraces.js';
import { Attr, SpanName } from '../../src/telemetry/spans.js';

/** Subscriptions' spans: one per replay however many pages, one per resync, none per frame. */

const exporter = new InMemorySpanExporter();
const provider = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter })] });
beforeAll(() => {
  trace.setGlobalTracerProvider(provider);
});
afterAll(async () => {
  await provider.shutdown();
  trace.disable();
});

describe('subscription spans', () => {
  it('makes one span of a replay of many pages, and one of a resync', () => {
    const subscription = {};
    for (let page = 0; page < 5; page++) tracedReplayPage(subscription, 10, 100);
    expect(exporter.getFinishedSpans()).toEqual([]);
    tracedResync(subscription, 10, 900);
    endTracedReplay(subscription);
    endTracedReplay(subscription);

    const spans = exporter.getFinishedSpans();
    const replays = spans.filter((s) => s.name === SpanName.Replay);
    const resyncs = spans.filter((s) => s.name === SpanName.Resync);
    expect(replays).toHaveLength(1);
    expect(replays[0]!.attributes).toMatchObject({
      [Attr.ReplayAfter]: 10,
      [Attr.ReplayEntries]: 500,
    });
    expect(resyncs).toHaveLength(1);
    expect(resyncs[0]!.attributes).toMatchObject({ [Attr.ResyncHead]: 900 });
    expect(resyncs[0]!.parentSpanContext?.spanId).toBe(replays[0]!.spanContext().spanId);
    expect(spans).toHaveLength(2);
  });
});
