import { useOpenTelemetry } from '@envelop/opentelemetry';
import { SpanKind, trace } from '@opentelemetry/api';
import type { Plugin } from 'graphql-yoga';
import { tracingStarted } from './spans.js';

/**
 * envelop's OpenTelemetry plugin (a span per GraphQL execution and subscription, named
 * `<type>.<operation name>`, a child of the HTTP request's span) when tracing is on; none
 * otherwise, so an untraced server does no per-operation tracing work at all. Neither
 * variables nor results are recorded (they hold user data); the document is, unless it
 * has inline arguments.
 */
export function graphqlTracingPlugins(): Plugin[] {
  if (!tracingStarted()) return [];
  return [
    useOpenTelemetry(
      { resolvers: false, variables: false, result: false },
      trace.getTracerProvider(),
      SpanKind.INTERNAL,
      {},
      'corkboard-graphql',
    ) as Plugin,
  ];
}
