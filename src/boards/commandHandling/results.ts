import type {
  DomainError,
  ForbiddenError,
  NotFoundError,
  UnauthenticatedError,
  UsernameTakenError,
  ValidationError,
  VersionConflictError,
  WipLimitReachedError,
} from '../errors.js';

/**
 * What a command returns: its success value, or one of the domain errors its
 * mutation's contract lists. Unexpected failures (store unavailable, aborted
 * signal, exhausted retries where no `VersionConflictError` fits) are thrown.
 */
export type CommandResult<S, E extends DomainError> =
  { ok: true; value: S } | { ok: false; error: E };

/** Options of every command. */
export interface CommandOptions {
  /** Aborts the command; passed to every store call. */
  signal?: AbortSignal;
}

/** The commit a successful command made; wait for the projector to reach `position` to read it. */
export interface CommitRef {
  commitId: string;
  /** Position of the commit in the store's global log. */
  position: number;
  /**
   * True when the idempotency key had already committed and this is that first
   * commit's result (nothing new was written).
   */
  replayed: boolean;
}

/** A resource written by a command and its version after the commit. */
export interface WrittenResource {
  id: string;
  version: number;
}

export interface RegisterUserSuccess extends CommitRef {
  user: WrittenResource;
  /** As registered (after NFKC, case kept). */
  username: string;
  displayName: string;
  /**
   * The bearer token: 32 bytes, base64url. Only its `hashToken` is stored, so this
   * is the one chance to hand it out (an idempotent replay derives it again).
   */
  token: string;
}

export interface CreateBoardSuccess extends CommitRef {
  board: WrittenResource;
}

export interface RenameBoardSuccess extends CommitRef {
  board: WrittenResource;
  /** True when the write went ahead over board changes the client had not seen. */
  merged: boolean;
}

export interface AddMemberSuccess extends CommitRef {
  board: WrittenResource;
  merged: boolean;
}

export interface AddColumnSuccess extends CommitRef {
  column: WrittenResource;
  board: WrittenResource;
  merged: boolean;
}

/** Only the board is written: the board owns the column order. */
export interface MoveColumnSuccess extends CommitRef {
  board: WrittenResource;
  merged: boolean;
}

export interface SetWipLimitSuccess extends CommitRef {
  column: WrittenResource;
  merged: boolean;
}

export interface AddCardSuccess extends CommitRef {
  card: WrittenResource;
  column: WrittenResource;
}

export interface EditCardSuccess extends CommitRef {
  card: WrittenResource;
  /** True when the edit was merged over changes the client had not seen. */
  merged: boolean;
}

export interface MoveCardSuccess extends CommitRef {
  card: WrittenResource;
  /** The column the card left; the same as `to` for a move within one column. */
  from: WrittenResource;
  to: WrittenResource;
  merged: boolean;
}

export interface ArchiveCardSuccess extends CommitRef {
  card: WrittenResource;
  /** The column the card was archived from. */
  column: WrittenResource;
  merged: boolean;
}

export interface ArchiveDoneCardsSuccess {
  /** The column, at its new version (or the version read, when nothing was done). */
  column: WrittenResource;
  archivedCount: number;
  /** The archived cards at their new versions, in column order. */
  archivedCards: WrittenResource[];
  /** Null when no card was done: nothing was written. */
  commitId: string | null;
  /** Null when nothing was written. */
  position: number | null;
  replayed: boolean;
}

export type RegisterUserError = UsernameTakenError | ValidationError;
export type CreateBoardError = ValidationError | UnauthenticatedError;
export type RenameBoardError =
  VersionConflictError | NotFoundError | ForbiddenError | ValidationError | UnauthenticatedError;
export type AddMemberError = RenameBoardError;
export type AddColumnError = RenameBoardError;
export type MoveColumnError = RenameBoardError;
export type SetWipLimitError = RenameBoardError;
export type AddCardError =
  WipLimitReachedError | NotFoundError | ForbiddenError | ValidationError | UnauthenticatedError;
export type EditCardError = RenameBoardError;
export type MoveCardError =
  | VersionConflictError
  | WipLimitReachedError
  | NotFoundError
  | ForbiddenError
  | ValidationError
  | UnauthenticatedError;
export type ArchiveCardError = RenameBoardError;
export type ArchiveDoneCardsError = NotFoundError | ForbiddenError | UnauthenticatedError;
