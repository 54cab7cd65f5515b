import { CombinedGraphQLErrors } from '@apollo/client/errors';
import type { ErrorFieldsFragment } from '@corkboard/client';

/** An error member of a mutation's result union, as the SDK selects it. */
export type ApiError = ErrorFieldsFragment;

/** Every result union member that is an error has a `code` and a `message`. */
export const isApiError = (result: { __typename: string }): result is ApiError =>
  'code' in result && 'message' in result;

/** One line a person can act on, from the API's own explanation of an error. */
export function describeError(error: ApiError): string {
  switch (error.__typename) {
    case 'WipLimitReachedError':
      return `Refused: the column is at its WIP limit of ${error.wipLimit}.`;
    case 'VersionConflictError':
      return `Conflict: ${error.conflicts
        .map((c) => `${c.actor?.displayName ?? 'someone'} changed ${c.fields.join(', ')}`)
        .join('; ')}.`;
    case 'ValidationError':
      return `${error.message}${error.field ? ` (${error.field})` : ''}`;
    case 'ForbiddenError':
      // The page disables what the viewer's role does not allow; this is reached when the
      // role changed before the page heard of it.
      return `Refused by the server: ${error.message}. Your role on this board does not allow it.`;
    case 'UsernameTakenError':
      return `The username ${error.username} is taken.`;
    case 'BoardArchivedError':
    case 'ColumnNotEmptyError':
    case 'NotFoundError':
    case 'UnauthenticatedError':
    case 'InvalidCredentialsError':
    case 'TooManyAttemptsError':
    case 'ExternalIdentityError':
    case 'RebuildInProgressError':
    case 'LastOwnerError':
      return error.message;
    default: {
      const unexpected: never = error;
      return String(unexpected);
    }
  }
}

/** What to show of a request that failed outright (no result union to read). */
export function failureText(error: unknown): string {
  if (CombinedGraphQLErrors.is(error)) return error.errors.map((e) => e.message).join('; ');
  if (!navigator.onLine) return 'Not sent: the browser is offline.';
  return error instanceof Error ? error.message : String(error);
}

/** Whether the server refused the session's token (expired, ended, or unknown). */
export const sessionEnded = (error: unknown): boolean =>
  CombinedGraphQLErrors.is(error) &&
  error.errors.some((e) => e.extensions?.['code'] === 'UNAUTHENTICATED');
