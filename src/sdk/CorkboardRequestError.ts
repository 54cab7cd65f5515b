import type { GraphQLFormattedError } from 'graphql';

/** What went wrong with one operation, as far as the client could tell. */
export interface CorkboardRequestErrorDetails {
  /** The operation's name, e.g. `MoveCard`. */
  operationName: string;
  /** The GraphQL errors the server answered with; empty when it sent none. */
  errors?: readonly GraphQLFormattedError[];
  /** The HTTP status, for queries and mutations. */
  status?: number;
  /** The websocket close code that ended a subscription for good. */
  closeCode?: number;
  cause?: unknown;
}

/**
 * An operation failed in a way its result type does not describe: the server
 * answered with GraphQL errors (a malformed operation, a refused subscription, or
 * an unexpected failure that the server masks as `Unexpected error.`), with a
 * non-GraphQL HTTP response, or closed a subscription's socket with a code that
 * retrying cannot fix.
 *
 * Expected failures (a version conflict, a WIP limit, a validation error) are not
 * errors: they are members of the mutation's result union.
 */
export class CorkboardRequestError extends Error {
  override readonly name: string = 'CorkboardRequestError';
  readonly operationName: string;
  readonly errors: readonly GraphQLFormattedError[];
  readonly status: number | undefined;
  readonly closeCode: number | undefined;

  constructor(message: string, details: CorkboardRequestErrorDetails) {
    super(`${details.operationName}: ${message}`, { cause: details.cause });
    this.operationName = details.operationName;
    this.errors = details.errors ?? [];
    this.status = details.status;
    this.closeCode = details.closeCode;
  }

  /** The `extensions.code` of each GraphQL error that has one, e.g. `NOT_FOUND`. */
  get codes(): string[] {
    return this.errors.flatMap((error) => {
      const code = error.extensions?.['code'];
      return typeof code === 'string' ? [code] : [];
    });
  }
}
