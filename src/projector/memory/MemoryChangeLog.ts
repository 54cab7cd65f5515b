import { setImmediate as nextTurn } from 'node:timers/promises';
import {
  type ChangeLog,
  type ChangeLogEntry,
  type ChangeLogRead,
  type ChangeLogTail,
} from '../types.js';

/** The cursors of one scope's entries, ascending; those before `start` were trimmed. */
interface ScopeIndex {
  cursors: number[];
  start: number;
}

/** First index in `cursors` from `from` on whose cursor is above `after`. */
function firstAbove(cursors: number[], from: number, after: number): number {
  let low = from;
  let high = cursors.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (cursors[middle]! > after) high = middle;
    else low = middle + 1;
  }
  return low;
}

/** The change log in one process: the memory adapter of `ChangeLog`. */
export class MemoryChangeLog implements ChangeLog {
  readonly #entries: ChangeLogEntry[] = [];
  readonly #waiters = new Set<() => void>();
  #trimmedThrough = 0;
  /** Per scope, the cursors of its entries: a scoped read is a binary search. */
  readonly #byScope = new Map<string, ScopeIndex>();

  constructor(private readonly retention: number) {}

  async record(entry: ChangeLogEntry): Promise<void> {
    await nextTurn();
    const head = this.#trimmedThrough + this.#entries.length;
    if (entry.cursor <= head) return;
    if (entry.cursor !== head + 1) {
      throw new Error(`change log gap: head ${head}, recording ${entry.cursor}`);
    }
    this.#entries.push(structuredClone(entry));
    for (const scope of new Set(entry.scopes)) {
      let index = this.#byScope.get(scope);
      if (!index) this.#byScope.set(scope, (index = { cursors: [], start: 0 }));
      index.cursors.push(entry.cursor);
    }
    const excess = this.#entries.length - this.retention;
    if (excess > 0) {
      for (const trimmed of this.#entries.splice(0, excess)) this.#unindex(trimmed);
      this.#trimmedThrough += excess;
    }
    for (const wake of this.#waiters) wake();
    this.#waiters.clear();
  }

  /** Drops a trimmed entry (the oldest of each of its scopes) from the scope index. */
  #unindex(entry: ChangeLogEntry): void {
    for (const scope of new Set(entry.scopes)) {
      const index = this.#byScope.get(scope);
      if (!index) continue;
      index.start += 1;
      if (index.start === index.cursors.length) this.#byScope.delete(scope);
      else if (index.start > 1_024 && index.start * 2 > index.cursors.length) {
        index.cursors = index.cursors.slice(index.start);
        index.start = 0;
      }
    }
  }

  async read(
    after: number,
    options: { limit?: number; signal?: AbortSignal; scope?: string } = {},
  ): Promise<ChangeLogRead> {
    await nextTurn();
    options.signal?.throwIfAborted();
    const head = this.#trimmedThrough + this.#entries.length;
    if (after < this.#trimmedThrough) {
      return { kind: 'expired', oldest: this.#trimmedThrough + 1, head };
    }
    const limit = options.limit ?? 1_000;
    let entries: ChangeLogEntry[];
    if (options.scope === undefined) {
      const start = after - this.#trimmedThrough;
      entries = this.#entries.slice(start, start + limit);
    } else {
      const index = this.#byScope.get(options.scope);
      const from = index ? firstAbove(index.cursors, index.start, after) : 0;
      entries = (index?.cursors.slice(from, from + limit) ?? []).map(
        (cursor) => this.#entries[cursor - this.#trimmedThrough - 1]!,
      );
    }
    return { kind: 'entries', entries: entries.map((e) => structuredClone(e)) };
  }

  async head(): Promise<number> {
    await nextTurn();
    return this.#trimmedThrough + this.#entries.length;
  }

  tail(after: number): ChangeLogTail {
    let closed = false;
    let wake: (() => void) | undefined;
    let cursor = after;
    const read = (a: number) => this.read(a);
    const waiters = this.#waiters;
    return {
      async close() {
        closed = true;
        wake?.();
      },
      [Symbol.asyncIterator]: async function* () {
        while (!closed) {
          const result = await read(cursor);
          // A tail that fell behind the retained window resumes at the oldest kept entry.
          const batch = result.kind === 'entries' ? result.entries : [];
          if (result.kind === 'expired') cursor = result.oldest - 1;
          for (const entry of batch) {
            if (closed) return;
            cursor = entry.cursor;
            yield entry;
          }
          // close() may have run while `read` was pending: its wake-up went to no one.
          if (closed) return;
          if (batch.length === 0 && result.kind === 'entries') {
            await new Promise<void>((resolve) => {
              wake = resolve;
              waiters.add(resolve);
            });
          }
        }
      },
    };
  }
}
