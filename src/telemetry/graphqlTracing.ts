import {
  getCurrentOtelContext,
  setCurrentOtelContext,
  useOpenTelemetry,
} from '@envelop/opentelemetry';
import { SpanKind, trace, type Context } from '@opentelemetry/api';
import type { Plugin } from 'graphql-yoga';
import { requestContextOf, tracingStarted } from './spans.js';

/**
 * envelop's OpenTelemetry plugin (a span per GraphQL execution and subscription, named
 * `<type>.<operation name>`, a child of the HTTP request's span) when tracing is on; none
 * otherwise, so an untraced server does no per-operation tracing work at all. Neither
 * resolvers (no span per field) nor variables nor results are recorded (they hold user
 * data); the document is, unless it has inline arguments.
 *
 * An operation of an HTTP request that is not traced (not sampled) skips the plugin
 * altogether; one over a websocket starts a trace of its own, sampled as new traces are.
 * A traced query's or mutation's span is the explicit parent of Corkboard's spans of its
 * work (see `operationTraceOf`).
 */
export function graphqlTracingPlugins(): Plugin[] {
  if (!tracingStarted()) return [];
  const plugin = useOpenTelemetry(
    { resolvers: false, variables: false, result: false },
    trace.getTracerProvider(),
    SpanKind.INTERNAL,
    {},
    'corkboard-graphql',
  ) as Plugin;
  /**
   * Whether to trace the operation of `contextValue`: over HTTP when its request is traced
   * (then its span is made the operation's parent, whatever the active context is after
   * the request's body was read), always over a websocket.
   */
  const traced = (contextValue: unknown): boolean => {
    const request = (contextValue as { req?: object } | null)?.req;
    if (!request) return true;
    const context = requestContextOf(request);
    if (!context) return false;
    setCurrentOtelContext(contextValue, context);
    return true;
  };
  return [
    {
      onExecute: (payload) => {
        const { contextValue } = payload.args;
        if (!traced(contextValue)) return undefined;
        const hooks = plugin.onExecute?.(payload);
        operations.set(contextValue, getCurrentOtelContext(contextValue));
        return hooks;
      },
      onSubscribe: (payload) =>
        traced(payload.args.contextValue) ? plugin.onSubscribe?.(payload) : undefined,
    },
  ];
}

/** The context of each traced query's or mutation's span, by its GraphQL context value. */
const operations = new WeakMap<object, Context>();

/**
 * The context of the span of the operation whose GraphQL context is `contextValue`, to
 * give Corkboard's spans of its work (the command, the read-your-writes wait) their parent
 * explicitly; undefined when the operation is not traced.
 */
export function operationTraceOf(contextValue: object): Context | undefined {
  return operations.get(contextValue);
}
