import { setTimeout as sleep } from 'node:timers/promises';
import { context, ROOT_CONTEXT, trace, type Span } from '@opentelemetry/api';
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  InMemorySpanExporter,
  SimpleSpanProcessor,
  TracerProvider,
} from '@opentelemetry/sdk-trace';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ASYNC_CONTEXT_LINGER_MS,
  SampledContextManager,
} from '../../src/telemetry/contextManager.js';
import { traceRequest } from '../../src/telemetry/tracing.js';

/**
 * The context manager keeps async context (AsyncLocalStorage, a hook on every promise of
 * the process on Node 20) on only while a sampled trace is recorded.
 */

const manager = new SampledContextManager(
  (span) => !span.name.startsWith('long.'),
  (span) => span.name.startsWith('explicit.'),
);
const exporter = new InMemorySpanExporter();
const processors = [manager.spanProcessor, new SimpleSpanProcessor({ exporter })];
const sampled = new TracerProvider({ sampler: new AlwaysOnSampler(), spanProcessors: processors });
const unsampled = new TracerProvider({ sampler: new AlwaysOffSampler() });
beforeAll(() => {
  context.setGlobalContextManager(manager.enable());
});
afterAll(async () => {
  context.disable();
  await sampled.shutdown();
});

/** Runs `work` with a new span of `provider` active, ending it when `work` settles. */
async function inSpan<T>(
  provider: TracerProvider,
  name: string,
  work: (span: Span) => Promise<T>,
): Promise<T> {
  return provider.getTracer('test').startActiveSpan(name, async (span) => {
    try {
      return await work(span);
    } finally {
      span.end();
    }
  });
}

const activeSpan = () => trace.getActiveSpan();

describe('SampledContextManager', () => {
  it('keeps a sampled trace across awaits, and switches async context off once it ended', async () => {
    expect(manager.asyncContextOn).toBe(false);
    const seen = await inSpan(sampled, 'request', async (span) => {
      await sleep(5);
      const after = activeSpan();
      // A child started after awaits is the request's child.
      const child = await inSpan(sampled, 'child', async (c) => {
        await Promise.resolve();
        return { active: activeSpan(), id: c.spanContext().spanId };
      });
      return { span, after, child };
    });
    expect(seen.after).toBe(seen.span);
    expect(seen.child.active?.spanContext().spanId).toBe(seen.child.id);
    const child = exporter.getFinishedSpans().find((s) => s.name === 'child');
    expect(child?.parentSpanContext?.spanId).toBe(seen.span.spanContext().spanId);
    expect(manager.asyncContextOn).toBe(true);

    // No sampled span open any more: off after the linger time.
    await sleep(ASYNC_CONTEXT_LINGER_MS + 200);
    expect(manager.asyncContextOn).toBe(false);
  });

  it('gives an unsampled span the synchronous part of its work only, leaving async context off', async () => {
    const seen = await inSpan(unsampled, 'request', async (span) => {
      const before = activeSpan();
      await sleep(1);
      return { span, before, after: activeSpan() };
    });
    expect(seen.before).toBe(seen.span);
    expect(seen.after).toBeUndefined();
    expect(manager.asyncContextOn).toBe(false);
  });

  it('propagates an unsampled span across awaits while a sampled trace keeps async context on', async () => {
    let release!: () => void;
    const open = inSpan(sampled, 'request', () => new Promise<void>((r) => (release = r)));
    await sleep(1);
    expect(manager.asyncContextOn).toBe(true);
    const seen = await inSpan(unsampled, 'other', async (span) => {
      await sleep(1);
      return { span, after: activeSpan() };
    });
    expect(seen.after).toBe(seen.span);
    release();
    await open;
  });

  it('does not count a span that lasts as long as a subscription', async () => {
    await sleep(ASYNC_CONTEXT_LINGER_MS + 200);
    expect(manager.asyncContextOn).toBe(false);
    let release!: () => void;
    const open = inSpan(
      sampled,
      'long.subscription',
      () => new Promise<void>((r) => (release = r)),
    );
    await sleep(ASYNC_CONTEXT_LINGER_MS + 200);
    expect(manager.asyncContextOn).toBe(false);
    release();
    await open;
  });
});

describe('SampledContextManager, spans whose children get them explicitly', () => {
  it('leaves async context off for such a span, and switches it on for a child given it as its parent', async () => {
    await sleep(ASYNC_CONTEXT_LINGER_MS + 200);
    expect(manager.asyncContextOn).toBe(false);
    const tracer = sampled.getTracer('test');
    const seen = await inSpan(sampled, 'explicit.request', async (request) => {
      const before = activeSpan();
      await sleep(1);
      const after = activeSpan();
      const onInRequest = manager.asyncContextOn;
      // Its child, given its parent explicitly (as a command is given its operation's).
      const child = await tracer.startActiveSpan(
        'command',
        {},
        trace.setSpan(ROOT_CONTEXT, request),
        async (c) => {
          await sleep(1);
          const active = activeSpan();
          c.end();
          return { active, id: c.spanContext().spanId, on: manager.asyncContextOn };
        },
      );
      return { request, before, after, onInRequest, child };
    });
    // The request's context: for the synchronous part of its work only, async context off.
    expect(seen.before).toBe(seen.request);
    expect(seen.after).toBeUndefined();
    expect(seen.onInRequest).toBe(false);
    // Its child's: across awaits, async context on while it lasts.
    expect(seen.child.on).toBe(true);
    expect(seen.child.active?.spanContext().spanId).toBe(seen.child.id);
    const command = exporter.getFinishedSpans().find((s) => s.name === 'command');
    expect(command?.parentSpanContext?.spanId).toBe(seen.request.spanContext().spanId);
    await sleep(ASYNC_CONTEXT_LINGER_MS + 200);
    expect(manager.asyncContextOn).toBe(false);
  });
});

describe('traceRequest', () => {
  const id = `${'a'.repeat(32)}-${'b'.repeat(16)}`;
  it("follows the caller's traceparent, and samples a `ratio` share of the others", () => {
    expect(traceRequest(`00-${id}-01`, 0)).toBe(true);
    expect(traceRequest(`00-${id}-00`, 1)).toBe(false);
    expect(traceRequest(undefined, 1)).toBe(true);
    expect(traceRequest(undefined, 0)).toBe(false);
    // Malformed (an all-zero trace id, version ff): as if there were none.
    expect(traceRequest(`00-${'0'.repeat(32)}-${'b'.repeat(16)}-01`, 0)).toBe(false);
    expect(traceRequest(`ff-${id}-01`, 0)).toBe(false);
    const share = Array.from({ length: 10_000 }, () => traceRequest(undefined, 0.1)).filter(
      Boolean,
    ).length;
    expect(share).toBeGreaterThan(700);
    expect(share).toBeLessThan(1_300);
  });
});
