/**
 * The board domain's expected failures: one hierarchy, each class with a stable
 * `code` matching the public contract's `ErrorCode` enum. Deciders throw them;
 * the command layer returns them as the `error` of a failed `CommandResult`.
 *
 * Ids carried by these errors are the domain's raw ids (what `newId` produced),
 * together with the resource's GraphQL type name where it is known, so the
 * GraphQL layer can turn them into global IDs.
 */

/** Stable codes of the domain errors, equal to the contract's `ErrorCode` values. */
export const ErrorCode = {
  VersionConflict: 'VERSION_CONFLICT',
  WipLimitReached: 'WIP_LIMIT_REACHED',
  UsernameTaken: 'USERNAME_TAKEN',
  NotFound: 'NOT_FOUND',
  Forbidden: 'FORBIDDEN',
  Unauthenticated: 'UNAUTHENTICATED',
  Validation: 'VALIDATION',
  /** Accounts belong to an identity provider (`AUTH_ISSUER`): no registration here. */
  ExternalIdentity: 'EXTERNAL_IDENTITY',
  /** `signIn` or `setPassword`: the username and password do not match. */
  InvalidCredentials: 'INVALID_CREDENTIALS',
  /** `signIn`: too many attempts for this username; retry after `retryAfterSeconds`. */
  TooManyAttempts: 'TOO_MANY_ATTEMPTS',
  /** The board is archived: it is read-only until `restoreBoard`. */
  BoardArchived: 'BOARD_ARCHIVED',
  /** `archiveColumn`: the column still holds live cards. */
  ColumnNotEmpty: 'COLUMN_NOT_EMPTY',
  /** `setMemberRole` / `removeMember`: the board would be left without an owner. */
  LastOwner: 'LAST_OWNER',
  /** Not a board error: the admin API's `rebuildReadModels` while a rebuild runs. */
  RebuildInProgress: 'REBUILD_IN_PROGRESS',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** GraphQL type names of the resources the domain manages. */
export type ResourceType = 'User' | 'Board' | 'Column' | 'Card' | 'Session';

/** How a message names a resource: clients see global IDs, logs may show raw ids. */
export type ResourceIdFormat = (resourceType: ResourceType, id: string) => string;

/** Names a resource by its raw id (the default `message`). */
const rawId: ResourceIdFormat = (_type, id) => id;

/** A message that names resources, written with their ids in a given format. */
export type MessageWithIds = (formatId: ResourceIdFormat) => string;

/** Base of every expected failure of the board domain. */
export abstract class DomainError extends Error {
  abstract readonly code: ErrorCode;
  /** The error's class, e.g. `NotFoundError`. */
  override readonly name: string = this.constructor.name;
  readonly #withIds: MessageWithIds | undefined;

  /**
   * @param message The message; when it names resources, the function that writes it
   *   for an id format (`message` then names them by their raw ids).
   */
  constructor(message: string | MessageWithIds) {
    super(typeof message === 'string' ? message : message(rawId));
    this.#withIds = typeof message === 'string' ? undefined : message;
  }

  /**
   * The message with every resource id written by `formatId`, so the GraphQL layer
   * can show clients the global IDs they know instead of raw ids. Errors that name
   * no resource return `message`.
   */
  describe(formatId: ResourceIdFormat): string {
    return this.#withIds ? this.#withIds(formatId) : this.message;
  }
}

/** An input value breaks a rule; `field` is its path, e.g. `input.title`. */
export class ValidationError extends DomainError {
  readonly code = ErrorCode.Validation;
  constructor(
    /** Path of the offending input value, e.g. `input.title` or `input.labels.3`. */
    readonly field: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * The resource does not exist, or the caller may not know that it does: a
 * non-member gets this for a board, column or card, never `ForbiddenError`.
 */
export class NotFoundError extends DomainError {
  readonly code = ErrorCode.NotFound;
  constructor(
    /** The raw id the caller asked for. */
    readonly id: string,
    /** What kind of resource was looked up. */
    readonly resourceType: ResourceType,
  ) {
    super((formatId) => `${resourceType} ${formatId(resourceType, id)} not found`);
  }
}

/** The caller may see the resource but not do this to it (e.g. a member renaming a board). */
export class ForbiddenError extends DomainError {
  readonly code = ErrorCode.Forbidden;
  constructor(message = 'Only the board owner may do this') {
    super(message);
  }
}

/** The change would leave the board without an owner: every board keeps at least one. */
export class LastOwnerError extends DomainError {
  readonly code = ErrorCode.LastOwner;
  constructor(
    /** Raw id of the board. */
    readonly boardId: string,
  ) {
    super(
      (formatId) =>
        `Board ${formatId('Board', boardId)} would have no owner left: make another member an owner first`,
    );
  }
}

/** The operation needs a signed-in caller (or the caller's user does not exist). */
export class UnauthenticatedError extends DomainError {
  readonly code = ErrorCode.Unauthenticated;
  constructor(message = 'Sign in to do this') {
    super(message);
  }
}

/**
 * The server takes its users from an identity provider (`AUTH_ISSUER`): accounts are
 * created there, and here on the first request carrying one of its tokens.
 */
export class ExternalIdentityError extends DomainError {
  readonly code = ErrorCode.ExternalIdentity;
  constructor(
    /** The provider's issuer URL. */
    readonly issuer: string,
  ) {
    super(
      `Accounts are managed by the identity provider ${issuer}: sign in there and send its token as \`Authorization: Bearer <token>\`.`,
    );
  }
}

/**
 * The username and password do not match: the same answer whether the user does not
 * exist, has no password, or gave another one (no user enumeration).
 */
export class InvalidCredentialsError extends DomainError {
  readonly code = ErrorCode.InvalidCredentials;
  constructor() {
    super('The username or password is wrong.');
  }
}

/** Too many sign-in attempts for one username in the current window. */
export class TooManyAttemptsError extends DomainError {
  readonly code = ErrorCode.TooManyAttempts;
  constructor(readonly retryAfterSeconds: number) {
    super(`Too many sign-in attempts; retry in ${retryAfterSeconds} s.`);
  }
}

/** A card may not enter a column that already holds `wipLimit` live cards. */
export class WipLimitReachedError extends DomainError {
  readonly code = ErrorCode.WipLimitReached;
  constructor(
    readonly columnId: string,
    readonly wipLimit: number,
  ) {
    super(
      (formatId) =>
        `Column ${formatId('Column', columnId)} already holds its limit of ${wipLimit} card${wipLimit === 1 ? '' : 's'}`,
    );
  }
}

/**
 * The board is archived, so it is read-only: every write on it (or on its columns and
 * cards) answers this until its owner restores it (`restoreBoard`).
 */
export class BoardArchivedError extends DomainError {
  readonly code = ErrorCode.BoardArchived;
  constructor(
    /** The archived board's raw id. */
    readonly boardId: string,
  ) {
    super(
      (formatId) =>
        `Board ${formatId('Board', boardId)} is archived: it is read-only until its owner restores it`,
    );
  }
}

/**
 * `archiveColumn` on a column that still holds live cards: archive or move them first
 * (`archiveCard`, `archiveDoneCards`, `moveCard`). Nothing was changed.
 */
export class ColumnNotEmptyError extends DomainError {
  readonly code = ErrorCode.ColumnNotEmpty;
  constructor(
    readonly columnId: string,
    /** Live cards the column holds. */
    readonly cardCount: number,
  ) {
    super(
      (formatId) =>
        `Column ${formatId('Column', columnId)} still holds ${cardCount} live card${cardCount === 1 ? '' : 's'}: archive or move them first`,
    );
  }
}

/** Another user already holds this username (compared after NFKC and lowercasing). */
export class UsernameTakenError extends DomainError {
  readonly code = ErrorCode.UsernameTaken;
  constructor(
    /** The username as the caller asked for it. */
    readonly username: string,
  ) {
    super(`Username ${username} is taken`);
  }
}

/** One change made to a resource after the version a client based its write on. */
export interface ConflictingChange {
  /** Version of the resource this change produced. */
  version: number;
  /** The event type, e.g. `CardEdited`. */
  eventType: string;
  /** GraphQL fields of the resource the change touched, e.g. `['title', 'assignee']`. */
  fields: readonly string[];
  /** The user who made the change, null for the system. */
  actor: string | null;
  at: Date;
}

/**
 * A write was based on a version that is no longer current and the changes since
 * then touch what the write sets (or the client claimed a version the resource
 * never had). `conflicts` lists every change after `expectedVersion`.
 */
export class VersionConflictError extends DomainError {
  readonly code = ErrorCode.VersionConflict;
  readonly resourceType: ResourceType;
  /** Raw id of the resource whose version did not match. */
  readonly resourceId: string;
  /** The event stream of that resource, e.g. `card-<id>`. */
  readonly stream: string;
  readonly expectedVersion: number;
  readonly actualVersion: number;
  readonly conflicts: readonly ConflictingChange[];

  constructor(details: {
    resourceType: ResourceType;
    resourceId: string;
    stream: string;
    expectedVersion: number;
    actualVersion: number;
    conflicts: readonly ConflictingChange[];
  }) {
    super((formatId) => versionConflictMessage(formatId, details));
    this.resourceType = details.resourceType;
    this.resourceId = details.resourceId;
    this.stream = details.stream;
    this.expectedVersion = details.expectedVersion;
    this.actualVersion = details.actualVersion;
    this.conflicts = details.conflicts;
  }
}

function versionConflictMessage(
  formatId: ResourceIdFormat,
  about: Pick<
    VersionConflictError,
    'resourceType' | 'resourceId' | 'expectedVersion' | 'actualVersion'
  >,
): string {
  const id = formatId(about.resourceType, about.resourceId);
  return `${about.resourceType} ${id} is at version ${about.actualVersion}, not ${about.expectedVersion}`;
}

/**
 * A command kept losing races on streams the client did not see (e.g. a busy
 * column) for all of its bounded attempts, and the mutation's contract has no
 * `VersionConflictError` to report it with. Not a `DomainError`: it is an
 * unexpected failure (masked by the GraphQL layer); retrying later with the same
 * idempotency key is safe.
 */
export class RetriesExhaustedError extends Error {
  override readonly name = 'RetriesExhaustedError';
  constructor(
    readonly operation: string,
    readonly attempts: number,
    options?: { cause?: unknown },
  ) {
    super(`${operation}: gave up after ${attempts} attempts lost to concurrent writes`, options);
  }
}
