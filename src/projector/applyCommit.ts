import type { Commit } from '../eventstore/types.js';
import {
  StaleWrite,
  type Invalidation,
  type Projection,
  type ProjectionContext,
  type ReadDoc,
  type ReadView,
} from './types.js';

/** What applying one commit reported, for its change log entry. */
export interface AppliedCommit {
  scopes: string[];
  invalidated: Invalidation[];
}

/**
 * Applies one commit to every projection that handles one of its event types,
 * writing into `view`. Safe to call again for the same commit: `update` skips
 * documents that already reflect the event, and the invalidations are computed
 * from the events alone, so a replay reports the same entry.
 */
export async function applyCommit(
  commit: Commit,
  view: ReadView,
  projections: readonly Projection[],
  onProjectionError?: (projection: Projection, error: unknown) => void,
): Promise<AppliedCommit> {
  const scopes = new Set<string>();
  const invalidations = new Map<string, Invalidation>();
  const context: ProjectionContext = {
    view,
    commit,
    update: (collection, id, event, change) => updateOnce(view, collection, id, event, change),
    invalidate: (scope, invalidation) => {
      if (scope !== null) scopes.add(scope);
      const key = `${invalidation.typename}:${invalidation.id}`;
      const seen = invalidations.get(key);
      invalidations.set(
        key,
        seen
          ? {
              ...seen,
              fields: [...new Set([...seen.fields, ...invalidation.fields])],
              version: Math.max(seen.version, invalidation.version),
            }
          : { ...invalidation, fields: [...invalidation.fields] },
      );
    },
  };
  const types = new Set(commit.events.map((e) => e.type));
  for (const projection of projections) {
    if (!projection.handles.some((t) => types.has(t))) continue;
    try {
      await projection.apply(context);
    } catch (error) {
      onProjectionError?.(projection, error);
      throw error;
    }
  }
  return { scopes: [...scopes].sort(), invalidated: [...invalidations.values()] };
}

/** Re-reads after a `StaleWrite` at most this many times per update. */
const MAX_STALE_RETRIES = 10;

/**
 * Read, skip if already applied, change, write. The write is conditional (`put` never
 * regresses a document): when another writer applied something in between, it is refused
 * with `StaleWrite` and the update starts again from a fresh read, which then either finds
 * the event applied or applies it on top of the newer document.
 */
async function updateOnce<T extends ReadDoc>(
  view: ReadView,
  collection: string,
  id: string,
  event: { stream: string; version: number },
  change: (current: T | null) => T,
): Promise<void> {
  const documents = view.collection<T>(collection);
  for (let attempt = 1; ; attempt += 1) {
    const current = await documents.get(id);
    if ((current?._applied?.[event.stream] ?? 0) >= event.version) return;
    const next = change(current);
    try {
      await documents.put({
        ...next,
        _id: id,
        _applied: { ...current?._applied, ...next._applied, [event.stream]: event.version },
      });
      return;
    } catch (error) {
      if (!(error instanceof StaleWrite) || attempt >= MAX_STALE_RETRIES) throw error;
    }
  }
}
