import type { Commit } from '../eventstore/types.js';
import type { Invalidation, Projection, ProjectionContext, ReadDoc, ReadView } from './types.js';

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

async function updateOnce<T extends ReadDoc>(
  view: ReadView,
  collection: string,
  id: string,
  event: { stream: string; version: number },
  change: (current: T | null) => T,
): Promise<void> {
  const documents = view.collection<T>(collection);
  const current = await documents.get(id);
  if ((current?._applied?.[event.stream] ?? 0) >= event.version) return;
  const next = change(current);
  await documents.put({
    ...next,
    _id: id,
    _applied: { ...current?._applied, ...next._applied, [event.stream]: event.version },
  });
}
