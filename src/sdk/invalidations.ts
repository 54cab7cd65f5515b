/**
 * Invalidations merged per resource: the projector merges those of one commit, the SDK
 * those of a batch of changes. This module imports nothing, so the server imports it
 * from the client's source.
 */

/** A resource's fields that changed, as of its `version` (`Invalidation` on both sides). */
interface ResourceInvalidation {
  typename: string;
  id: string;
  fields: string[];
  version: number;
}

/**
 * Adds `invalidation` to `merged`, one entry per resource: with the union of the fields
 * and the highest version when the resource is there already. Copies, never aliases.
 */
export function mergeInvalidation(
  merged: Map<string, ResourceInvalidation>,
  invalidation: ResourceInvalidation,
): void {
  const key = `${invalidation.typename}:${invalidation.id}`;
  const seen = merged.get(key);
  // Written out, not spread: the projector freezes these, and V8 freezes an object made by
  // a spread far more slowly (see the projector's `frozenFields`).
  merged.set(key, {
    typename: invalidation.typename,
    id: invalidation.id,
    fields: seen
      ? [...new Set([...seen.fields, ...invalidation.fields])]
      : [...invalidation.fields],
    version: seen ? Math.max(seen.version, invalidation.version) : invalidation.version,
  });
}
