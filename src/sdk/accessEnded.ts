/**
 * The end of a viewer's access to a board, as the SDK reports it: a typed error that
 * says why, recognised in whatever shape the transport hands it over (the SDK's own
 * iterator, Apollo's link, urql's exchanges).
 */
import type { GraphQLFormattedError } from 'graphql';
import { CorkboardRequestError } from './CorkboardRequestError.js';
import { AccessEndReason } from './liveErrorCodes.js';

/** `extensions.code` of the server's refusal of a board the viewer cannot see. */
export const NOT_FOUND_CODE = 'NOT_FOUND';

const REASONS: ReadonlySet<string> = new Set(Object.values(AccessEndReason));

/**
 * `boardChanges` ended for good because the viewer cannot see the board (any more):
 * `reason` says why. The live bindings clear the board (its columns and cards too)
 * from their cache when their subscription ends with it.
 */
export class BoardAccessEndedError extends CorkboardRequestError {
  override readonly name: string = 'BoardAccessEndedError';
  constructor(
    /** The board's global ID. */
    readonly boardId: string,
    readonly reason: AccessEndReason,
    errors: readonly GraphQLFormattedError[],
    cause?: unknown,
  ) {
    super(`no access to board ${boardId} (${reason})`, {
      operationName: 'BoardChanges',
      errors,
      cause,
    });
  }
}

/** The GraphQL errors an error of any of the transports carries; undefined when none. */
function graphQLErrorsOf(error: unknown): readonly GraphQLFormattedError[] | undefined {
  if (Array.isArray(error)) return error as GraphQLFormattedError[];
  const holder = error as { errors?: unknown; graphQLErrors?: unknown } | null | undefined;
  const errors = holder?.graphQLErrors ?? holder?.errors;
  return Array.isArray(errors) ? (errors as GraphQLFormattedError[]) : undefined;
}

/**
 * `error` as a `BoardAccessEndedError` for `boardId` when it is the server's refusal of
 * the board to this viewer (every GraphQL error `NOT_FOUND`; the reason from the first
 * one's `extensions.reason`, `NOT_FOUND` when it gives none), else null. Takes a
 * `BoardAccessEndedError` already made, a `CorkboardRequestError`, Apollo's
 * `CombinedGraphQLErrors`, urql's `CombinedError` (its `networkError` too) or a plain
 * list of GraphQL errors.
 */
export function accessEndedOf(error: unknown, boardId: string): BoardAccessEndedError | null {
  if (error instanceof BoardAccessEndedError) return error;
  const network = (error as { networkError?: unknown } | null | undefined)?.networkError;
  if (network instanceof BoardAccessEndedError) return network;
  const errors = graphQLErrorsOf(error);
  if (
    !errors ||
    errors.length === 0 ||
    !errors.every((e) => e?.extensions?.['code'] === NOT_FOUND_CODE)
  ) {
    return null;
  }
  const reason = errors[0]!.extensions?.['reason'];
  return new BoardAccessEndedError(
    boardId,
    typeof reason === 'string' && REASONS.has(reason)
      ? (reason as AccessEndReason)
      : AccessEndReason.NotFound,
    errors,
    error,
  );
}
