import {
  context,
  INVALID_SPAN_CONTEXT,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  TraceFlags,
  type Attributes,
  type Context,
  type Link,
  type Span,
  type TextMapGetter,
  type TextMapSetter,
} from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import type { TraceContext } from '../eventstore/types.js';

/**
 * Corkboard's own spans, for the work no library instrumentation reaches: the command,
 * the append, the read-your-writes wait, the projector's work on a commit, the live push
 * of its change, and subscription replays and resyncs. Through the OpenTelemetry API
 * only: without an SDK (tracing off) every call here is a no-op of the API's.
 */

/** The instrumentation scope of these spans. */
export const TRACER_NAME = 'corkboard';

/** The names of Corkboard's own spans. */
export const SpanName = {
  /** A command: its attempts and how it ended. */
  Command: 'corkboard.command',
  /** One append to the event store: its position and round trips. */
  Append: 'corkboard.append',
  /** A mutation waiting until its commit is projected (read-your-writes). */
  ReadYourWrites: 'corkboard.read_your_writes',
  /** The projector applying one commit; linked to the trace that made the commit. */
  Project: 'corkboard.project',
  /** Pushing one commit's `BoardChange` to this instance's subscribers; linked likewise. */
  Push: 'corkboard.live.push',
  /** A subscription replaying the change log from its cursor. */
  Replay: 'corkboard.live.replay',
  /** A subscription told to resync (its cursor is older than the retained log). */
  Resync: 'corkboard.live.resync',
} as const;
export type SpanName = (typeof SpanName)[keyof typeof SpanName];

/**
 * Corkboard's spans that start a trace of their own (work for a commit or a
 * subscription, not for the request that happens to run it). The others are children
 * only: started with no span active, they are not recorded.
 */
export const ROOT_SPANS: ReadonlySet<string> = new Set<SpanName>([
  SpanName.Project,
  SpanName.Push,
  SpanName.Replay,
  SpanName.Resync,
]);

/**
 * Corkboard's spans that start a trace only for a sampled mutation: the work on a commit
 * (its projection, its live push), sampled when it links to the trace of a sampled
 * request, never on a ratio of its own (see `LinkedTraceSampler`). A commit of a request
 * not sampled thus costs no sampled work anywhere (a push sampled on its own would keep
 * async context on for a whole fan-out), and leaves no trace without the request it
 * came from.
 */
export const SAMPLED_BY_LINK_ONLY: ReadonlySet<string> = new Set<SpanName>([
  SpanName.Project,
  SpanName.Push,
]);

/** Attributes of Corkboard's own spans. */
export const Attr = {
  CommandName: 'corkboard.command.name',
  CommandAttempts: 'corkboard.command.attempts',
  CommandOutcome: 'corkboard.command.outcome',
  AppendStreams: 'corkboard.append.streams',
  AppendEvents: 'corkboard.append.events',
  AppendOutcome: 'corkboard.append.outcome',
  /** Commands the store's client sent during the append (its child database spans). */
  AppendRoundTrips: 'corkboard.append.round_trips',
  Position: 'corkboard.commit.position',
  Operation: 'corkboard.commit.operation',
  WaitOutcome: 'corkboard.read_your_writes.outcome',
  Projections: 'corkboard.project.projections',
  /** Commits one projection span covers: 1, or the commits of a catch-up batch. */
  ProjectCommits: 'corkboard.project.commits',
  /** The last position a catch-up batch's span covers (`Position` is its first). */
  ProjectLastPosition: 'corkboard.project.last_position',
  /** False on a catch-up batch's span when a failure had its commits applied one at a time. */
  ProjectBatchApplied: 'corkboard.project.batch_applied',
  /** Traces of a batch's commits left unlinked: past `MAX_SPAN_LINKS`. */
  LinksOmitted: 'corkboard.links_omitted',
  Invalidated: 'corkboard.change.invalidated',
  Boards: 'corkboard.change.boards',
  Groups: 'corkboard.live.groups',
  Frames: 'corkboard.live.frames',
  SlowConsumersDropped: 'corkboard.live.slow_consumers_dropped',
  ReplayAfter: 'corkboard.live.replay.after',
  ReplayEntries: 'corkboard.live.replay.entries',
  ResyncHead: 'corkboard.live.resync.head',
} as const;

/** How a command ended, as its span says. */
export const CommandOutcome = {
  Committed: 'committed',
  Merged: 'merged',
  Replayed: 'replayed',
  Conflict: 'conflict',
  Rejected: 'rejected',
  NothingToWrite: 'nothing_to_write',
} as const;
export type CommandOutcome = (typeof CommandOutcome)[keyof typeof CommandOutcome];

let sdkStarted = false;
/**
 * Whether Corkboard's sampler decides (see `markTracingStarted`): a child span (not one
 * of `ROOT_SPANS`) is recorded only under a sampled parent, and one of
 * `SAMPLED_BY_LINK_ONLY` only with a link to a sampled trace.
 */
let corkboardSampler = false;

/**
 * Records that an SDK was started (see `startTracing`): library instrumentation is added.
 * `childrenNeedSampledParent`: its sampler is Corkboard's (`LinkedTraceSampler` at the
 * root of a parent-based one): it records a child span of Corkboard's only under a sampled
 * parent (a child never starts a trace), and the work on a commit only when it links to a
 * sampled trace; so `inSpan` and `mayBeRecorded` need not ask it otherwise.
 */
export function markTracingStarted(options: { childrenNeedSampledParent: boolean }): void {
  sdkStarted = true;
  corkboardSampler = options.childrenNeedSampledParent;
}

/**
 * Whether a span of Corkboard's named `name` that starts a trace of its own (`root`), with
 * `links`, may be recorded: false when Corkboard's sampler is sure to leave it unrecorded
 * (the work on a commit of a request not sampled, see `SAMPLED_BY_LINK_ONLY`), so that no
 * span is started for it at all (no ids, no sampling decision, no context to enter); true
 * otherwise (the sampler decides).
 */
export function mayBeRecorded(name: SpanName, links: readonly Link[]): boolean {
  return (
    !corkboardSampler ||
    !SAMPLED_BY_LINK_ONLY.has(name) ||
    links.some((link) => (link.context.traceFlags & TraceFlags.SAMPLED) !== 0)
  );
}

/** Whether an OpenTelemetry SDK was started in this process. */
export function tracingStarted(): boolean {
  return sdkStarted;
}

/** The tracer of Corkboard's own spans (the API's proxy: it follows the SDK once started). */
export const tracer = trace.getTracer(TRACER_NAME);

const w3c = new W3CTraceContextPropagator();
const setter: TextMapSetter<Partial<TraceContext>> = {
  set: (carrier, key, value) => {
    if (key === 'traceparent' || key === 'tracestate') carrier[key] = value;
  },
};
const getter: TextMapGetter<TraceContext> = {
  get: (carrier, key) =>
    key === 'traceparent'
      ? carrier.traceparent
      : key === 'tracestate'
        ? carrier.tracestate
        : undefined,
  keys: (carrier) => Object.keys(carrier),
};

/**
 * The W3C trace context of the active span when it is sampled, to record on a commit so
 * that later work on the commit (projection, live push, on any instance) can link to it;
 * undefined otherwise, so an unsampled or untraced write records nothing.
 */
export function activeTraceContext(): TraceContext | undefined {
  const span = trace.getActiveSpan();
  if (!span || (span.spanContext().traceFlags & TraceFlags.SAMPLED) === 0) return undefined;
  const carrier: Partial<TraceContext> = {};
  w3c.inject(context.active(), carrier, setter);
  return carrier.traceparent ? (carrier as TraceContext) : undefined;
}

/**
 * The most links one span of ours carries (a catch-up batch's span links to its commits'
 * traces): well under the SDK's default limit of 128, so a span stays small to export.
 */
export const MAX_SPAN_LINKS = 32;

/**
 * Span links to the traces whose contexts are given (malformed or absent ones are
 * skipped), the first `MAX_SPAN_LINKS` of them.
 */
export function linksTo(contexts: readonly (TraceContext | undefined)[]): Link[] {
  const links: Link[] = [];
  for (const carried of contexts) {
    if (links.length === MAX_SPAN_LINKS) break;
    if (!carried || typeof carried.traceparent !== 'string') continue;
    const spanContext = trace.getSpanContext(w3c.extract(ROOT_CONTEXT, carried, getter));
    if (spanContext && trace.isSpanContextValid(spanContext)) links.push({ context: spanContext });
  }
  return links;
}

/**
 * Runs `work` in a new active span named `name`, ending it when `work` settles. A
 * rejection is recorded on the span (status ERROR) and passed on.
 *
 * `parent`: the context of the span's parent, given explicitly (a request's work keeps
 * no async context of its own: see `SampledContextManager`); the active one by default.
 * `root`: a new trace instead (work done for a commit, not for the request or loop that
 * happens to run it), with `links` to the traces it serves.
 */
export async function inSpan<T>(
  name: SpanName,
  options: {
    attributes?: Attributes;
    links?: Link[];
    parent?: Context | undefined;
    root?: boolean;
    kind?: SpanKind;
  },
  work: (span: Span) => Promise<T>,
): Promise<T> {
  const parent = options.root ? ROOT_CONTEXT : (options.parent ?? context.active());
  // The work of a request not sampled (or not traced), or on a commit of one: the sampler
  // would not record the span; no ids, no sampling decision, no context to enter for it.
  if (
    options.root ? !mayBeRecorded(name, options.links ?? []) : corkboardSampler && !sampled(parent)
  ) {
    return work(UNRECORDED);
  }
  return tracer.startActiveSpan(
    name,
    {
      kind: options.kind ?? SpanKind.INTERNAL,
      ...(options.attributes && { attributes: options.attributes }),
      ...(options.links && options.links.length > 0 && { links: options.links }),
      ...(options.root && { root: true }),
    },
    parent,
    async (span) => {
      try {
        return await work(span);
      } catch (error) {
        span.recordException(error instanceof Error ? error : String(error));
        span.setStatus({ code: SpanStatusCode.ERROR });
        throw error;
      } finally {
        span.end();
      }
    },
  );
}

/** The span `inSpan` gives work it does not record: no ids, every call a no-op. */
const UNRECORDED: Span = trace.wrapSpanContext(INVALID_SPAN_CONTEXT);

/** Whether `parent`'s span is sampled. */
function sampled(parent: Context): boolean {
  const span = trace.getSpan(parent);
  return span !== undefined && (span.spanContext().traceFlags & TraceFlags.SAMPLED) !== 0;
}

/** The names of envelop's GraphQL operation spans: `<type>.<operation name>`. */
export const OPERATION_SPAN_NAME = /^(query|mutation|subscription)\./;

/** The span of each HTTP request being traced, by request (see `requestContextOf`). */
const requestSpans = new WeakMap<object, Span>();

/** Records `span` as the span of `request` (the http instrumentation's request hook). */
export function rememberRequestSpan(span: Span, request: object): void {
  requestSpans.set(request, span);
}

/**
 * The context of `request`'s span, whatever the active context is now: the parent of the
 * GraphQL operation's span (the request's body is read before it runs, and an unsampled
 * request keeps no async context across that; see `SampledContextManager`).
 */
export function requestContextOf(request: object): Context | undefined {
  const span = requestSpans.get(request);
  return span ? trace.setSpan(ROOT_CONTEXT, span) : undefined;
}

/** The trace and span ids of the active span, for log lines; empty when there is none. */
export function activeLogIds(): { trace_id?: string; span_id?: string; trace_flags?: string } {
  const span = trace.getActiveSpan();
  if (!span) return {};
  const { traceId, spanId, traceFlags } = span.spanContext();
  if (!trace.isSpanContextValid(span.spanContext())) return {};
  return {
    trace_id: traceId,
    span_id: spanId,
    trace_flags: `0${traceFlags.toString(16)}`.slice(-2),
  };
}

/** Round trips so far of the append spans open now. */
const roundTrips = new WeakMap<Span, number>();

/** Makes `span` (an append's) count the database commands started under it; 0 so far. */
export function countRoundTripsOf(span: Span): void {
  if (!span.isRecording()) return;
  roundTrips.set(span, 0);
  span.setAttribute(Attr.AppendRoundTrips, 0);
}

/** One database command started under `parent`: a round trip, if `parent` counts them. */
export function countRoundTrip(parent: Span): void {
  const count = roundTrips.get(parent);
  if (count === undefined) return;
  roundTrips.set(parent, count + 1);
  parent.setAttribute(Attr.AppendRoundTrips, count + 1);
}
