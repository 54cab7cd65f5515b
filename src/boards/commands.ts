import { randomBytes } from 'node:crypto';
import type { EventStore } from '../eventstore/types.js';
import { foldEvents } from './aggregates.js';
import { decideBoard } from './board/decide.js';
import { initialBoardState, isMember, type BoardState } from './board/state.js';
import { decideCard } from './card/decide.js';
import { cardFieldsOfChanges, type CardField } from './card/events.js';
import type { CardState } from './card/state.js';
import { decideColumn } from './column/decide.js';
import type { ColumnField } from './column/events.js';
import type { ColumnState } from './column/state.js';
import type { BoardField } from './board/events.js';
import type { Decision } from './decision.js';
import { DomainError, ErrorCode, UnauthenticatedError } from './errors.js';
import { normalizeUsername, userStream } from './streams.js';
import { decideUser } from './user/decide.js';
import { deriveToken, generateToken, hashToken } from './user/token.js';
import {
  addCardInput,
  addColumnInput,
  addMemberInput,
  archiveCardInput,
  archiveDoneCardsInput,
  createBoardInput,
  editCardInput,
  moveCardInput,
  moveColumnInput,
  parseInput,
  registerUserInput,
  renameBoardInput,
  setWipLimitInput,
  type AddCardInput,
  type AddColumnInput,
  type AddMemberInput,
  type ArchiveCardInput,
  type ArchiveDoneCardsInput,
  type CreateBoardInput,
  type EditCardInput,
  type MoveCardInput,
  type MoveColumnInput,
  type RegisterUserInput,
  type RenameBoardInput,
  type SetWipLimitInput,
} from './validation.js';
import { checkExpectedVersion } from './commandHandling/expectedVersion.js';
import type { LoadSession, LoadedStream } from './commandHandling/loadSession.js';
import type {
  AddCardError,
  AddCardSuccess,
  AddColumnError,
  AddColumnSuccess,
  AddMemberError,
  AddMemberSuccess,
  ArchiveCardError,
  ArchiveCardSuccess,
  ArchiveDoneCardsError,
  ArchiveDoneCardsSuccess,
  CommandOptions,
  CommandResult,
  CommitRef,
  CreateBoardError,
  CreateBoardSuccess,
  EditCardError,
  EditCardSuccess,
  MoveCardError,
  MoveCardSuccess,
  MoveColumnError,
  MoveColumnSuccess,
  RegisterUserError,
  RegisterUserSuccess,
  RenameBoardError,
  RenameBoardSuccess,
  SetWipLimitError,
  SetWipLimitSuccess,
} from './commandHandling/results.js';
import {
  BoardOperation,
  headOfKind,
  headsOfKind,
  requestFingerprint,
  runCommand,
  scopeIdempotencyKey,
  type AttemptPlan,
  type CommandRuntime,
  type CommandSpec,
  type CommittedChange,
  type RetryOptions,
} from './commandHandling/runCommand.js';

/** What the board commands are built from. */
export interface BoardCommandsDependencies {
  /** The book of record; commands read and append streams here and nowhere else. */
  store: EventStore;
  /** The clock, passed to deciders. */
  now: () => Date;
  /** Fresh unique ids for new users, boards, columns and cards. */
  newId: () => string;
  /**
   * Secret that tokens of registrations carrying an idempotency key are derived from
   * (HMAC), so that a retry with the same key can return the same token although
   * only its hash is stored. Give the same value to every instance and keep it
   * across restarts. @default a random secret per instance: a retry served by
   * another instance, or after a restart, then fails with an unexpected error
   * instead of returning a token that does not work.
   */
  tokenSecret?: string | Uint8Array;
  /** How commands retry races on streams the client did not see. */
  retry?: RetryOptions;
}

/**
 * The board API's write side, one method per mutation of the public contract.
 *
 * Every method takes the caller's user id (null when anonymous), the mutation's
 * input as the contract declares it, and options; it validates the input, loads
 * the streams it needs from the event store, decides, and appends everything in
 * one commit. It resolves to `{ ok: true, value }` with the ids and new versions of
 * what it wrote and the commit's `commitId` / `position`, or `{ ok: false, error }`
 * with one of the domain errors its contract lists. Unexpected failures reject.
 *
 * Rules common to all:
 * - A caller who is not a member of the board gets `NotFoundError` for whatever it
 *   named (board, column or card), never anything revealing that it exists.
 *   Every method but `registerUser` needs a caller: `UnauthenticatedError` without one.
 * - `expectedVersion` is the version of the resource the client edited. When it is
 *   stale, the write still goes ahead (`merged: true`) if no change since touched a
 *   field the command sets; otherwise `VersionConflictError` lists those changes.
 * - Streams the client did not see (columns a card leaves or enters, the board of a
 *   new column) are appended at the version the command read; if one changed in the
 *   meantime the command is redone on fresh state (bounded), so the WIP limit and
 *   sibling order are always checked against the current state.
 * - `idempotencyKey`, scoped to the caller and the mutation, makes a retry return
 *   the first result (`replayed: true`) without writing anything.
 * - Every commit carries `metadata: { actor, operation }` (and `merged: true` when
 *   it merged).
 */
export interface BoardCommands {
  /**
   * Registers a user and hands out its bearer token. The username is unique after
   * NFKC and lowercasing, enforced by the store (`username-<normalized>` appended
   * with `NO_STREAM` in the same commit).
   */
  registerUser(
    actorId: string | null,
    input: RegisterUserInput,
    options?: CommandOptions,
  ): Promise<CommandResult<RegisterUserSuccess, RegisterUserError>>;
  /** Creates a board owned by the caller, who is its first member. */
  createBoard(
    actorId: string | null,
    input: CreateBoardInput,
    options?: CommandOptions,
  ): Promise<CommandResult<CreateBoardSuccess, CreateBoardError>>;
  /** Renames a board. Owner only (`ForbiddenError` for other members). Sets `name`. */
  renameBoard(
    actorId: string | null,
    input: RenameBoardInput,
    options?: CommandOptions,
  ): Promise<CommandResult<RenameBoardSuccess, RenameBoardError>>;
  /**
   * Adds the user holding `username` to the board. Owner only. `ValidationError` on
   * `input.username` when nobody has it or they are a member already. Sets `members`.
   */
  addMember(
    actorId: string | null,
    input: AddMemberInput,
    options?: CommandOptions,
  ): Promise<CommandResult<AddMemberSuccess, AddMemberError>>;
  /**
   * Adds a column to the board, after `afterColumnId` / before `beforeColumnId`
   * (both omitted: at the end). `expectedVersion` is the board's. Sets `columns`.
   */
  addColumn(
    actorId: string | null,
    input: AddColumnInput,
    options?: CommandOptions,
  ): Promise<CommandResult<AddColumnSuccess, AddColumnError>>;
  /**
   * Moves a column after `afterColumnId` / before `beforeColumnId` (both omitted: to
   * the end). `expectedVersion` is the BOARD's: the board owns the column order.
   * Sets the board's `columns`.
   */
  moveColumn(
    actorId: string | null,
    input: MoveColumnInput,
    options?: CommandOptions,
  ): Promise<CommandResult<MoveColumnSuccess, MoveColumnError>>;
  /**
   * Sets or clears (null) a column's WIP limit. Sets `wipLimit`, so it merges over
   * cards entering or leaving the column since the client's version.
   */
  setWipLimit(
    actorId: string | null,
    input: SetWipLimitInput,
    options?: CommandOptions,
  ): Promise<CommandResult<SetWipLimitSuccess, SetWipLimitError>>;
  /**
   * Adds a card to a column, after `afterCardId` / before `beforeCardId` (both
   * omitted: at the end). `WipLimitReachedError` when the column is full. No
   * expected version: the column is checked at the version read.
   */
  addCard(
    actorId: string | null,
    input: AddCardInput,
    options?: CommandOptions,
  ): Promise<CommandResult<AddCardSuccess, AddCardError>>;
  /** Changes the given fields of a card; merges over changes to other fields. */
  editCard(
    actorId: string | null,
    input: EditCardInput,
    options?: CommandOptions,
  ): Promise<CommandResult<EditCardSuccess, EditCardError>>;
  /**
   * Moves a card within its column or to another column of its board, in one
   * commit over the card and both columns. Entering a full column is refused
   * (`WipLimitReachedError`); moving within a column never is. Sets the card's
   * `column` and `rank`.
   */
  moveCard(
    actorId: string | null,
    input: MoveCardInput,
    options?: CommandOptions,
  ): Promise<CommandResult<MoveCardSuccess, MoveCardError>>;
  /** Archives a card: it leaves its column's live cards. Sets `archived`. */
  archiveCard(
    actorId: string | null,
    input: ArchiveCardInput,
    options?: CommandOptions,
  ): Promise<CommandResult<ArchiveCardSuccess, ArchiveCardError>>;
  /**
   * Archives every done live card of a column in one commit (the column and each
   * card at the version read). Writes nothing when no card is done. Limited by the
   * store's events per commit (999 cards).
   */
  archiveDoneCards(
    actorId: string | null,
    input: ArchiveDoneCardsInput,
    options?: CommandOptions,
  ): Promise<CommandResult<ArchiveDoneCardsSuccess, ArchiveDoneCardsError>>;
}

const defaultRetry: Required<RetryOptions> = {
  maxAttempts: 10,
  backoffMs: (attempt) => Math.random() * Math.min(100, 2 ** attempt),
};

/** Domain errors each mutation's contract lists; any other error rejects. */
const expectedErrors = {
  registerUser: [ErrorCode.UsernameTaken, ErrorCode.Validation],
  createBoard: [ErrorCode.Validation, ErrorCode.Unauthenticated],
  versioned: [
    ErrorCode.VersionConflict,
    ErrorCode.NotFound,
    ErrorCode.Forbidden,
    ErrorCode.Validation,
    ErrorCode.Unauthenticated,
  ],
  addCard: [
    ErrorCode.WipLimitReached,
    ErrorCode.NotFound,
    ErrorCode.Forbidden,
    ErrorCode.Validation,
    ErrorCode.Unauthenticated,
  ],
  moveCard: [
    ErrorCode.VersionConflict,
    ErrorCode.WipLimitReached,
    ErrorCode.NotFound,
    ErrorCode.Forbidden,
    ErrorCode.Validation,
    ErrorCode.Unauthenticated,
  ],
  archiveDoneCards: [
    ErrorCode.NotFound,
    ErrorCode.Forbidden,
    ErrorCode.Validation,
    ErrorCode.Unauthenticated,
  ],
} as const satisfies Record<string, readonly ErrorCode[]>;

/**
 * Runs `command` and turns the domain errors in `expected` into `{ ok: false }`;
 * any other error (including a domain error the mutation's contract does not list,
 * which would be a bug) rejects.
 */
async function toResult<S, E extends DomainError>(
  expected: readonly ErrorCode[],
  command: () => Promise<S>,
): Promise<CommandResult<S, E>> {
  try {
    return { ok: true, value: await command() };
  } catch (error) {
    if (error instanceof DomainError && expected.includes(error.code)) {
      return { ok: false, error: error as E };
    }
    throw error;
  }
}

function requireActor(actorId: string | null): string {
  if (actorId === null) throw new UnauthenticatedError();
  return actorId;
}

function append<S>(decision: Decision, merged = false): AttemptPlan<S> {
  return { kind: 'append', decision, merged };
}

function commitRef(commit: CommittedChange): CommitRef {
  return { commitId: commit.commitId, position: commit.position, replayed: commit.replayed };
}

/** A column and its board; the board reads as absent when the column is. */
async function loadColumnAndBoard(
  session: LoadSession,
  columnId: string,
): Promise<{ column: LoadedStream<'column'>; board: BoardState }> {
  const column = await session.load('column', columnId);
  if (column.state.status !== 'active') return { column, board: initialBoardState };
  const board = await session.load('board', column.state.boardId);
  return { column, board: board.state };
}

/** A card and its board; the board reads as absent when the card is. */
async function loadCardAndBoard(
  session: LoadSession,
  cardId: string,
): Promise<{ card: LoadedStream<'card'>; board: BoardState }> {
  const card = await session.load('card', cardId);
  if (card.state.status === 'absent') return { card, board: initialBoardState };
  const board = await session.load('board', card.state.boardId);
  return { card, board: board.state };
}

/**
 * Builds the board API's command handlers on an event store.
 *
 * @example
 * const commands = createBoardCommands({ store, now: () => new Date(), newId: randomUUID });
 * const result = await commands.addCard(userId, { columnId, title: 'Ship it' });
 * if (result.ok) await projector.waitFor(result.value.position);
 */
export function createBoardCommands(deps: BoardCommandsDependencies): BoardCommands {
  const { store } = deps;
  const runtime: CommandRuntime = {
    store,
    now: deps.now,
    newId: deps.newId,
    retry: { ...defaultRetry, ...deps.retry },
  };
  const tokenSecret = deps.tokenSecret ?? randomBytes(32);

  /** Runs a command of a signed-in caller, its idempotency key scoped to them. */
  function runAs<S>(
    operation: BoardOperation,
    actor: string,
    idempotencyKey: string | undefined,
    options: CommandOptions,
    rest: Pick<CommandSpec<S>, 'input' | 'plan' | 'succeed' | 'conflictWhenExhausted'>,
  ): Promise<S> {
    return runCommand(runtime, {
      operation,
      actorId: actor,
      idempotencyKey: scopeIdempotencyKey(operation, actor, idempotencyKey),
      signal: options.signal,
      ...rest,
    });
  }

  return {
    registerUser: (actorId, input, options = {}) =>
      toResult(expectedErrors.registerUser, async () => {
        const operation = BoardOperation.RegisterUser;
        const { username, displayName, idempotencyKey } = parseInput(registerUserInput, input);
        const normalized = normalizeUsername(username);
        // Anonymous callers share one scope, so the username joins it.
        const key = scopeIdempotencyKey(operation, actorId, idempotencyKey, normalized);
        // A replay may hand back a token only to the very request that minted it: the
        // token is derived from the key AND the whole input, and the store replays the key
        // only for that same input (another one gets a ValidationError).
        const token =
          key === undefined
            ? generateToken()
            : deriveToken(tokenSecret, `${key}:${requestFingerprint(operation, actorId, input)}`);
        const { signal } = options;
        return runCommand<RegisterUserSuccess>(runtime, {
          operation,
          actorId,
          idempotencyKey: key,
          signal,
          input,
          conflictWhenExhausted: false,
          plan: async (session, context) => {
            const claim = await session.load('username', normalized);
            const tokenHash = hashToken(token);
            const command = {
              type: 'RegisterUser',
              data: { username, displayName, tokenHash },
            } as const;
            return append(decideUser(command, { claim: claim.state }, context));
          },
          succeed: async (commit) => {
            const user = headOfKind(commit.heads, 'user');
            if (!commit.replayed) {
              return { ...commitRef(commit), user, username, displayName, token };
            }
            // The first registration's data, and its token derived again from the same key.
            const events = await store.readStream(userStream(user.id), { signal });
            const state = foldEvents('user', events);
            if (state.status !== 'registered' || state.tokenHash !== hashToken(token)) {
              throw new Error(
                'registerUser replay: cannot derive the token again (tokenSecret changed)',
              );
            }
            return {
              ...commitRef(commit),
              user,
              username: state.username,
              displayName: state.displayName,
              token,
            };
          },
        });
      }),

    createBoard: (actorId, input, options = {}) =>
      toResult(expectedErrors.createBoard, async () => {
        const actor = requireActor(actorId);
        const { name, idempotencyKey } = parseInput(createBoardInput, input);
        return runAs<CreateBoardSuccess>(
          BoardOperation.CreateBoard,
          actor,
          idempotencyKey,
          options,
          {
            input,
            conflictWhenExhausted: false,
            plan: async (session, context) => {
              const user = await session.load('user', actor);
              if (user.state.status !== 'registered') {
                throw new UnauthenticatedError('The signed-in user does not exist');
              }
              const command = { type: 'CreateBoard', data: { actorId: actor, name } } as const;
              return append(decideBoard(command, initialBoardState, context));
            },
            succeed: (commit) => ({
              ...commitRef(commit),
              board: headOfKind(commit.heads, 'board'),
            }),
          },
        );
      }),

    renameBoard: (actorId, input, options = {}) =>
      toResult(expectedErrors.versioned, async () => {
        const actor = requireActor(actorId);
        const { boardId, name, expectedVersion, idempotencyKey } = parseInput(
          renameBoardInput,
          input,
        );
        return runAs<RenameBoardSuccess>(
          BoardOperation.RenameBoard,
          actor,
          idempotencyKey,
          options,
          {
            input,
            conflictWhenExhausted: true,
            plan: async (session, context) => {
              const board = await session.load('board', boardId);
              const command = {
                type: 'RenameBoard',
                data: { actorId: actor, boardId, name },
              } as const;
              const decision = decideBoard(command, board.state, context);
              const sets: BoardField[] = ['name'];
              return append(decision, checkExpectedVersion(board, expectedVersion, sets).merged);
            },
            succeed: (commit) => ({
              ...commitRef(commit),
              board: headOfKind(commit.heads, 'board'),
              merged: commit.merged,
            }),
          },
        );
      }),

    addMember: (actorId, input, options = {}) =>
      toResult(expectedErrors.versioned, async () => {
        const actor = requireActor(actorId);
        const { boardId, username, expectedVersion, idempotencyKey } = parseInput(
          addMemberInput,
          input,
        );
        return runAs<AddMemberSuccess>(BoardOperation.AddMember, actor, idempotencyKey, options, {
          input,
          conflictWhenExhausted: true,
          plan: async (session, context) => {
            const [board, claim] = await Promise.all([
              session.load('board', boardId),
              session.load('username', normalizeUsername(username)),
            ]);
            const userId = claim.state.status === 'claimed' ? claim.state.userId : null;
            const command = {
              type: 'AddMember',
              data: { actorId: actor, boardId, username, userId },
            } as const;
            const decision = decideBoard(command, board.state, context);
            const sets: BoardField[] = ['members'];
            return append(decision, checkExpectedVersion(board, expectedVersion, sets).merged);
          },
          succeed: (commit) => ({
            ...commitRef(commit),
            board: headOfKind(commit.heads, 'board'),
            merged: commit.merged,
          }),
        });
      }),

    addColumn: (actorId, input, options = {}) =>
      toResult(expectedErrors.versioned, async () => {
        const actor = requireActor(actorId);
        const { boardId, expectedVersion, idempotencyKey, ...data } = parseInput(
          addColumnInput,
          input,
        );
        return runAs<AddColumnSuccess>(BoardOperation.AddColumn, actor, idempotencyKey, options, {
          input,
          conflictWhenExhausted: true,
          plan: async (session, context) => {
            const board = await session.load('board', boardId);
            const command = {
              type: 'AddColumn',
              data: { actorId: actor, boardId, ...data },
            } as const;
            const decision = decideBoard(command, board.state, context);
            const sets: BoardField[] = ['columns'];
            return append(decision, checkExpectedVersion(board, expectedVersion, sets).merged);
          },
          succeed: (commit) => ({
            ...commitRef(commit),
            column: headOfKind(commit.heads, 'column'),
            board: headOfKind(commit.heads, 'board'),
            merged: commit.merged,
          }),
        });
      }),

    moveColumn: (actorId, input, options = {}) =>
      toResult(expectedErrors.versioned, async () => {
        const actor = requireActor(actorId);
        const { columnId, expectedVersion, idempotencyKey, ...placement } = parseInput(
          moveColumnInput,
          input,
        );
        return runAs<MoveColumnSuccess>(BoardOperation.MoveColumn, actor, idempotencyKey, options, {
          input,
          conflictWhenExhausted: true,
          plan: async (session, context) => {
            const column = await session.load('column', columnId);
            const board =
              column.state.status === 'active'
                ? await session.load('board', column.state.boardId)
                : null;
            const command = {
              type: 'MoveColumn',
              data: { actorId: actor, columnId, ...placement },
            } as const;
            const decision = decideBoard(command, board?.state ?? initialBoardState, context);
            if (!board) throw new Error('unreachable: MoveColumn decided without a board');
            const sets: BoardField[] = ['columns'];
            return append(decision, checkExpectedVersion(board, expectedVersion, sets).merged);
          },
          succeed: (commit) => ({
            ...commitRef(commit),
            board: headOfKind(commit.heads, 'board'),
            merged: commit.merged,
          }),
        });
      }),

    setWipLimit: (actorId, input, options = {}) =>
      toResult(expectedErrors.versioned, async () => {
        const actor = requireActor(actorId);
        const { columnId, wipLimit, expectedVersion, idempotencyKey } = parseInput(
          setWipLimitInput,
          input,
        );
        return runAs<SetWipLimitSuccess>(
          BoardOperation.SetWipLimit,
          actor,
          idempotencyKey,
          options,
          {
            input,
            conflictWhenExhausted: true,
            plan: async (session, context) => {
              const { column, board } = await loadColumnAndBoard(session, columnId);
              const command = {
                type: 'SetWipLimit',
                data: { actorId: actor, columnId, wipLimit },
              } as const;
              const decision = decideColumn(command, { column: column.state, board }, context);
              const sets: ColumnField[] = ['wipLimit'];
              return append(decision, checkExpectedVersion(column, expectedVersion, sets).merged);
            },
            succeed: (commit) => ({
              ...commitRef(commit),
              column: headOfKind(commit.heads, 'column'),
              merged: commit.merged,
            }),
          },
        );
      }),

    addCard: (actorId, input, options = {}) =>
      toResult(expectedErrors.addCard, async () => {
        const actor = requireActor(actorId);
        const { columnId, idempotencyKey, ...data } = parseInput(addCardInput, input);
        return runAs<AddCardSuccess>(BoardOperation.AddCard, actor, idempotencyKey, options, {
          input,
          conflictWhenExhausted: false,
          plan: async (session, context) => {
            const { column, board } = await loadColumnAndBoard(session, columnId);
            const command = {
              type: 'AddCard',
              data: { actorId: actor, columnId, ...data },
            } as const;
            return append(decideColumn(command, { column: column.state, board }, context));
          },
          succeed: (commit) => ({
            ...commitRef(commit),
            card: headOfKind(commit.heads, 'card'),
            column: headOfKind(commit.heads, 'column'),
          }),
        });
      }),

    editCard: (actorId, input, options = {}) =>
      toResult(expectedErrors.versioned, async () => {
        const actor = requireActor(actorId);
        const { cardId, expectedVersion, idempotencyKey, changes } = parseInput(
          editCardInput,
          input,
        );
        return runAs<EditCardSuccess>(BoardOperation.EditCard, actor, idempotencyKey, options, {
          input,
          conflictWhenExhausted: true,
          plan: async (session, context) => {
            const { card, board } = await loadCardAndBoard(session, cardId);
            const command = {
              type: 'EditCard',
              data: { actorId: actor, cardId, changes },
            } as const;
            const decision = decideCard(
              command,
              { card: card.state, board, columns: new Map() },
              context,
            );
            const sets = cardFieldsOfChanges(changes);
            return append(decision, checkExpectedVersion(card, expectedVersion, sets).merged);
          },
          succeed: (commit) => ({
            ...commitRef(commit),
            card: headOfKind(commit.heads, 'card'),
            merged: commit.merged,
          }),
        });
      }),

    moveCard: (actorId, input, options = {}) =>
      toResult(expectedErrors.moveCard, async () => {
        const actor = requireActor(actorId);
        const { cardId, toColumnId, expectedVersion, idempotencyKey, ...placement } = parseInput(
          moveCardInput,
          input,
        );
        return runAs<MoveCardSuccess>(BoardOperation.MoveCard, actor, idempotencyKey, options, {
          input,
          conflictWhenExhausted: true,
          plan: async (session, context) => {
            const { card, board } = await loadCardAndBoard(session, cardId);
            const columns = new Map<string, ColumnState>();
            if (card.state.status !== 'absent' && isMember(board, actor)) {
              const [from, to] = await Promise.all([
                session.load('column', card.state.columnId),
                session.load('column', toColumnId),
              ]);
              columns.set(from.id, from.state).set(to.id, to.state);
            }
            const command = {
              type: 'MoveCard',
              data: { actorId: actor, cardId, toColumnId, ...placement },
            } as const;
            const decision = decideCard(command, { card: card.state, board, columns }, context);
            const sets: CardField[] = ['column', 'rank'];
            return append(decision, checkExpectedVersion(card, expectedVersion, sets).merged);
          },
          succeed: (commit) => {
            const [from, to] = headsOfKind(commit.heads, 'column');
            if (!from) throw new Error('moveCard commit has no column stream');
            return {
              ...commitRef(commit),
              card: headOfKind(commit.heads, 'card'),
              from,
              to: to ?? from,
              merged: commit.merged,
            };
          },
        });
      }),

    archiveCard: (actorId, input, options = {}) =>
      toResult(expectedErrors.versioned, async () => {
        const actor = requireActor(actorId);
        const { cardId, expectedVersion, idempotencyKey } = parseInput(archiveCardInput, input);
        return runAs<ArchiveCardSuccess>(
          BoardOperation.ArchiveCard,
          actor,
          idempotencyKey,
          options,
          {
            input,
            conflictWhenExhausted: true,
            plan: async (session, context) => {
              const { card, board } = await loadCardAndBoard(session, cardId);
              const columns = new Map<string, ColumnState>();
              if (card.state.status === 'live' && isMember(board, actor)) {
                const column = await session.load('column', card.state.columnId);
                columns.set(column.id, column.state);
              }
              const command = { type: 'ArchiveCard', data: { actorId: actor, cardId } } as const;
              const decision = decideCard(command, { card: card.state, board, columns }, context);
              const sets: CardField[] = ['archived'];
              return append(decision, checkExpectedVersion(card, expectedVersion, sets).merged);
            },
            succeed: (commit) => ({
              ...commitRef(commit),
              card: headOfKind(commit.heads, 'card'),
              column: headOfKind(commit.heads, 'column'),
              merged: commit.merged,
            }),
          },
        );
      }),

    archiveDoneCards: (actorId, input, options = {}) =>
      toResult(expectedErrors.archiveDoneCards, async () => {
        const actor = requireActor(actorId);
        const { columnId, idempotencyKey } = parseInput(archiveDoneCardsInput, input);
        return runAs<ArchiveDoneCardsSuccess>(
          BoardOperation.ArchiveDoneCards,
          actor,
          idempotencyKey,
          options,
          {
            input,
            conflictWhenExhausted: false,
            plan: async (session, context) => {
              const { column, board } = await loadColumnAndBoard(session, columnId);
              const cards = new Map<string, CardState>();
              if (column.state.status === 'active' && isMember(board, actor)) {
                const loaded = await Promise.all(
                  column.state.cards.map((c) => session.load('card', c.id)),
                );
                for (const card of loaded) cards.set(card.id, card.state);
              }
              const command = {
                type: 'ArchiveDoneCards',
                data: { actorId: actor, columnId },
              } as const;
              const decision = decideColumn(
                command,
                { column: column.state, board, cards },
                context,
              );
              if (decision.length > 0) return append(decision);
              return {
                kind: 'done',
                value: {
                  column: { id: columnId, version: column.version },
                  archivedCount: 0,
                  archivedCards: [],
                  commitId: null,
                  position: null,
                  replayed: false,
                },
              };
            },
            succeed: (commit) => {
              const archivedCards = headsOfKind(commit.heads, 'card');
              return {
                column: headOfKind(commit.heads, 'column'),
                archivedCount: archivedCards.length,
                archivedCards,
                commitId: commit.commitId,
                position: commit.position,
                replayed: commit.replayed,
              };
            },
          },
        );
      }),
  };
}
