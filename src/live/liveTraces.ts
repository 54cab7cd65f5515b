import { context, ROOT_CONTEXT, trace, type Span } from '@opentelemetry/api';
import type { ChangeLogEntry } from '../projector/types.js';
import { Attr, linksTo, mayBeRecorded, SpanName, tracer } from '../telemetry/spans.js';
import type { BoardChangeMessage } from './boardChanges.js';
import type { SubscriptionGroups } from './SubscriptionGroups.js';

/**
 * The span of one change's live push on this instance: from the hub taking the entry to
 * the last group execution it started, linked to the trace of the commit's request (the
 * entry's `traceContext`), with the group executions, the frames handed out and the slow
 * consumers dropped. One span per change and instance, never one per frame.
 */
export class PushTrace {
  readonly #executions: Promise<unknown>[] = [];
  dropped = 0;

  constructor(
    private readonly span: Span,
    private readonly done: () => void,
  ) {}

  /**
   * Runs `work` with the push span active for its synchronous part (entered without async
   * context: see `corkboardContextManager`), so a log line written there carries its ids.
   */
  run<T>(work: () => T): T {
    return context.with(trace.setSpan(ROOT_CONTEXT, this.span), work);
  }

  executed(settled: Promise<unknown>): void {
    this.#executions.push(settled);
  }

  /** The change was handed to every subscriber: ends the span once its executions settle. */
  finish(handedOut: number): void {
    this.done();
    const executions = this.#executions.length;
    this.span.setAttributes({
      [Attr.Groups]: executions,
      [Attr.Frames]: handedOut - this.dropped,
      [Attr.SlowConsumersDropped]: this.dropped,
    });
    void Promise.all(this.#executions).then(() => this.span.end());
  }
}

/** Push spans of the changes being fanned out now, found by cursor for the executions. */
export class PushTraces {
  readonly #open = new Map<number, PushTrace>();

  constructor(groups: SubscriptionGroups) {
    groups.onExecution = (event, settled) => {
      if (this.#open.size === 0) return;
      this.#open.get((event as BoardChangeMessage).cursor)?.executed(settled);
    };
  }

  /** A push span for `entry`, or undefined when it is not recorded (tracing off, unsampled). */
  begin(entry: ChangeLogEntry, subscribers: number, boards: number): PushTrace | undefined {
    const links = linksTo([entry.traceContext]);
    // A change of a mutation not sampled: no span at all (see `mayBeRecorded`).
    if (!mayBeRecorded(SpanName.Push, links)) return undefined;
    const span = tracer.startSpan(
      SpanName.Push,
      {
        root: true,
        links,
        attributes: {
          [Attr.Position]: entry.cursor,
          [Attr.Boards]: boards,
          'corkboard.live.subscribers': subscribers,
          ...(entry.operation !== null && { [Attr.Operation]: entry.operation }),
        },
      },
      ROOT_CONTEXT,
    );
    if (!span.isRecording()) return undefined;
    const pushed = new PushTrace(span, () => this.#open.delete(entry.cursor));
    this.#open.set(entry.cursor, pushed);
    return pushed;
  }
}

/** Open replay spans, by subscription (a subscription holds nothing for them itself). */
const replays = new WeakMap<object, { span: Span; entries: number }>();

/**
 * Marks a page of a subscription's replay from the change log: the first page opens the
 * replay's span (after `after`), every page adds its entries of the board; one span per
 * replay, however many pages.
 */
export function tracedReplayPage(subscription: object, after: number, entries: number): void {
  let replay = replays.get(subscription);
  if (!replay) {
    const span = tracer.startSpan(SpanName.Replay, {
      attributes: { [Attr.ReplayAfter]: after },
    });
    if (!span.isRecording()) return;
    replay = { span, entries: 0 };
    replays.set(subscription, replay);
  }
  replay.entries += entries;
}

/** Ends a subscription's replay span, if one is open (caught up, resynced or closed). */
export function endTracedReplay(subscription: object): void {
  const replay = replays.get(subscription);
  if (!replay) return;
  replays.delete(subscription);
  replay.span.setAttribute(Attr.ReplayEntries, replay.entries);
  replay.span.end();
}

/** One span for a resync message: the cursor could not be replayed from; `head` goes out instead. */
export function tracedResync(subscription: object, from: number, head: number): void {
  const parent = replays.get(subscription)?.span;
  const span = tracer.startSpan(
    SpanName.Resync,
    { attributes: { [Attr.ReplayAfter]: from, [Attr.ResyncHead]: head } },
    parent ? trace.setSpan(context.active(), parent) : context.active(),
  );
  span.end();
}
