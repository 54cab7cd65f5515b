import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  exporterNames,
  propagatorFromEnv,
  resourceFromEnv,
  samplerFromEnv,
  spanLimitsFromEnv,
} from '../../src/telemetry/sdkFromEnv.js';

/** The OTEL_* variables, read as the Node SDK reads them (see sdkFromEnv.ts). */
describe('the trace SDK from OTEL_* variables', () => {
  afterEach(() => vi.unstubAllEnvs());

  it('OTEL_TRACES_SAMPLER: the SDK samplers by name, the ratio from _ARG (default 1)', async () => {
    const named = async (sampler: string, arg?: string) =>
      String(
        await samplerFromEnv({
          OTEL_TRACES_SAMPLER: sampler,
          ...(arg !== undefined && { OTEL_TRACES_SAMPLER_ARG: arg }),
        }),
      );
    expect(await named('always_on')).toBe('AlwaysOnSampler');
    expect(await named('always_off')).toBe('AlwaysOffSampler');
    expect(await named('traceidratio', '0.25')).toBe('TraceIdRatioBased{0.25}');
    expect(await named('traceidratio', '7')).toBe('TraceIdRatioBased{1}');
    expect(await named('parentbased_always_off')).toContain('root=AlwaysOffSampler');
    expect(await named('parentbased_traceidratio', '0.5')).toContain('root=TraceIdRatioBased{0.5}');
    // Unset or unknown: none of its own (Corkboard's sampling then).
    expect(await samplerFromEnv({})).toBeUndefined();
    expect(await samplerFromEnv({ OTEL_TRACES_SAMPLER: 'sometimes' })).toBeUndefined();
  });

  it('OTEL_TRACES_EXPORTER: otlp by default and when none is among others; unknown names skipped', () => {
    expect(exporterNames({})).toEqual(['otlp']);
    expect(exporterNames({ OTEL_TRACES_EXPORTER: ' zipkin , console,zipkin' })).toEqual([
      'zipkin',
      'console',
    ]);
    expect(exporterNames({ OTEL_TRACES_EXPORTER: 'none,zipkin' })).toEqual(['otlp']);
    expect(exporterNames({ OTEL_TRACES_EXPORTER: 'jaeger' })).toEqual([]);
  });

  it('OTEL_PROPAGATORS: W3C trace context and baggage by default, b3 on request, none', async () => {
    expect((await propagatorFromEnv({}))?.fields()).toEqual([
      'traceparent',
      'tracestate',
      'baggage',
    ]);
    expect((await propagatorFromEnv({ OTEL_PROPAGATORS: 'b3' }))?.fields()).toContain('b3');
    expect(await propagatorFromEnv({ OTEL_PROPAGATORS: 'none' })).toBeNull();
  });

  it('OTEL_SPAN_* limits, the general OTEL_ATTRIBUTE_* ones as their fallback', () => {
    expect(
      spanLimitsFromEnv({
        OTEL_ATTRIBUTE_COUNT_LIMIT: '64',
        OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT: '100',
        OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT: '5',
        OTEL_SPAN_LINK_COUNT_LIMIT: '32',
      }),
    ).toMatchObject({
      attributeCountLimit: 64,
      attributeValueLengthLimit: 100,
      linkCountLimit: 32,
      eventCountLimit: undefined,
    });
  });

  it('the resource: service.name corkboard unless OTEL_SERVICE_NAME or the resource attributes say', async () => {
    const detectors = { OTEL_NODE_RESOURCE_DETECTORS: 'env' };
    expect((await resourceFromEnv(detectors, 'corkboard')).attributes).toMatchObject({
      'service.name': 'corkboard',
      'telemetry.sdk.language': 'nodejs',
    });
    vi.stubEnv('OTEL_RESOURCE_ATTRIBUTES', 'service.name=boards,deployment.environment=edge');
    expect((await resourceFromEnv(detectors, 'corkboard')).attributes).toMatchObject({
      'service.name': 'boards',
      'deployment.environment': 'edge',
    });
    vi.stubEnv('OTEL_SERVICE_NAME', 'planner');
    expect((await resourceFromEnv(detectors, 'corkboard')).attributes['service.name']).toBe(
      'planner',
    );
    // `none`: no detector, so the variables are not read.
    expect(
      (await resourceFromEnv({ OTEL_NODE_RESOURCE_DETECTORS: 'none' }, 'corkboard')).attributes[
        'service.name'
      ],
    ).toBe('corkboard');
  });
});
