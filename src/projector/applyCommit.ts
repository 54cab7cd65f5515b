import type { Commit } from '../eventstore/types.js';
import {
  CARRIED_DOCS_MAX_BYTES,
  COMMIT_APPLIED_KEY,
  StaleWrite,
  type CarriedDoc,
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
  /** Documents of carrying projections as this commit left them (see `ChangeLogEntry.changed`). */
  changed: CarriedDoc[];
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
  /** The last state this commit gave each document of a carrying projection. */
  const carried = new Map<string, CarriedDoc>();
  let carrying = false;
  const carry = (collection: string, id: string, doc: ReadDoc | null) => {
    if (!carrying || !doc) return;
    const { _applied: _, ...rest } = doc;
    const key = `${collection}:${id}`;
    // Re-inserted: a document's place is that of its last write.
    carried.delete(key);
    carried.set(key, { collection, doc: rest });
  };
  const context: ProjectionContext = {
    view,
    commit,
    update: async (collection, id, event, change) => {
      carry(collection, id, await updateOnce(view, collection, id, event, change));
    },
    updateForCommit: async (collection, id, change) => {
      const key = { stream: COMMIT_APPLIED_KEY, version: commit.position };
      carry(collection, id, await updateOnce(view, collection, id, key, change));
    },
    get scopes() {
      return [...scopes].sort();
    },
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
    carrying = projection.carriesDocuments === true;
    try {
      await projection.apply(context);
    } catch (error) {
      onProjectionError?.(projection, error);
      throw error;
    }
  }
  return {
    scopes: [...scopes].sort(),
    invalidated: [...invalidations.values()],
    changed: withinBudget([...carried.values()]),
  };
}

/** The first documents whose JSON fits in `CARRIED_DOCS_MAX_BYTES`; the rest are left out. */
function withinBudget(docs: CarriedDoc[]): CarriedDoc[] {
  let bytes = 0;
  const kept: CarriedDoc[] = [];
  for (const carried of docs) {
    bytes += Buffer.byteLength(JSON.stringify(carried.doc));
    if (bytes > CARRIED_DOCS_MAX_BYTES) continue;
    kept.push(carried);
  }
  return kept;
}

/** Re-reads after a `StaleWrite` at most this many times per update. */
const MAX_STALE_RETRIES = 10;

/**
 * Read, skip if already applied, change, write; returns the document as it now stands. The write is conditional (`put` never
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
): Promise<T | null> {
  const documents = view.collection<T>(collection);
  for (let attempt = 1; ; attempt += 1) {
    const current = await documents.get(id);
    // Applied already (a replay after a crash): the document as it stands is this commit's
    // state, since commits are applied in order and later ones have not been yet.
    if ((current?._applied?.[event.stream] ?? 0) >= event.version) return current;
    const next = change(current);
    const written: T = {
      ...next,
      _id: id,
      _applied: { ...current?._applied, ...next._applied, [event.stream]: event.version },
    };
    try {
      await documents.put(written);
      return written;
    } catch (error) {
      if (!(error instanceof StaleWrite) || attempt >= MAX_STALE_RETRIES) throw error;
    }
  }
}
