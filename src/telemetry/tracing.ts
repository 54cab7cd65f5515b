import {
  context,
  diag,
  DiagConsoleLogger,
  propagation,
  trace,
  type Context,
} from '@opentelemetry/api';
import type { Span, SpanProcessor } from '@opentelemetry/sdk-trace';
import { countRoundTrip, markTracingStarted, rememberRequestSpan } from './spans.js';
import { exporterNames, listFrom, otlpProtocol } from './sdkFromEnv.js';

export { OtlpProtocol, otlpProtocol } from './sdkFromEnv.js';

/**
 * Starting OpenTelemetry tracing from the standard `OTEL_*` variables, before the app is
 * imported, so the http and mongodb instrumentations patch those modules as the app loads
 * them. Nothing of the SDK is loaded when tracing is off; when it is on, the trace SDK,
 * the instrumentations that apply and the exporters named, nothing more (see
 * `sdkFromEnv.ts`).
 */

/**
 * The share of new traces sampled when `OTEL_TRACES_SAMPLER_ARG` is unset: every trace in
 * development (one request is one trace to look at), one in ten with NODE_ENV=production.
 */
export const DEFAULT_SAMPLE_RATIO = { development: 1, production: 0.1 } as const;

/** The service name of the traces unless `OTEL_SERVICE_NAME` (or the resource attributes) say. */
export const DEFAULT_SERVICE_NAME = 'corkboard';

/** The instrumentation scope of the mongodb driver's spans: each is one round trip. */
const MONGODB_SCOPE = '@opentelemetry/instrumentation-mongodb';

/** Paths whose requests are not traced: probes and scrapes, many and uninteresting. */
const UNTRACED_PATHS = new Set(['/livez', '/readyz', '/health', '/metrics']);

/**
 * Whether `env` asks for traces: an OTLP endpoint (`OTEL_EXPORTER_OTLP_ENDPOINT` or
 * `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) or an `OTEL_TRACES_EXPORTER` other than `none`,
 * and not `OTEL_SDK_DISABLED=true`. With none of them, tracing stays off.
 */
export function tracingRequested(env: NodeJS.ProcessEnv): boolean {
  if (env.OTEL_SDK_DISABLED?.trim().toLowerCase() === 'true') return false;
  const exporters = listFrom(env, 'OTEL_TRACES_EXPORTER') ?? [];
  if (exporters.length > 0) return exporters.some((name) => name !== 'none');
  return Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT);
}

/** Tracing as started: flush and stop it before the process exits. */
export interface Tracing {
  /** What was configured, for the start-up log line. */
  readonly description: string;
  /** Exports what is buffered and stops the SDK. */
  shutdown(): Promise<void>;
}

/** What the process will use, which decides the instrumentations loaded. */
export interface TracingOptions {
  /**
   * Whether the process talks to MongoDB (any store but `memory`): only then is the
   * mongodb instrumentation loaded and its module hooked. @default true
   */
  mongodb?: boolean;
}

/**
 * Starts tracing when `env` asks for it (see `tracingRequested`); resolves undefined
 * otherwise. Registers import-in-the-middle's loader hook (Node's `module.register`) for
 * exactly the modules the instrumentations patch, so ESM imports of `node:http` and
 * `mongodb` made after this resolves are instrumented, under tsx and in `dist/` alike.
 *
 * What starts is what the Node SDK (`@opentelemetry/sdk-node`) would start for traces from
 * the same variables (exporters of `OTEL_TRACES_EXPORTER` and the OTLP ones' variables,
 * `OTEL_BSP_*`, `OTEL_SPAN_*` limits, `OTEL_PROPAGATORS`, `OTEL_NODE_RESOURCE_DETECTORS`,
 * `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_LOG_LEVEL`), built from the trace
 * SDK's parts so that only the modules those variables name are loaded.
 *
 * Sampling: `OTEL_TRACES_SAMPLER` when set, as the SDK reads it; otherwise parent-based,
 * new traces sampled at `OTEL_TRACES_SAMPLER_ARG` (default `DEFAULT_SAMPLE_RATIO`), and a
 * span that starts a trace of its own for a commit (projection, live push) sampled
 * when the request that made the commit was, and only then (see `LinkedTraceSampler`).
 */
export async function startTracing(
  env: NodeJS.ProcessEnv = process.env,
  options: TracingOptions = {},
): Promise<Tracing | undefined> {
  if (!tracingRequested(env)) return undefined;
  const exporters = exporterNames(env);
  const protocol = otlpProtocol(env);
  const logLevel = env.OTEL_LOG_LEVEL?.trim();
  if (logLevel) {
    const { diagLogLevelFromString } = await import('@opentelemetry/core');
    diag.setLogger(new DiagConsoleLogger(), { logLevel: diagLogLevelFromString(logLevel) });
  }
  const { register } = await import('node:module');
  const { createAddHookMessageChannel } = await import('import-in-the-middle');
  const { registerOptions, waitForAllMessagesAcknowledged } = createAddHookMessageChannel();
  register('import-in-the-middle/hook.mjs', import.meta.url, registerOptions);

  const mongodb = options.mongodb ?? true;
  const [
    sdkTrace,
    fromEnv,
    { registerInstrumentations },
    { HttpInstrumentation },
    mongodbInstrumentation,
    { corkboardContextManager },
    { LinkedTraceSampler },
  ] = await Promise.all([
    import('@opentelemetry/sdk-trace'),
    import('./sdkFromEnv.js'),
    import('@opentelemetry/instrumentation'),
    import('@opentelemetry/instrumentation-http'),
    mongodb ? import('@opentelemetry/instrumentation-mongodb') : undefined,
    import('./contextManager.js'),
    import('./sampler.js'),
  ]);
  const explicitSampler = await fromEnv.samplerFromEnv(env);
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
  const sampledContext = sampler ? corkboardContextManager() : undefined;
  const contextManager =
    sampledContext ??
    new (await import('@opentelemetry/context-async-hooks')).AsyncLocalStorageContextManager();

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

  // As the Node SDK starts: instrumentations, context manager, propagator, tracer provider.
  registerInstrumentations({
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
      ...(mongodbInstrumentation
        ? [new mongodbInstrumentation.MongoDBInstrumentation({ requireParentSpan: true })]
        : []),
    ],
  });
  context.setGlobalContextManager(contextManager.enable());
  const propagator = await fromEnv.propagatorFromEnv(env);
  if (propagator) propagation.setGlobalPropagator(propagator);
  const provider = new sdkTrace.TracerProvider({
    sampler: sampler ?? explicitSampler,
    spanLimits: fromEnv.spanLimitsFromEnv(env),
    resource: await fromEnv.resourceFromEnv(env, DEFAULT_SERVICE_NAME),
    spanProcessors: [
      roundTrips,
      ...(sampledContext ? [sampledContext.spanProcessor] : []),
      ...(await fromEnv.spanProcessorsFor(exporters, env)),
    ],
  });
  trace.setGlobalTracerProvider(provider);
  // With Corkboard's sampler, a child span is recorded under a sampled parent only.
  markTracingStarted({ childrenNeedSampledParent: sampler !== undefined });
  // The loader has the instrumented modules' names before anything imports them.
  await waitForAllMessagesAcknowledged();
  const sampling = explicitSampler
    ? `${env.OTEL_TRACES_SAMPLER!.trim()} sampler`
    : `parent-based sampling of ${ratio} of new traces`;
  const exported = exporters
    .map((name) => (name === 'otlp' ? `OTLP ${protocol}` : name))
    .join(' and ');
  return {
    description: `${exported} traces, ${sampling}`,
    shutdown: () => provider.shutdown(),
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
