/**
 * A page of a resource's history, read from its event stream newest first.
 *
 * Each entry's `from` values are the values before its event. Within a page they come
 * from the page's own older events; for the fields whose previous setter is older than
 * the page, the reader looks back from the page's oldest event, a bounded chunk at a
 * time (a few events first, then up to 100), and stops as soon as every such field is
 * found. So a page costs the page plus
 * the distance back to the previous change of the fields it shows changing (the stream's
 * creation event sets them all, so the look-back always ends), never the stream's length
 * as such: a stream whose fields keep changing pages in constant time, whatever its
 * length.
 */
import type { EventStore, RecordedEvent } from '../../eventstore/types.js';
import {
  PREVIOUS,
  previousKey,
  type HistorySpec,
  type HistoryValue,
  type RenderedEvent,
} from './changes.js';

/** Most events one look-back step reads (one store read). */
export const HISTORY_LOOKBACK_CHUNK = 100;

/**
 * Events look-back step `step` (0, 1, 2...) reads: a few first, since a field that keeps
 * changing was changed just before, then whole chunks.
 */
export const lookbackLimit = (step: number): number =>
  Math.min(HISTORY_LOOKBACK_CHUNK, 10 * 10 ** step);

/** One history entry with its `from` values resolved. */
export interface HistoryEntryData {
  at: Date;
  /** User id, null for the system. */
  actor: string | null;
  operation: string;
  version: number;
  changes: { field: string; from: HistoryValue; to: HistoryValue }[];
}

export interface HistoryPage {
  /** Newest first. */
  entries: HistoryEntryData[];
  /** Whether older entries exist. */
  hasNextPage: boolean;
}

export interface ReadHistoryOptions {
  /** The resource's id. */
  id: string;
  /** At most this many entries (>= 0). */
  first: number;
  /** Only entries older than this version (a cursor). @default from the newest */
  beforeVersion?: number;
  signal?: AbortSignal;
}

/** One page of the history of the resource `spec` reads, newest first. */
export async function readHistory(
  store: EventStore,
  spec: HistorySpec,
  options: ReadHistoryOptions,
): Promise<HistoryPage> {
  const { first, beforeVersion, signal } = options;
  const stream = spec.stream(options.id);
  if (first <= 0) {
    const head = beforeVersion ?? (await store.streamVersion(stream, { signal })) + 1;
    return { entries: [], hasNextPage: head > 1 };
  }
  let events = await store.readStreamBackward(stream, {
    before: beforeVersion,
    limit: first,
    signal,
  });
  // A cursor past the stream's head (another resource's, or one handed out before a memory
  // store restarted) means what any cursor does: the entries older than it. The store reads
  // the versions [before - limit, before - 1] as they are, which past the head is a short
  // page or none at all (hasNextPage false, on a history that has entries); so when the
  // newest event read is not the one just below the cursor, the page is read from the head.
  if (
    beforeVersion !== undefined &&
    beforeVersion > 1 &&
    events[0]?.version !== beforeVersion - 1
  ) {
    const head = await store.streamVersion(stream, { signal });
    if (head + 1 < beforeVersion) {
      events = await store.readStreamBackward(stream, { before: head + 1, limit: first, signal });
    }
  }
  const rendered = events.map((event) => ({ event, ...spec.render(event) }));
  const oldest = events.at(-1);
  const known = await previousValues(store, spec, stream, rendered, oldest?.version, signal);
  // Oldest first, so each change's `from` is the value the change before it left.
  const entries: HistoryEntryData[] = [];
  for (let i = rendered.length - 1; i >= 0; i -= 1) {
    const { event, operation, changes } = rendered[i]!;
    entries.push({
      at: event.occurredAt,
      actor: event.actor,
      operation,
      version: event.version,
      changes: changes.map((change) => {
        const key = previousKey(change);
        const from = change.from === PREVIOUS ? (known.get(key) ?? null) : change.from;
        known.set(key, change.to);
        return { field: change.field, from, to: change.to };
      }),
    });
  }
  return { entries: entries.reverse(), hasNextPage: (oldest?.version ?? 1) > 1 };
}

/**
 * The value, before the page's oldest event, of every field whose first change in the
 * page takes its `from` from an earlier event: found by reading backward from there.
 */
async function previousValues(
  store: EventStore,
  spec: HistorySpec,
  stream: string,
  page: readonly (RenderedEvent & { event: RecordedEvent })[],
  oldestVersion: number | undefined,
  signal: AbortSignal | undefined,
): Promise<Map<string, HistoryValue>> {
  const known = new Map<string, HistoryValue>();
  const wanted = new Set<string>();
  const setInPage = new Set<string>();
  for (let i = page.length - 1; i >= 0; i -= 1) {
    for (const change of page[i]!.changes) {
      const key = previousKey(change);
      if (change.from === PREVIOUS && !setInPage.has(key)) wanted.add(key);
      setInPage.add(key);
    }
  }
  let before = oldestVersion ?? 1;
  for (let step = 0; wanted.size > 0 && before > 1; step += 1) {
    const older = await store.readStreamBackward(stream, {
      before,
      limit: lookbackLimit(step),
      signal,
    });
    if (older.length === 0) break;
    for (const event of older) {
      for (const change of spec.render(event).changes) {
        const key = previousKey(change);
        if (!wanted.has(key)) continue;
        known.set(key, change.to);
        wanted.delete(key);
      }
      if (wanted.size === 0) break;
    }
    before = older.at(-1)!.version;
  }
  return known;
}
