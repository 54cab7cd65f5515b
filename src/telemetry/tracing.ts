import { trace, type Context } from '@opentelemetry/api';
import type { Span, SpanProcessor } from '@opentelemetry/sdk-trace';
import { countRoundTrip, markTracingStarted, rememberRequestSpan } from './spans.js';

/**
 * Starting OpenTelemetry tracing (the Node SDK) from the standard `OTEL_*` variables, before
 * the app is imported, so the http and mongodb instrumentations patch those modules as the
 * app loads them. Nothing of the SDK is loaded when tracing is off.
 */

/**
 * The share of new traces sampled when `OTEL_TRACES_SAMPLER_ARG` is unset: every trace in
 * development (one request is one trace to look at), one in ten with NODE_ENV=production.
 */
export const DEFAULT_SAMPLE_RATIO = { development: 1, production: 0.1 } as const;

/** The instrumentation scope of the mongodb driver's spans: each is one round trip. */
const MONGODB_SCOPE = '@opentelemetry/instrumentation-mongodb';

/** Paths whose requests are not traced: probes and scrapes, many and uninteresting. */
const UNTRACED_PATHS = new Set(['/livez', '/readyz', '/health', '/metrics']);

/** Protocols of the OTLP trace exporter (`OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL`). */
export const OtlpProtocol = { Json: 'http/json', Protobuf: 'http/protobuf', Grpc: 'grpc' } as const;
export type OtlpProtocol = (typeof OtlpProtocol)[keyof typeof OtlpProtocol];

/**
 * Whether `env` asks for traces: an OTLP endpoint (`OTEL_EXPORTER_OTLP_ENDPOINT` or
 * `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) or an `OTEL_TRACES_EXPORTER` other than `none`,
 * and not `OTEL_SDK_DISABLED=true`. With none of them, tracing stays off.
 */
export function tracingRequested(env: NodeJS.ProcessEnv): boolean {
  if (env.OTEL_SDK_DISABLED?.trim().toLowerCase() === 'true') return false;
  const exporters = (env.OTEL_TRACES_EXPORTER ?? '')
    .split(',')
    .map((name) => name.trim())
    .filter(Boolean);
  if (exporters.length > 0) return exporters.some((name) => name !== 'none');
  return Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT);
}

/** The OTLP protocol `env` names for traces. @default http/protobuf (the SDK's default) */
export function otlpProtocol(env: NodeJS.ProcessEnv): OtlpProtocol {
  const named = (env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL || env.OTEL_EXPORTER_OTLP_PROTOCOL || '')
    .trim()
    .toLowerCase();
  const protocols = Object.values(OtlpProtocol) as string[];
  if (named === '') return OtlpProtocol.Protobuf;
  if (!protocols.includes(named)) {
    throw new Error(
      `invalid OTEL_EXPORTER_OTLP_PROTOCOL=${JSON.stringify(named)}: must be one of ${protocols.join(', ')}`,
    );
  }
  return named as OtlpProtocol;
}

/** Tracing as started: flush and stop it before the process exits. */
export interface Tracing {
  /** What was configured, for the start-up log line. */
  readonly description: string;
  /** Exports what is buffered and stops the SDK. */
  shutdown(): Promise<void>;
}

/**
 * Starts tracing when `env` asks for it (see `tracingRequested`); resolves undefined
 * otherwise. Registers import-in-the-middle's loader hook (Node's `module.register`) for
 * exactly the modules the instrumentations patch, so ESM imports of `node:http` and
 * `mongodb` made after this resolves are instrumented, under tsx and in `dist/` alike.
 *
 * Sampling: `OTEL_TRACES_SAMPLER` when set, as the SDK reads it; otherwise parent-based,
 * new traces sampled at `OTEL_TRACES_SAMPLER_ARG` (default `DEFAULT_SAMPLE_RATIO`), and a
 * span that starts a trace of its own for a commit (projection, live push) sampled
 * when the request that made the commit was, and only then (see `LinkedTraceSampler`).
 */
export async function startTracing(
  env: NodeJS.ProcessEnv = process.env,
): Promise<Tracing | undefined> {
  if (!tracingRequested(env)) return undefined;
  const { register } = await import('node:module');
  const { createAddHookMessageChannel } = await import('import-in-the-middle');
  const { registerOptions, waitForAllMessagesAcknowledged } = createAddHookMessageChannel();
  register('import-in-the-middle/hook.mjs', import.meta.url, registerOptions);

  const [
    { NodeSDK },
    { HttpInstrumentation },
    { MongoDBInstrumentation },
    sdkTrace,
    { corkboardContextManager },
    { LinkedTraceSampler },
  ] = await Promise.all([
    import('@opentelemetry/sdk-node'),
    import('@opentelemetry/instrumentation-http'),
    import('@opentelemetry/instrumentation-mongodb'),
    import('@opentelemetry/sdk-trace'),
    import('./contextManager.js'),
    import('./sampler.js'),
  ]);
  const explicitSampler = Boolean(env.OTEL_TRACES_SAMPLER?.trim());
  const argument = Number(env.OTEL_TRACES_SAMPLER_ARG);
  const ratio =
    env.OTEL_TRACES_SAMPLER_ARG?.trim() && argument >= 0 && argument <= 1
      ? argument
      : DEFAULT_SAMPLE_RATIO[env.NODE_ENV === 'production' ? 'production' : 'development'];
  const sampler = explicitSampler
    ? undefined
    : new sdkTrace.ParentBasedSampler({
        root: new LinkedTraceSampler(new sdkTrace.TraceIdRatioBasedSampler(ratio)),
      });

  // Async context only while a sampled trace's work that needs it is recorded (see
  // `corkboardContextManager`); the SDK's own manager with a sampler of the SDK's (it may
  // start a trace anywhere).
  const contextManager = sampler ? corkboardContextManager() : undefined;

  /** Counts each database command under an append span as one of its round trips. */
  const roundTrips: SpanProcessor = {
    onStart(span: Span, parent: Context) {
      if (span.instrumentationScope.name !== MONGODB_SCOPE) return;
      const append = trace.getSpan(parent);
      if (append) countRoundTrip(append);
    },
    onEnd() {},
    forceFlush: () => Promise.resolve(),
    shutdown: () => Promise.resolve(),
  };

  const exporters = (env.OTEL_TRACES_EXPORTER ?? '').trim();
  const otlpOnly = exporters === '' || exporters === 'otlp';
  const protocol = otlpProtocol(env);
  const spanProcessors = otlpOnly
    ? [
        roundTrips,
        ...(contextManager ? [contextManager.spanProcessor] : []),
        new sdkTrace.BatchSpanProcessor({ exporter: await otlpExporter(protocol) }),
      ]
    : undefined;

  const sdk = new NodeSDK({
    ...(!env.OTEL_SERVICE_NAME && { serviceName: 'corkboard' }),
    instrumentations: [
      new HttpInstrumentation({
        ignoreIncomingRequestHook: (request) =>
          UNTRACED_PATHS.has((request.url ?? '/').split('?', 1)[0]!) ||
          (sampler !== undefined && !traceRequest(request.headers.traceparent, ratio)),
        requestHook: rememberRequestSpan,
        // The server's requests are what is traced; its own outgoing ones (the exporter's,
        // an OIDC provider's keys) are not.
        disableOutgoingRequestInstrumentation: true,
      }),
      new MongoDBInstrumentation({ requireParentSpan: true }),
    ],
    ...(sampler && { sampler }),
    ...(contextManager && spanProcessors && { contextManager }),
    ...(spanProcessors && { spanProcessors }),
    // Traces only: /metrics serves the metrics, stdout the logs.
    metricReaders: [],
    logRecordProcessors: [],
  });
  sdk.start();
  // With Corkboard's sampler, a child span is recorded under a sampled parent only.
  markTracingStarted({ childrenNeedSampledParent: sampler !== undefined });
  // The loader has the instrumented modules' names before anything imports them.
  await waitForAllMessagesAcknowledged();
  const sampling = explicitSampler
    ? `${env.OTEL_TRACES_SAMPLER} sampler`
    : `parent-based sampling of ${ratio} of new traces`;
  return {
    description: `${otlpOnly ? `OTLP ${protocol}` : exporters} traces, ${sampling}`,
    shutdown: () => sdk.shutdown(),
  };
}

/**
 * Whether to trace an HTTP request, decided before the http instrumentation does any work
 * for it (it computes the attributes of and starts a span for every request it does not
 * ignore, sampled or not; that alone cost more than the 5 % budget on small queries): as
 * its caller's `traceparent` says when it carries a valid one (parent-based), otherwise
 * for a `ratio` share of requests.
 */
export function traceRequest(traceparent: string | string[] | undefined, ratio: number): boolean {
  const flags =
    typeof traceparent === 'string' ? TRACEPARENT.exec(traceparent.trim())?.[1] : undefined;
  if (flags !== undefined) return (Number.parseInt(flags, 16) & 1) === 1;
  return Math.random() < ratio;
}

/** A W3C traceparent of version 00 (or a later one, read as 00): its flags. */
const TRACEPARENT =
  /^(?!ff)[\da-f]{2}-(?!0{32})[\da-f]{32}-(?!0{16})[\da-f]{16}-([\da-f]{2})(?:-.*)?$/;

/** The OTLP trace exporter of `protocol`; it reads its endpoint, headers and timeout from env. */
async function otlpExporter(protocol: OtlpProtocol) {
  switch (protocol) {
    case OtlpProtocol.Json:
      return new (await import('@opentelemetry/exporter-trace-otlp-http')).OTLPTraceExporter();
    case OtlpProtocol.Protobuf:
      return new (await import('@opentelemetry/exporter-trace-otlp-proto')).OTLPTraceExporter();
    case OtlpProtocol.Grpc:
      return new (await import('@opentelemetry/exporter-trace-otlp-grpc')).OTLPTraceExporter();
    default: {
      const unknown: never = protocol;
      throw new Error(`unknown OTLP protocol ${String(unknown)}`);
    }
  }
}
