/**
 * Type-level tests of the generated SDK and the client: they run as no-ops and
 * fail in `tsc --noEmit` (part of `npm test`) when a result union loses or gains a
 * member, or when a required variable becomes optional.
 */
import { describe, expectTypeOf, it } from 'vitest';
import type { BoardChange } from '../../src/sdk/boardChanges.js';
import { withConflictRetry } from '../../src/sdk/conflicts.js';
import type { CorkboardClient } from '../../src/sdk/createCorkboardClient.js';
import type {
  AddCardInput,
  EditCardInput,
  ErrorCode,
  MoveCardInput,
  MoveCardMutationVariables,
  RegisterUserInput,
} from '../../src/sdk/generated/graphql.js';

type ResultOf<K extends keyof CorkboardClient> = CorkboardClient[K] extends (
  ...args: never[]
) => Promise<infer R>
  ? R
  : never;
type TypenameOf<K extends keyof CorkboardClient> =
  NonNullable<ResultOf<K>> extends {
    __typename: infer T;
  }
    ? T
    : never;
type Member<K extends keyof CorkboardClient, T extends string> = Extract<
  ResultOf<K>,
  { __typename: T }
>;
/** The keys of T that a caller must give. */
type RequiredKeys<T> = { [K in keyof T]-?: object extends Pick<T, K> ? never : K }[keyof T];

/** What every write on a board, its columns or its cards may answer. */
type MemberErrors =
  | 'NotFoundError'
  | 'ForbiddenError'
  | 'ValidationError'
  | 'UnauthenticatedError'
  | 'BoardArchivedError';

describe('the generated SDK types', () => {
  it('types every mutation result as its exact union of success and error members', () => {
    expectTypeOf<TypenameOf<'moveCard'>>().toEqualTypeOf<
      'MoveCardSuccess' | 'VersionConflictError' | 'WipLimitReachedError' | MemberErrors
    >();
    expectTypeOf<TypenameOf<'addCard'>>().toEqualTypeOf<
      'AddCardSuccess' | 'VersionConflictError' | 'WipLimitReachedError' | MemberErrors
    >();
    expectTypeOf<TypenameOf<'editCard'>>().toEqualTypeOf<
      'EditCardSuccess' | 'VersionConflictError' | MemberErrors
    >();
    expectTypeOf<TypenameOf<'archiveCard'>>().toEqualTypeOf<
      'ArchiveCardSuccess' | 'VersionConflictError' | MemberErrors
    >();
    expectTypeOf<TypenameOf<'archiveDoneCards'>>().toEqualTypeOf<
      'ArchiveDoneCardsSuccess' | 'VersionConflictError' | MemberErrors
    >();
    expectTypeOf<TypenameOf<'addColumn'>>().toEqualTypeOf<
      'AddColumnSuccess' | 'VersionConflictError' | MemberErrors
    >();
    expectTypeOf<TypenameOf<'moveColumn'>>().toEqualTypeOf<
      'MoveColumnSuccess' | 'VersionConflictError' | MemberErrors
    >();
    expectTypeOf<TypenameOf<'setWipLimit'>>().toEqualTypeOf<
      'SetWipLimitSuccess' | 'VersionConflictError' | MemberErrors
    >();
    expectTypeOf<TypenameOf<'renameBoard'>>().toEqualTypeOf<
      'RenameBoardSuccess' | 'VersionConflictError' | MemberErrors
    >();
    expectTypeOf<TypenameOf<'addMember'>>().toEqualTypeOf<
      'AddMemberSuccess' | 'VersionConflictError' | MemberErrors
    >();
    expectTypeOf<TypenameOf<'archiveBoard'>>().toEqualTypeOf<
      'ArchiveBoardSuccess' | 'VersionConflictError' | MemberErrors
    >();
    expectTypeOf<TypenameOf<'restoreBoard'>>().toEqualTypeOf<
      'RestoreBoardSuccess' | 'VersionConflictError' | Exclude<MemberErrors, 'BoardArchivedError'>
    >();
    expectTypeOf<TypenameOf<'createBoard'>>().toEqualTypeOf<
      'CreateBoardSuccess' | 'ValidationError' | 'UnauthenticatedError'
    >();
    expectTypeOf<TypenameOf<'registerUser'>>().toEqualTypeOf<
      'RegisterUserSuccess' | 'UsernameTakenError' | 'ValidationError' | 'ExternalIdentityError'
    >();
  });

  it('gives each error member the fields of its error type', () => {
    expectTypeOf<Member<'moveCard', 'VersionConflictError'>>().toMatchObjectType<{
      code: ErrorCode;
      message: string;
      resourceId: string;
      expectedVersion: number;
      actualVersion: number;
    }>();
    expectTypeOf<
      Member<'moveCard', 'VersionConflictError'>['conflicts'][number]
    >().toMatchObjectType<{
      version: number;
      eventType: string;
      fields: string[];
      at: string;
    }>();
    expectTypeOf<Member<'moveCard', 'WipLimitReachedError'>>().toMatchObjectType<{
      columnId: string;
      wipLimit: number;
    }>();
    expectTypeOf<Member<'registerUser', 'UsernameTakenError'>>().toMatchObjectType<{
      username: string;
    }>();
    expectTypeOf<Member<'editCard', 'ValidationError'>>().toMatchObjectType<{ field: string }>();
    expectTypeOf<Member<'editCard', 'NotFoundError'>>().toMatchObjectType<{ id: string }>();
    expectTypeOf<Member<'editCard', 'EditCardSuccess'>>().toMatchObjectType<{ merged: boolean }>();
    expectTypeOf<Member<'registerUser', 'RegisterUserSuccess'>['token']>().toEqualTypeOf<string>();
  });

  it('keeps required variables required', () => {
    expectTypeOf<RequiredKeys<MoveCardInput>>().toEqualTypeOf<
      'cardId' | 'toColumnId' | 'expectedVersion'
    >();
    expectTypeOf<RequiredKeys<EditCardInput>>().toEqualTypeOf<'cardId' | 'expectedVersion'>();
    expectTypeOf<RequiredKeys<AddCardInput>>().toEqualTypeOf<'columnId' | 'title'>();
    expectTypeOf<RequiredKeys<RegisterUserInput>>().toEqualTypeOf<'username' | 'displayName'>();
    expectTypeOf<RequiredKeys<MoveCardMutationVariables>>().toEqualTypeOf<'input'>();

    // Never called: these lines are checked by tsc only.
    const _calls = (client: CorkboardClient) => [
      // @ts-expect-error expectedVersion is required
      client.moveCard({ input: { cardId: 'c', toColumnId: 't' } }),
      // @ts-expect-error a mutation needs its variables
      client.moveCard(),
      // @ts-expect-error the board's id is required
      client.board({}),
      // @ts-expect-error unknown fields are rejected
      client.editCard({ input: { cardId: 'c', expectedVersion: 1, colour: 'red' } }),
      // A query without variables may be called without any.
      client.me(),
      client.boards(undefined, { signal: AbortSignal.timeout(1_000) }),
    ];
  });

  it('types a board change and what withConflictRetry returns', () => {
    expectTypeOf<BoardChange>().toMatchObjectType<{
      cursor: string;
      boardId: string;
      operation: string;
      resyncRequired: boolean;
    }>();
    expectTypeOf<BoardChange['invalidated'][number]>().toMatchObjectType<{
      typename: string;
      id: string;
      fields: string[];
      version: number;
    }>();
    expectTypeOf<ReturnType<CorkboardClient['boardChanges']>>().toEqualTypeOf<
      AsyncGenerator<BoardChange, void, undefined>
    >();
    const _retried = (client: CorkboardClient) =>
      withConflictRetry(
        async () => ({ version: 1, labels: [] as string[] }),
        (card) =>
          client.editCard({ input: { cardId: 'c', expectedVersion: card.version, labels: [] } }),
      );
    expectTypeOf<Awaited<ReturnType<typeof _retried>>>().toEqualTypeOf<ResultOf<'editCard'>>();
  });
});
