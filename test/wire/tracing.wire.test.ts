import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Attr, SpanName } from '../../src/telemetry/spans.js';
import { OtlpReceiver } from '../support/otlpReceiver.js';
import { REPO_ROOT } from '../support/serverProcess.js';
import { FakePrimary } from './fakePrimary.js';

const run = promisify(execFile);

describe('tracing the mongo adapter (the real driver, ESM, instrumented by startTracing)', () => {
  let fake: FakePrimary;
  let receiver: OtlpReceiver;
  beforeEach(async () => {
    fake = await FakePrimary.start();
    receiver = await OtlpReceiver.start();
  });
  afterEach(async () => {
    await fake.close();
    await receiver.close();
  });

  it("counts an append's database commands as its round trips, each a child span of it", async () => {
    const { stdout } = await run(
      process.execPath,
      ['--import', 'tsx', 'test/wire/tracedAppend.ts', fake.uri],
      {
        cwd: REPO_ROOT,
        env: {
          ...process.env,
          OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint,
          OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
          OTEL_TRACES_SAMPLER: 'parentbased_always_on',
        },
        timeout: 60_000,
      },
    );
    expect(stdout).toContain('"position":');
    const append = await receiver.waitFor(
      (spans) => spans.find((s) => s.name === SpanName.Append),
      'append span',
    );
    const commands = receiver.spans.filter(
      (s) =>
        s.scope === '@opentelemetry/instrumentation-mongodb' && s.parentSpanId === append.spanId,
    );
    // A transaction: at least the position, the write and the commit.
    expect(commands.length).toBeGreaterThanOrEqual(3);
    expect(append.attributes[Attr.AppendRoundTrips]).toBe(commands.length);
    expect(
      commands.map((s) => s.attributes['db.operation.name'] ?? s.attributes['db.operation']),
    ).toContain('commitTransaction');
  }, 90_000);
});
