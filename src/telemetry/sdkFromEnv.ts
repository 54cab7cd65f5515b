import { diag, type TextMapPropagator } from '@opentelemetry/api';
import type { Resource, ResourceDetector } from '@opentelemetry/resources';
import type { Sampler, SpanExporter, SpanLimits, SpanProcessor } from '@opentelemetry/sdk-trace';

/**
 * The parts of the OpenTelemetry trace SDK that the standard `OTEL_*` variables configure,
 * read as the Node SDK (`@opentelemetry/sdk-node`) reads them, each module loaded only
 * when a variable names it: the Node SDK loads every exporter of traces, metrics and logs
 * (gRPC and protobuf included) and the metrics and logs SDKs at start, which a server that
 * exports traces only would carry (and garbage-collect) for its whole life.
 */

/** The trimmed value of `name` in `env`; undefined when unset or blank. */
function stringFrom(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const value = env[name]?.trim();
  return value ? value : undefined;
}

/** The comma-separated values of `name` in `env`, trimmed, blanks dropped; undefined when unset. */
export function listFrom(env: NodeJS.ProcessEnv, name: string): string[] | undefined {
  const value = stringFrom(env, name);
  return value
    ?.split(',')
    .map((item) => item.trim())
    .filter(Boolean);
}

/** The number `name` holds in `env`; undefined when unset or not a number (warned). */
function numberFrom(env: NodeJS.ProcessEnv, name: string): number | undefined {
  const value = stringFrom(env, name);
  if (value === undefined) return undefined;
  const number = Number(value);
  if (Number.isNaN(number)) {
    diag.warn(`${name} is not a number: ${JSON.stringify(value)}, using the default`);
    return undefined;
  }
  return number;
}

/** A positive number `name` holds in `env`; undefined (the default) otherwise. */
function positiveFrom(env: NodeJS.ProcessEnv, name: string): number | undefined {
  const number = numberFrom(env, name);
  if (number !== undefined && number <= 0) {
    diag.warn(`${name} (${number}) must be greater than 0, using the default`);
    return undefined;
  }
  return number;
}

/** The values of `OTEL_TRACES_SAMPLER`. */
export const SamplerName = {
  AlwaysOn: 'always_on',
  AlwaysOff: 'always_off',
  TraceIdRatio: 'traceidratio',
  ParentBasedAlwaysOn: 'parentbased_always_on',
  ParentBasedAlwaysOff: 'parentbased_always_off',
  ParentBasedTraceIdRatio: 'parentbased_traceidratio',
} as const;
export type SamplerName = (typeof SamplerName)[keyof typeof SamplerName];

/**
 * The sampler `OTEL_TRACES_SAMPLER` names (with `OTEL_TRACES_SAMPLER_ARG`, default 1, for
 * the ratio ones); undefined when it is unset or unknown (the SDK's default then:
 * parent-based, every new trace).
 */
export async function samplerFromEnv(env: NodeJS.ProcessEnv): Promise<Sampler | undefined> {
  const name = stringFrom(env, 'OTEL_TRACES_SAMPLER');
  if (name === undefined) return undefined;
  if (!(Object.values(SamplerName) as string[]).includes(name)) {
    diag.error(`unknown OTEL_TRACES_SAMPLER value "${name}", using the default`);
    return undefined;
  }
  const sdk = await import('@opentelemetry/sdk-trace');
  const ratio = () => {
    const value = numberFrom(env, 'OTEL_TRACES_SAMPLER_ARG');
    return value !== undefined && value >= 0 && value <= 1 ? value : 1;
  };
  const sampler = name as SamplerName;
  switch (sampler) {
    case SamplerName.AlwaysOn:
      return new sdk.AlwaysOnSampler();
    case SamplerName.AlwaysOff:
      return new sdk.AlwaysOffSampler();
    case SamplerName.TraceIdRatio:
      return new sdk.TraceIdRatioBasedSampler(ratio());
    case SamplerName.ParentBasedAlwaysOn:
      return new sdk.ParentBasedSampler({ root: new sdk.AlwaysOnSampler() });
    case SamplerName.ParentBasedAlwaysOff:
      return new sdk.ParentBasedSampler({ root: new sdk.AlwaysOffSampler() });
    case SamplerName.ParentBasedTraceIdRatio:
      return new sdk.ParentBasedSampler({ root: new sdk.TraceIdRatioBasedSampler(ratio()) });
    default: {
      const unknown: never = sampler;
      throw new Error(`unknown sampler ${String(unknown)}`);
    }
  }
}

/** Span limits from `OTEL_SPAN_*` and `OTEL_ATTRIBUTE_*` (unset: the SDK's defaults). */
export function spanLimitsFromEnv(env: NodeJS.ProcessEnv): SpanLimits {
  return {
    attributeCountLimit:
      numberFrom(env, 'OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT') ??
      numberFrom(env, 'OTEL_ATTRIBUTE_COUNT_LIMIT'),
    attributeValueLengthLimit:
      numberFrom(env, 'OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT') ??
      numberFrom(env, 'OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT'),
    eventCountLimit: numberFrom(env, 'OTEL_SPAN_EVENT_COUNT_LIMIT'),
    linkCountLimit: numberFrom(env, 'OTEL_SPAN_LINK_COUNT_LIMIT'),
    attributePerEventCountLimit: numberFrom(env, 'OTEL_SPAN_ATTRIBUTE_PER_EVENT_COUNT_LIMIT'),
    attributePerLinkCountLimit: numberFrom(env, 'OTEL_SPAN_ATTRIBUTE_PER_LINK_COUNT_LIMIT'),
  };
}

/** Protocols of the OTLP trace exporter (`OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL`). */
export const OtlpProtocol = { Json: 'http/json', Protobuf: 'http/protobuf', Grpc: 'grpc' } as const;
export type OtlpProtocol = (typeof OtlpProtocol)[keyof typeof OtlpProtocol];

/** The OTLP protocol `env` names for traces. @default http/protobuf (the SDK's default) */
export function otlpProtocol(env: NodeJS.ProcessEnv): OtlpProtocol {
  const named = (
    stringFrom(env, 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL') ??
    stringFrom(env, 'OTEL_EXPORTER_OTLP_PROTOCOL') ??
    ''
  ).toLowerCase();
  const protocols = Object.values(OtlpProtocol) as string[];
  if (named === '') return OtlpProtocol.Protobuf;
  if (!protocols.includes(named)) {
    throw new Error(
      `invalid OTEL_EXPORTER_OTLP_PROTOCOL=${JSON.stringify(named)}: must be one of ${protocols.join(', ')}`,
    );
  }
  return named as OtlpProtocol;
}

/** The values of `OTEL_TRACES_EXPORTER` (besides `none`). */
export const ExporterName = { Otlp: 'otlp', Zipkin: 'zipkin', Console: 'console' } as const;
export type ExporterName = (typeof ExporterName)[keyof typeof ExporterName];

/**
 * The exporters `OTEL_TRACES_EXPORTER` names (default `otlp`; `none` with others is
 * `otlp`, as the SDK reads it), unknown names warned and skipped.
 */
export function exporterNames(env: NodeJS.ProcessEnv): ExporterName[] {
  const named = [...new Set(listFrom(env, 'OTEL_TRACES_EXPORTER') ?? [])];
  if (named.length === 0 || named.includes('none')) return [ExporterName.Otlp];
  const known = Object.values(ExporterName) as string[];
  return named.filter((name): name is ExporterName => {
    if (known.includes(name)) return true;
    diag.warn(`unknown OTEL_TRACES_EXPORTER value "${name}", skipped`);
    return false;
  });
}

/**
 * One span processor per exporter of `names`, only those exporters' modules loaded: a
 * batch processor (`OTEL_BSP_*`) for each but the console's (a simple one, as the SDK
 * does). Each OTLP and Zipkin exporter reads its endpoint, headers and timeout from env.
 */
export async function spanProcessorsFor(
  names: readonly ExporterName[],
  env: NodeJS.ProcessEnv,
): Promise<SpanProcessor[]> {
  const sdk = await import('@opentelemetry/sdk-trace');
  const batched = (exporter: SpanExporter) =>
    new sdk.BatchSpanProcessor({
      exporter,
      maxQueueSize: positiveFrom(env, 'OTEL_BSP_MAX_QUEUE_SIZE'),
      scheduledDelayMillis: positiveFrom(env, 'OTEL_BSP_SCHEDULE_DELAY'),
      exportTimeoutMillis: positiveFrom(env, 'OTEL_BSP_EXPORT_TIMEOUT'),
      maxExportBatchSize: positiveFrom(env, 'OTEL_BSP_MAX_EXPORT_BATCH_SIZE'),
    });
  return Promise.all(
    names.map(async (name) => {
      switch (name) {
        case ExporterName.Otlp:
          return batched(await otlpExporter(otlpProtocol(env)));
        case ExporterName.Zipkin:
          return batched(new (await import('@opentelemetry/exporter-zipkin')).ZipkinExporter());
        case ExporterName.Console:
          return new sdk.SimpleSpanProcessor({ exporter: new sdk.ConsoleSpanExporter() });
        default: {
          const unknown: never = name;
          throw new Error(`unknown exporter ${String(unknown)}`);
        }
      }
    }),
  );
}

/** The OTLP trace exporter of `protocol`, its module alone loaded. */
async function otlpExporter(protocol: OtlpProtocol): Promise<SpanExporter> {
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

/**
 * The propagator `OTEL_PROPAGATORS` names (`tracecontext`, `baggage`, `b3`, `b3multi`,
 * `jaeger`); default W3C trace context and baggage; null for `none` (or no known name):
 * none registered.
 */
export async function propagatorFromEnv(env: NodeJS.ProcessEnv): Promise<TextMapPropagator | null> {
  const core = await import('@opentelemetry/core');
  const named = [...new Set(listFrom(env, 'OTEL_PROPAGATORS') ?? ['tracecontext', 'baggage'])];
  if (named.includes('none')) return null;
  const propagators: TextMapPropagator[] = [];
  for (const name of named) {
    if (name === 'tracecontext') propagators.push(new core.W3CTraceContextPropagator());
    else if (name === 'baggage') propagators.push(new core.W3CBaggagePropagator());
    else if (name === 'b3' || name === 'b3multi') {
      const b3 = await import('@opentelemetry/propagator-b3');
      propagators.push(
        new b3.B3Propagator(
          name === 'b3multi' ? { injectEncoding: b3.B3InjectEncoding.MULTI_HEADER } : {},
        ),
      );
    } else if (name === 'jaeger') {
      propagators.push(new (await import('@opentelemetry/propagator-jaeger')).JaegerPropagator());
    } else diag.warn(`unknown OTEL_PROPAGATORS value "${name}", skipped`);
  }
  if (propagators.length === 0) return null;
  return propagators.length === 1 ? propagators[0]! : new core.CompositePropagator({ propagators });
}

/**
 * The resource of the traces: the SDK's own attributes, `service.name` `defaultServiceName`,
 * then what the detectors `OTEL_NODE_RESOURCE_DETECTORS` names find (default `env`,
 * `process`, `host`, as the Node SDK; `all` adds `os` and `serviceinstance`; `none`), the
 * later taking precedence: `OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES` (the `env`
 * detector) over the default name.
 */
export async function resourceFromEnv(
  env: NodeJS.ProcessEnv,
  defaultServiceName: string,
): Promise<Resource> {
  const resources = await import('@opentelemetry/resources');
  const detectors = new Map<string, ResourceDetector>([
    // In the Node SDK's order for `all`: env last, taking precedence.
    ['host', resources.hostDetector],
    ['os', resources.osDetector],
    ['serviceinstance', resources.serviceInstanceIdDetector],
    ['process', resources.processDetector],
    ['env', resources.envDetector],
  ]);
  const named = listFrom(env, 'OTEL_NODE_RESOURCE_DETECTORS') ?? ['env', 'process', 'host'];
  const chosen = named.includes('all')
    ? [...detectors.values()]
    : named.includes('none')
      ? []
      : named.flatMap((name) => {
          const detector = detectors.get(name);
          if (!detector) diag.warn(`unknown OTEL_NODE_RESOURCE_DETECTORS value "${name}", skipped`);
          return detector ? [detector] : [];
        });
  return resources
    .defaultResource()
    .merge(resources.resourceFromAttributes({ 'service.name': defaultServiceName }))
    .merge(resources.detectResources({ detectors: chosen }));
}
