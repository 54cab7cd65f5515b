import { getDocumentString } from '@envelop/core';
import {
  AttributeName,
  getCurrentOtelContext,
  setCurrentOtelContext,
  useOpenTelemetry,
} from '@envelop/opentelemetry';
import { SpanKind, trace, type Context } from '@opentelemetry/api';
import { BREAK, print, visit, type DocumentNode } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { requestContextOf, tracingStarted } from './spans.js';

/**
 * envelop's OpenTelemetry plugin (a span per GraphQL execution and subscription, named
 * `<type>.<operation name>`, a child of the HTTP request's span) when tracing is on; none
 * otherwise, so an untraced server does no per-operation tracing work at all. Neither
 * resolvers (no span per field) nor variables nor results are recorded (they hold user
 * data); the document is, unless it has inline arguments (see `documentAttribute`).
 *
 * An operation of an HTTP request that is not traced (not sampled) skips the plugin
 * altogether; one over a websocket starts a trace of its own, sampled as new traces are.
 * A traced query's or mutation's span is the explicit parent of Corkboard's spans of its
 * work (see `operationTraceOf`).
 */
export function graphqlTracingPlugins(): Plugin[] {
  if (!tracingStarted()) return [];
  const plugin = useOpenTelemetry(
    // `document: false`: the plugin would look through the whole document for inline
    // arguments on every traced execution; `documentAttribute` does it once per document.
    { resolvers: false, variables: false, result: false, document: false },
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
        const operation = getCurrentOtelContext(contextValue);
        const document = documentAttribute(payload.args.document as DocumentNode);
        if (document !== undefined) {
          trace
            .getSpan(operation)
            ?.setAttribute(AttributeName.EXECUTION_OPERATION_DOCUMENT, document);
        }
        operations.set(contextValue, operation);
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

/** The document attribute of each document executed so far (null: not recorded). */
const documentAttributes = new WeakMap<DocumentNode, string | null>();

/**
 * The text of `document` for its operation span's `graphql.execute.document`, as
 * envelop's plugin records it (variables are not recorded, so neither is a document with
 * an inline argument: its values would be user data), or undefined for such a document.
 * Looked up once per document (yoga hands out the same parsed document for the same
 * query text), not on every traced execution.
 */
export function documentAttribute(document: DocumentNode): string | undefined {
  let text = documentAttributes.get(document);
  if (text === undefined) {
    text = hasInlineArgument(document) ? null : getDocumentString(document, print);
    documentAttributes.set(document, text);
  }
  return text ?? undefined;
}

/** Whether `document` holds a literal argument value anywhere (envelop's own check). */
function hasInlineArgument(document: DocumentNode): boolean {
  let seen = false;
  const leave = () => {
    seen = true;
    return BREAK;
  };
  visit(document, {
    StringValue: { leave },
    BooleanValue: { leave },
    FloatValue: { leave },
    EnumValue: { leave },
    IntValue: { leave },
  });
  return seen;
}
