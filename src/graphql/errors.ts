import {
  BoardArchivedError,
  ColumnNotEmptyError,
  DomainError,
  ErrorCode,
  ExternalIdentityError,
  InvalidCredentialsError,
  LastOwnerError,
  TooManyAttemptsError,
  ForbiddenError,
  NotFoundError,
  UnauthenticatedError,
  UsernameTakenError,
  ValidationError,
  VersionConflictError,
  WipLimitReachedError,
} from '../boards/errors.js';
import { builder } from './builder.js';
import { toGlobalId } from './globalIds.js';
import { UserRef } from './refs.js';

/** Expected failures are data: each mutation's result union includes these types. */
export const ErrorCodeEnum = builder.enumType('ErrorCode', {
  description: 'Stable machine-readable kind of an expected failure.',
  values: Object.values(ErrorCode),
});

export const ErrorInterface = builder.interfaceRef<Error & { code: ErrorCode }>('Error').implement({
  description: 'An expected failure, returned as data in a mutation result union.',
  fields: (t) => ({
    code: t.field({ type: ErrorCodeEnum, resolve: (e) => e.code }),
    message: t.string({
      description: 'For people; resources are named by their global IDs.',
      resolve: (e) => (e instanceof DomainError ? e.describe(toGlobalId) : e.message),
    }),
  }),
});

const ConflictingChange = builder
  .objectRef<VersionConflictError['conflicts'][number]>('ConflictingChange')
  .implement({
    description: 'What another writer changed after the version the client saw.',
    fields: (t) => ({
      version: t.exposeInt('version'),
      eventType: t.exposeString('eventType'),
      fields: t.stringList({
        description: 'Fields of the resource that this change touched.',
        resolve: (c) => [...c.fields],
      }),
      actor: t.field({
        type: UserRef,
        nullable: true,
        resolve: (c, _args, ctx) => (c.actor ? ctx.reads.users.load(c.actor) : null),
      }),
      at: t.field({ type: 'DateTime', resolve: (c) => c.at }),
    }),
  });

const errorOptions = <T>(cls: abstract new (...args: never[]) => T, description: string) => ({
  description,
  interfaces: [ErrorInterface],
  isTypeOf: (value: unknown) => value instanceof cls,
});

builder.objectType(VersionConflictError, {
  name: 'VersionConflictError',
  ...errorOptions(
    VersionConflictError,
    'The resource changed since `expectedVersion` in a way that touches this write. Reload, reapply, retry.',
  ),
  fields: (t) => ({
    resourceId: t.id({
      description: 'Global ID of the resource whose version did not match.',
      resolve: (e) => toGlobalId(e.resourceType, e.resourceId),
    }),
    expectedVersion: t.exposeInt('expectedVersion'),
    actualVersion: t.exposeInt('actualVersion'),
    conflicts: t.field({
      type: [ConflictingChange],
      description: 'Every change after `expectedVersion`, oldest first.',
      resolve: (e) => [...e.conflicts],
    }),
  }),
});

builder.objectType(WipLimitReachedError, {
  name: 'WipLimitReachedError',
  ...errorOptions(
    WipLimitReachedError,
    'The column already holds as many live cards as its WIP limit allows.',
  ),
  fields: (t) => ({
    columnId: t.id({ resolve: (e) => toGlobalId('Column', e.columnId) }),
    wipLimit: t.exposeInt('wipLimit'),
  }),
});

builder.objectType(BoardArchivedError, {
  name: 'BoardArchivedError',
  ...errorOptions(
    BoardArchivedError,
    'The board is archived, so read-only: its owner may restore it (restoreBoard).',
  ),
  fields: (t) => ({ boardId: t.id({ resolve: (e) => toGlobalId('Board', e.boardId) }) }),
});

builder.objectType(LastOwnerError, {
  name: 'LastOwnerError',
  ...errorOptions(
    LastOwnerError,
    'The change would leave the board without an owner (removing or demoting its last one): make another member an owner first.',
  ),
  fields: (t) => ({ boardId: t.id({ resolve: (e) => toGlobalId('Board', e.boardId) }) }),
});

builder.objectType(ColumnNotEmptyError, {
  name: 'ColumnNotEmptyError',
  ...errorOptions(
    ColumnNotEmptyError,
    'archiveColumn: the column still holds live cards; archive or move them first.',
  ),
  fields: (t) => ({
    columnId: t.id({ resolve: (e) => toGlobalId('Column', e.columnId) }),
    cardCount: t.exposeInt('cardCount', { description: 'Live cards the column holds.' }),
  }),
});

builder.objectType(UsernameTakenError, {
  name: 'UsernameTakenError',
  ...errorOptions(
    UsernameTakenError,
    'Another user holds this username (compared case-insensitively).',
  ),
  fields: (t) => ({ username: t.exposeString('username') }),
});

builder.objectType(NotFoundError, {
  name: 'NotFoundError',
  ...errorOptions(NotFoundError, 'No such resource, or not one the caller may see.'),
  fields: (t) => ({ id: t.id({ resolve: (e) => toGlobalId(e.resourceType, e.id) }) }),
});

builder.objectType(ForbiddenError, {
  name: 'ForbiddenError',
  ...errorOptions(ForbiddenError, 'The caller may see the resource but not do this to it.'),
  fields: () => ({}),
});

builder.objectType(ValidationError, {
  name: 'ValidationError',
  ...errorOptions(ValidationError, 'An input value breaks a rule; nothing was changed.'),
  fields: (t) => ({
    field: t.exposeString('field', { description: "Input field path, e.g. 'input.title'." }),
  }),
});

builder.objectType(UnauthenticatedError, {
  name: 'UnauthenticatedError',
  ...errorOptions(
    UnauthenticatedError,
    'Send `Authorization: Bearer <token>` (from registerUser).',
  ),
  fields: () => ({}),
});

builder.objectType(ExternalIdentityError, {
  name: 'ExternalIdentityError',
  ...errorOptions(
    ExternalIdentityError,
    'Accounts belong to an identity provider (the server runs with AUTH_ISSUER): sign in there.',
  ),
  fields: (t) => ({ issuer: t.exposeString('issuer') }),
});

builder.objectType(InvalidCredentialsError, {
  name: 'InvalidCredentialsError',
  ...errorOptions(
    InvalidCredentialsError,
    'The username or password is wrong (the same answer for an unknown username).',
  ),
  fields: () => ({}),
});

builder.objectType(TooManyAttemptsError, {
  name: 'TooManyAttemptsError',
  ...errorOptions(TooManyAttemptsError, 'Too many sign-in attempts for this username for now.'),
  fields: (t) => ({ retryAfterSeconds: t.exposeInt('retryAfterSeconds') }),
});
