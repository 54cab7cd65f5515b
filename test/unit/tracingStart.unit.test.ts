import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../support/serverProcess.js';

const run = promisify(execFile);

/** What starting tracing with `env` (in a process of its own) loads and describes. */
async function started(
  env: Record<string, string>,
  store: 'memory' | 'mongo',
): Promise<{ description: string; packages: string[] }> {
  const { stdout } = await run(
    process.execPath,
    ['--import', 'tsx', 'test/support/tracingModules.ts', store],
    {
      cwd: REPO_ROOT,
      env: { PATH: process.env.PATH, OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:9', ...env },
      timeout: 60_000,
    },
  );
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as {
    description: string;
    packages: string[];
  };
}

/**
 * Packages a server exporting traces only has no use for (the Node SDK loads them all;
 * the metrics SDK is not among them: the OTLP exporters' transformer loads it).
 */
const UNUSED = [
  '@opentelemetry/sdk-node',
  '@opentelemetry/sdk-logs',
  '@opentelemetry/exporter-prometheus',
  '@opentelemetry/exporter-metrics-otlp-http',
  '@opentelemetry/exporter-logs-otlp-http',
  '@opentelemetry/exporter-zipkin',
  '@opentelemetry/propagator-b3',
  '@opentelemetry/propagator-jaeger',
];

describe('starting tracing loads what the OTEL_* variables name, nothing more', () => {
  it('http/json on the memory store: the JSON exporter and the http instrumentation only', async () => {
    const { description, packages } = await started(
      { OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' },
      'memory',
    );
    expect(description).toBe('OTLP http/json traces, parent-based sampling of 1 of new traces');
    expect(packages).toEqual(
      expect.arrayContaining([
        '@opentelemetry/sdk-trace',
        '@opentelemetry/exporter-trace-otlp-http',
        '@opentelemetry/instrumentation-http',
      ]),
    );
    for (const unused of [
      ...UNUSED,
      '@opentelemetry/exporter-trace-otlp-proto',
      '@opentelemetry/exporter-trace-otlp-grpc',
      '@grpc/grpc-js',
      'protobufjs',
      '@opentelemetry/instrumentation-mongodb',
    ]) {
      expect(packages).not.toContain(unused);
    }
  }, 90_000);

  it('http/protobuf (the default) with a store that may be MongoDB: its exporter and the mongodb instrumentation', async () => {
    const { description, packages } = await started(
      { NODE_ENV: 'production', OTEL_TRACES_SAMPLER: 'parentbased_always_on' },
      'mongo',
    );
    expect(description).toBe('OTLP http/protobuf traces, parentbased_always_on sampler');
    expect(packages).toEqual(
      expect.arrayContaining([
        '@opentelemetry/exporter-trace-otlp-proto',
        '@opentelemetry/instrumentation-mongodb',
      ]),
    );
    for (const unused of [
      ...UNUSED,
      '@opentelemetry/exporter-trace-otlp-http',
      '@opentelemetry/exporter-trace-otlp-grpc',
      '@grpc/grpc-js',
    ]) {
      expect(packages).not.toContain(unused);
    }
  }, 90_000);
});
