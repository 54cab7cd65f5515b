/**
 * `@corkboard/client`: the package's entry point, and the one list of its public
 * API (the Apollo and urql bindings are the `./apollo` and `./urql` subpaths, so
 * that neither library is loaded unless asked for). Nothing inside this repository
 * imports through it.
 */
export {
  createCorkboardClient,
  type CorkboardClient,
  type CorkboardClientOptions,
  type CorkboardOperations,
  type OperationArgs,
  type RequestOptions,
  type TokenProvider,
} from './createCorkboardClient.js';
export {
  followBoardChanges,
  type BoardChange,
  type BoardChangesOptions,
  type BoardChangesTransport,
  type ReconnectOptions,
} from './boardChanges.js';
export {
  CorkboardRequestError,
  type CorkboardRequestErrorDetails,
} from './CorkboardRequestError.js';
export { BoardAccessEndedError, accessEndedOf } from './accessEnded.js';
export { AccessEndReason } from './liveErrorCodes.js';
export { withConflictRetry, type ConflictRetryOptions } from './conflicts.js';
export { embeddedTypes, nodeTypes, possibleTypes } from './cacheSchema.js';
export type {
  AppliedChanges,
  Invalidation,
  LiveBoard,
  LiveBoardOptions,
  LiveBoardSource,
} from './liveChanges.js';
// The generated operations: a TypedDocumentNode and result/variable types each.
export * from './generated/graphql.js';
