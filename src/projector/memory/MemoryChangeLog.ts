import { setImmediate as nextTurn } from 'node:timers/promises';
import {
  assertConsecutive,
  type ChangeLog,
  type ChangeLogEntry,
  type ChangeLogRead,
  type ChangeLogTail,
} from '../types.js';
import { frozenCopy } from '../frozen.js';

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

/**
 * `scopes` without repeats: as they are when none repeats (an entry's scopes are sorted and
 * distinct when the projector made them: no set per entry).
 */
function distinct(scopes: readonly string[]): readonly string[] {
  for (let i = 1; i < scopes.length; i += 1) {
    if (scopes.indexOf(scopes[i]!) < i) return [...new Set(scopes)];
  }
  return scopes;
}

/** The change log in one process: the memory adapter of `ChangeLog`. */
export class MemoryChangeLog implements ChangeLog {
  /**
   * Entries with cursors above `#base`, oldest first; those up to `#trimmedThrough` are
   * trimmed but still held until `#compact` drops them in one go (a splice per record would
   * move the whole retained window each time).
   */
  #entries: ChangeLogEntry[] = [];
  #base = 0;
  readonly #waiters = new Set<() => void>();
  #trimmedThrough = 0;
  /** Per scope, the cursors of its entries: a scoped read is a binary search. */
  readonly #byScope = new Map<string, ScopeIndex>();

  constructor(private readonly retention: number) {}

  async record(entry: ChangeLogEntry): Promise<void> {
    await nextTurn();
    this.#append(entry);
    for (const wake of this.#waiters) wake();
    this.#waiters.clear();
  }

  async recordMany(entries: readonly ChangeLogEntry[]): Promise<void> {
    await nextTurn();
    assertConsecutive(entries);
    try {
      for (const entry of entries) this.#append(entry);
    } finally {
      for (const wake of this.#waiters) wake();
      this.#waiters.clear();
    }
  }

  get #head(): number {
    return this.#base + this.#entries.length;
  }

  #append(entry: ChangeLogEntry): void {
    const head = this.#head;
    if (entry.cursor <= head) return;
    if (entry.cursor !== head + 1) {
      throw new Error(`change log gap: head ${head}, recording ${entry.cursor}`);
    }
    // A plain deep copy (see `frozenCopy`), much cheaper than `structuredClone` for these
    // small objects; reads hand out copies of it as before.
    this.#entries.push(frozenCopy(entry));
    for (const scope of distinct(entry.scopes)) {
      let index = this.#byScope.get(scope);
      if (!index) this.#byScope.set(scope, (index = { cursors: [], start: 0 }));
      index.cursors.push(entry.cursor);
    }
    while (this.#head - this.#trimmedThrough > this.retention) {
      this.#trimmedThrough += 1;
      this.#unindex(this.#entryAt(this.#trimmedThrough));
    }
    this.#compact();
  }

  /** The entry of `cursor`, which must be held (above `#base`, at most the head). */
  #entryAt(cursor: number): ChangeLogEntry {
    return this.#entries[cursor - this.#base - 1]!;
  }

  /** Drops the trimmed entries once they are as many as the retained ones (amortised O(1)). */
  #compact(): void {
    const trimmed = this.#trimmedThrough - this.#base;
    if (trimmed < 1_024 || trimmed < this.#entries.length - trimmed) return;
    this.#entries = this.#entries.slice(trimmed);
    this.#base = this.#trimmedThrough;
  }

  /** Drops a trimmed entry (the oldest of each of its scopes) from the scope index. */
  #unindex(entry: ChangeLogEntry): void {
    for (const scope of distinct(entry.scopes)) {
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
    const head = this.#head;
    if (after < this.#trimmedThrough) {
      return { kind: 'expired', oldest: this.#trimmedThrough + 1, head };
    }
    const limit = options.limit ?? 1_000;
    let entries: ChangeLogEntry[];
    if (options.scope === undefined) {
      const start = after - this.#base;
      entries = this.#entries.slice(start, start + limit);
    } else {
      const index = this.#byScope.get(options.scope);
      const from = index ? firstAbove(index.cursors, index.start, after) : 0;
      entries = (index?.cursors.slice(from, from + limit) ?? []).map((cursor) =>
        this.#entryAt(cursor),
      );
    }
    return { kind: 'entries', entries: entries.map((e) => structuredClone(e)) };
  }

  async head(): Promise<number> {
    await nextTurn();
    return this.#head;
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
