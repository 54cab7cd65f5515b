import type { ExecutionResult } from 'graphql';

/** Where a shared result carries its JSON, serialised once for every member. */
export const SERIALIZED: unique symbol = Symbol('corkboard.serialized');
/** Where a shared result carries its JSON as UTF-8 bytes, encoded once for every member. */
export const SERIALIZED_BYTES: unique symbol = Symbol('corkboard.serializedBytes');

/** One execution's result, shared by every member of a group, with its JSON. */
export interface SharedResult extends ExecutionResult {
  readonly [SERIALIZED]: string;
  readonly [SERIALIZED_BYTES]: Buffer;
  /**
   * graphql-yoga's SSE (and HTTP) result processing writes what this returns instead of
   * stringifying the result again. Absent when the result carries errors, which yoga
   * then serialises itself (it strips internal error extensions).
   */
  readonly stringify?: () => string;
}

/** Runs a group's selection for one event. */
export type GroupExecutor = (event: unknown, signal: AbortSignal) => Promise<ExecutionResult>;

/** A subscription's membership in its group. */
export interface GroupMembership {
  /**
   * The result for `event`, executed and serialised once for all members asking for
   * an event of the same key (`keyOf`; members ask in their own order and at their own
   * pace). Members handed the very same event object skip the key.
   */
  resultFor(event: unknown, keyOf: (event: unknown) => string): Promise<SharedResult>;
  /** Leaves the group (the last member out ends it). Idempotent. */
  leave(): void;
}

/** Results a group keeps for members still to ask; older ones are executed again. */
const RESULTS_KEPT = 32;

class Group {
  members = 0;
  /** By event key, oldest first. */
  readonly results = new Map<string, Promise<SharedResult>>();
  /** The result asked for last: the next one resolves after it. */
  #latest: Promise<unknown> = Promise.resolve();
  readonly #abort = new AbortController();

  constructor(
    /** The one copy of the key every member's key equals; members keep no key of their own. */
    readonly key: string,
    readonly execute: GroupExecutor,
    private readonly counted: (event: unknown, result: Promise<unknown>) => void,
  ) {}

  /** The event asked for last, and its result: what most members of a fan-out ask for. */
  #lastEvent: unknown = undefined;
  #lastResult: Promise<SharedResult> | undefined;

  resultFor(event: unknown, keyOf: (event: unknown) => string): Promise<SharedResult> {
    if (event === this.#lastEvent && this.#lastResult) return this.#lastResult;
    const eventKey = keyOf(event);
    let result = this.results.get(eventKey);
    if (!result) {
      const previous = this.#latest;
      // Results resolve in the order they were asked for, whatever each execution takes,
      // so members that deliver as results resolve deliver in change order.
      result = this.execute(event, this.#abort.signal).then(async (executed) => {
        await previous;
        return share(executed);
      });
      this.#latest = result.catch(() => undefined);
      this.counted(event, this.#latest);
      this.results.set(eventKey, result);
      // A failed execution is not kept: the next member to ask tries again.
      result.catch(() => this.#forget(eventKey, result!));
      if (this.results.size > RESULTS_KEPT) {
        this.results.delete(this.results.keys().next().value!);
      }
    }
    this.#lastEvent = event;
    this.#lastResult = result;
    return result;
  }

  #forget(eventKey: string, result: Promise<SharedResult>): void {
    if (this.results.get(eventKey) === result) this.results.delete(eventKey);
    if (this.#lastResult === result) {
      this.#lastEvent = undefined;
      this.#lastResult = undefined;
    }
  }

  end(): void {
    this.#abort.abort(new DOMException('The subscription group ended', 'AbortError'));
    this.results.clear();
    this.#lastEvent = undefined;
    this.#lastResult = undefined;
  }
}

/** The result with its JSON, made once. */
function share(result: ExecutionResult): SharedResult {
  const json = JSON.stringify(result);
  const shared: SharedResult = {
    ...result,
    [SERIALIZED]: json,
    [SERIALIZED_BYTES]: Buffer.from(json),
  };
  if (!result.errors?.length) {
    Object.defineProperty(shared, 'stringify', { value: () => json, enumerable: false });
  }
  return shared;
}

/**
 * A class rather than closures: thousands of these wait, each as small as can be. It
 * holds the group, not the key it joined with: that key is the member's own string
 * (built per subscribe, a few hundred bytes), the group's is shared by all.
 */
class Membership implements GroupMembership {
  #left = false;

  constructor(
    private readonly groups: Map<string, Group>,
    private readonly group: Group,
  ) {}

  resultFor(event: unknown, keyOf: (event: unknown) => string): Promise<SharedResult> {
    return this.group.resultFor(event, keyOf);
  }

  leave(): void {
    if (this.#left) return;
    this.#left = true;
    if (--this.group.members > 0) return;
    this.group.end();
    if (this.groups.get(this.group.key) === this.group) this.groups.delete(this.group.key);
  }
}

/**
 * Subscriptions grouped by what can change their output (the caller's `key`: e.g.
 * the board, the normalised document, the variables that matter and, for a selection
 * that depends on the viewer, something unique to the subscriber). Members of one
 * group get the very same result object and JSON per event: one execution and one
 * `JSON.stringify` per group per change, however many members it has.
 */
export class SubscriptionGroups {
  readonly #groups = new Map<string, Group>();
  #executions = 0;
  readonly #count = (event: unknown, result: Promise<unknown>) => {
    this.#executions++;
    this.onExecution?.(event, result);
  };

  /** Told of every execution as it starts: its event and its result (settled, never failing). */
  onExecution: ((event: unknown, settled: Promise<unknown>) => void) | undefined;

  /**
   * Joins the group of `key`, if it has members; null when it has none (then `create`).
   */
  join(key: string): GroupMembership | null {
    const group = this.#groups.get(key);
    if (!group) return null;
    group.members++;
    return new Membership(this.#groups, group);
  }

  /** Makes the group of `key` with `execute`, and joins it. */
  create(key: string, execute: GroupExecutor): GroupMembership {
    const group = new Group(key, execute, this.#count);
    this.#groups.set(key, group);
    group.members++;
    return new Membership(this.#groups, group);
  }

  /** Groups with a member now, and executions so far (one per group per event). */
  stats(): { groups: number; executions: number } {
    return { groups: this.#groups.size, executions: this.#executions };
  }
}
