/**
 * The newest version of each board, column and card the pushes named, for Graphcache:
 * a result written after them that sets one back is repaired (see {@link PushedVersions}).
 */
import type { Cache } from '@urql/exchange-graphcache';
import type { BoardChange } from './boardChanges.js';

/** The types whose versions pushes name and results may set back. */
const VERSIONED_TYPES: ReadonlySet<string> = new Set(['Board', 'Column', 'Card']);

/** Repairs of one entity at one pushed version, at most: a result older still is left. */
const MAX_REPAIRS = 3;

/** Versions kept, at most; past it the oldest noted go first. */
const MAX_KEPT = 10_000;

/**
 * The viewer's own mutation answer travels over HTTP, the pushes over the websocket. An
 * answer carries its columns (their first cards, `cardCount`, `version`) and cards as the
 * server read them when it answered: landing after a newer push of another member's
 * change to one of them, Graphcache writes that older state over the newer one. Each
 * mutation result is checked once written: an entity it left below the version a push named is invalidated, and
 * Graphcache reexecutes the queries that read it (one request, only when this happens).
 */
export class PushedVersions {
  /** By cache key: the newest version pushed, and the repairs made at it. */
  readonly #pushed = new Map<string, { version: number; repairs: number }>();

  /** Notes the versions `change` names (its invalidations and the resources it carries). */
  note(cache: Cache, change: BoardChange): void {
    for (const { typename, id, version } of change.invalidated) {
      this.#note(cache, typename, id, version);
    }
    for (const node of change.changed ?? []) {
      const { version } = node as { version?: unknown };
      if (typeof version === 'number') this.#note(cache, node.__typename, node.id, version);
    }
  }

  #note(cache: Cache, typename: string, id: string, version: number): void {
    if (!VERSIONED_TYPES.has(typename)) return;
    const key = cache.keyOfEntity({ __typename: typename, id });
    if (!key) return;
    const known = this.#pushed.get(key);
    if (known && known.version >= version) return;
    this.#pushed.delete(key);
    this.#pushed.set(key, { version, repairs: 0 });
    if (this.#pushed.size > MAX_KEPT) {
      this.#pushed.delete(this.#pushed.keys().next().value as string);
    }
  }

  /**
   * Invalidates every entity of `result` (a result Graphcache has just written) that the
   * cache now holds below the version a push named.
   */
  repair(cache: Cache, result: unknown): void {
    if (this.#pushed.size === 0) return;
    const seen = new Set<string>();
    const visit = (value: unknown): void => {
      if (Array.isArray(value)) {
        for (const item of value) visit(item);
        return;
      }
      if (value === null || typeof value !== 'object') return;
      const entity = value as Record<string, unknown>;
      const typename = entity['__typename'];
      if (typeof typename === 'string' && VERSIONED_TYPES.has(typename)) {
        const key = cache.keyOfEntity(entity as { __typename: string; id: string });
        if (key && !seen.has(key)) {
          seen.add(key);
          this.#repairOne(cache, key);
        }
      }
      for (const field in entity) visit(entity[field]);
    };
    visit(result);
  }

  #repairOne(cache: Cache, key: string): void {
    const pushed = this.#pushed.get(key);
    if (!pushed || pushed.repairs >= MAX_REPAIRS) return;
    const cached = cache.resolve(key, 'version');
    if (typeof cached !== 'number' || cached >= pushed.version) return;
    pushed.repairs += 1;
    cache.invalidate(key);
  }
}
