import { AsyncLocalStorage } from 'node:async_hooks';
import { ROOT_CONTEXT, SpanKind, trace, TraceFlags, type Context } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import type { ReadableSpan, SpanProcessor } from '@opentelemetry/sdk-trace';
import { SpanName } from './spans.js';

/** What the manager looks at of a span. */
type SpanFacts = Pick<ReadableSpan, 'name' | 'kind' | 'spanContext'>;

/**
 * How long the async context stays on after the last sampled span ended, so a burst of
 * sampled requests does not switch it off and on between two of them.
 */
export const ASYNC_CONTEXT_LINGER_MS = 10;

/**
 * The OpenTelemetry context manager of Corkboard: async context (AsyncLocalStorage) only
 * while a sampled trace is being recorded, synchronous context otherwise.
 *
 * On Node 20, an AsyncLocalStorage in use puts a hook on every promise and every async
 * resource of the process (no AsyncContextFrame before Node 22), sampled request or not:
 * on the live path (a change fanned out to hundreds of subscribers, each a few promises
 * and a socket write) that alone cost more than the whole 5 % budget. So:
 *
 * - entering a context whose span is sampled switches the AsyncLocalStorage on (if it is
 *   not) and runs in it: a sampled trace is propagated across every await, as with the
 *   SDK's own manager;
 * - while it is on, every context is entered through it (unsampled ones too);
 * - while it is off, an unsampled context is active for the synchronous part of `with`
 *   only: what runs after an await sees no span. The sampler (see `startTracing`) lets
 *   such an orphan start a trace only where a trace may start (an HTTP request, a
 *   GraphQL operation, Corkboard's root spans), so an unsampled request never turns into
 *   traces of its parts;
 * - `spanProcessor` counts the sampled spans open; `ASYNC_CONTEXT_LINGER_MS` after the
 *   count drops to zero the AsyncLocalStorage is switched off again;
 * - spans whose children are given their parent explicitly (`entersSynchronously`: an
 *   HTTP request's, a GraphQL query's or mutation's; or that have none, a live push's)
 *   never switch it on and do not count:
 *   their contexts are entered like unsampled ones (unless async context is on anyway).
 *   With 10 requests in flight and one in ten sampled, some sampled request is open
 *   nearly all the time: were they to switch it on, every request would pay for it.
 *   Work under such a span that needs async context (a command, with its database
 *   commands) opens a span of its own, which switches it on for as long as it lasts.
 *
 * What this gives up: log lines of a request carry its trace id when logged in one of
 * the spans that switch async context on, or before the request's first await.
 */
export class SampledContextManager extends AsyncLocalStorageContextManager {
  /** The context of the `with` running synchronously now, when entered without async context. */
  #sync: Context | undefined;
  #openSampledSpans = 0;
  #lingering: NodeJS.Timeout | undefined;
  /** The async context, switched on by its first `run`, off by `disable()`. */
  readonly #storage = new AsyncLocalStorage<Context>();
  #asyncOn = false;
  /** The open spans `entersSynchronously` named. */
  readonly #synchronous = new WeakSet<object>();

  /**
   * @param keepsContextOn whether a sampled span counts as open work, keeping async
   * context on while it lasts; not a span that lasts as long as a subscription.
   * @param entersSynchronously whether a span's children get it as their parent
   * explicitly, so that its context is entered for the synchronous part of `with` only
   * and never switches async context on.
   */
  constructor(
    private readonly keepsContextOn: (span: SpanFacts) => boolean = () => true,
    private readonly entersSynchronously: (span: SpanFacts) => boolean = () => false,
  ) {
    super();
  }

  /** Counts the sampled spans open, for switching async context off once there are none. */
  readonly spanProcessor: SpanProcessor = {
    onStart: (span) => {
      if (this.entersSynchronously(span)) this.#synchronous.add(span);
      if (!this.#counts(span)) return;
      this.#openSampledSpans += 1;
      if (this.#lingering) {
        clearTimeout(this.#lingering);
        this.#lingering = undefined;
      }
    },
    onEnd: (span) => {
      if (!this.#counts(span)) return;
      this.#openSampledSpans -= 1;
      this.#switchOffLater();
    },
    forceFlush: () => Promise.resolve(),
    shutdown: () => Promise.resolve(),
  };

  /** Switches async context off in a moment, unless a sampled span is open by then. */
  #switchOffLater(): void {
    if (this.#openSampledSpans > 0 || !this.#asyncOn || this.#lingering) return;
    this.#lingering = setTimeout(() => {
      this.#lingering = undefined;
      if (this.#openSampledSpans > 0) return;
      this.#asyncOn = false;
      this.#storage.disable();
    }, ASYNC_CONTEXT_LINGER_MS);
    this.#lingering.unref();
  }

  #counts(span: SpanFacts): boolean {
    return (
      (span.spanContext().traceFlags & TraceFlags.SAMPLED) !== 0 &&
      !this.#synchronous.has(span) &&
      this.keepsContextOn(span)
    );
  }

  /** Whether entering `context` switches async context on: a sampled span's, not entered synchronously. */
  #needsAsync(context: Context): boolean {
    const span = trace.getSpan(context);
    return (
      span !== undefined &&
      (span.spanContext().traceFlags & TraceFlags.SAMPLED) !== 0 &&
      !this.#synchronous.has(span)
    );
  }

  override active(): Context {
    if (this.#sync !== undefined) return this.#sync;
    if (!this.#asyncOn) return ROOT_CONTEXT;
    return this.#storage.getStore() ?? ROOT_CONTEXT;
  }

  override with<A extends unknown[], F extends (...args: A) => ReturnType<F>>(
    context: Context,
    fn: F,
    thisArg?: ThisParameterType<F>,
    ...args: A
  ): ReturnType<F> {
    const outer = this.#sync;
    if (this.#asyncOn || this.#needsAsync(context)) {
      this.#sync = undefined;
      if (!this.#asyncOn) {
        this.#asyncOn = true;
        // Off again once no sampled span is open (none may ever start in this context).
        this.#switchOffLater();
      }
      try {
        return this.#storage.run(context, () => fn.apply(thisArg, args));
      } finally {
        this.#sync = outer;
      }
    }
    this.#sync = context;
    try {
      return fn.apply(thisArg, args);
    } finally {
      this.#sync = outer;
    }
  }

  /**
   * Binds `target` (a function or an event emitter) to `context`; not when async context
   * is off and `context` would not switch it on (unsampled, or entered synchronously): it
   * would be active in the synchronous part of `target`'s calls only, for no span to
   * record or one whose children are parented explicitly (the http instrumentation binds
   * every request and response it sees).
   */
  override bind<T>(context: Context, target: T): T {
    if (!this.#asyncOn && !this.#needsAsync(context)) return target;
    return super.bind(context, target);
  }

  override disable(): this {
    if (this.#lingering) clearTimeout(this.#lingering);
    this.#lingering = undefined;
    this.#sync = undefined;
    this.#asyncOn = false;
    this.#storage.disable();
    return this;
  }

  /** Whether async context is on now (a sampled trace is open or was a moment ago): for tests. */
  get asyncContextOn(): boolean {
    return this.#asyncOn;
  }
}

/** The GraphQL operation spans whose children get them as their parent explicitly. */
const PARENTS_EXPLICITLY = /^(query|mutation)\./;

/**
 * The context manager `startTracing` uses with Corkboard's sampler:
 * - a subscription's operation span lasts as long as the subscription: it does not keep
 *   async context on;
 * - the HTTP request's and a query's or mutation's spans are their children's parents
 *   explicitly (`requestContextOf`, `operationTraceOf`): entered synchronously;
 * - so is a live push's: it records the fan-out of one change (executions, frames,
 *   consumers dropped) in attributes, and starts no span under it, so it needs no async
 *   context across the hundreds of deliveries (each a few promises and a socket write) of
 *   a sampled change, which would cost each of them an async hook.
 */
export function corkboardContextManager(): SampledContextManager {
  return new SampledContextManager(
    (span) => !span.name.startsWith('subscription.'),
    (span) =>
      span.kind === SpanKind.SERVER ||
      PARENTS_EXPLICITLY.test(span.name) ||
      span.name === SpanName.Push,
  );
}
