import generatedPossibleTypes from './generated/possibleTypes.js';

export { embeddedTypes, nodeTypes } from './generated/cacheTypes.js';

/**
 * For each interface and union of the schema, its member types (graphql-codegen's
 * fragment matcher): Apollo's `possibleTypes`, or Graphcache's. Without it a cache
 * cannot tell that `... on Error` applies to a `VersionConflictError`.
 */
export const possibleTypes: Readonly<Record<string, string[]>> =
  generatedPossibleTypes.possibleTypes;
