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
import type { ObjectFieldsShape } from '@pothos/core';
import { builder } from './builder.js';
import { toGlobalId } from './globalIds.js';
import { boundedMessage } from './messageLength.js';
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
      // Cut as every error's message: a NotFoundError names the ID it was sent, whatever its length.
      resolve: (e) => boundedMessage(e instanceof DomainError ? e.describe(toGlobalId) : e.message),
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

type BuilderTypes = typeof builder extends PothosSchemaTypes.SchemaBuilder<infer T> ? T : never;

/**
 * Declares the GraphQL type of a domain error: named after its class, implementing
 * `Error`, matched by `instanceof` when a resolver returns it, with `fields` of its own.
 */
function errorType<T extends DomainError>(
  cls: new (...args: never[]) => T,
  description: string,
  fields: ObjectFieldsShape<BuilderTypes, T> = () => ({}),
) {
  // Pothos checks `interfaces` and `fields` against the class's instance type, which it
  // cannot see through the type parameter: declare it on DomainError, whose fields the
  // interface has; `fields` was checked against T by the caller.
  const param: new () => DomainError = cls;
  builder.objectType(param, {
    name: cls.name,
    description,
    interfaces: [ErrorInterface],
    isTypeOf: (value) => value instanceof cls,
    fields: fields as unknown as ObjectFieldsShape<BuilderTypes, DomainError>,
  });
}

errorType(
  VersionConflictError,
  'The resource changed since `expectedVersion` in a way that touches this write. Reload, reapply, retry.',
  (t) => ({
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
);

errorType(
  WipLimitReachedError,
  'The column already holds as many live cards as its WIP limit allows.',
  (t) => ({
    columnId: t.id({ resolve: (e) => toGlobalId('Column', e.columnId) }),
    wipLimit: t.exposeInt('wipLimit'),
  }),
);

errorType(
  BoardArchivedError,
  'The board is archived, so read-only: its owner may restore it (restoreBoard).',
  (t) => ({ boardId: t.id({ resolve: (e) => toGlobalId('Board', e.boardId) }) }),
);

errorType(
  LastOwnerError,
  'The change would leave the board without an owner (removing or demoting its last one): make another member an owner first.',
  (t) => ({ boardId: t.id({ resolve: (e) => toGlobalId('Board', e.boardId) }) }),
);

errorType(
  ColumnNotEmptyError,
  'archiveColumn: the column still holds live cards; archive or move them first.',
  (t) => ({
    columnId: t.id({ resolve: (e) => toGlobalId('Column', e.columnId) }),
    cardCount: t.exposeInt('cardCount', { description: 'Live cards the column holds.' }),
  }),
);

errorType(
  UsernameTakenError,
  'Another user holds this username (compared case-insensitively).',
  (t) => ({ username: t.exposeString('username') }),
);

errorType(NotFoundError, 'No such resource, or not one the caller may see.', (t) => ({
  id: t.id({ resolve: (e) => toGlobalId(e.resourceType, e.id) }),
}));

errorType(ForbiddenError, 'The caller may see the resource but not do this to it.');

errorType(ValidationError, 'An input value breaks a rule; nothing was changed.', (t) => ({
  field: t.exposeString('field', { description: "Input field path, e.g. 'input.title'." }),
}));

errorType(UnauthenticatedError, 'Send `Authorization: Bearer <token>` (from registerUser).');

errorType(
  ExternalIdentityError,
  'Accounts belong to an identity provider (the server runs with AUTH_ISSUER): sign in there.',
  (t) => ({ issuer: t.exposeString('issuer') }),
);

errorType(
  InvalidCredentialsError,
  'The username or password is wrong (the same answer for an unknown username).',
);

errorType(TooManyAttemptsError, 'Too many sign-in attempts for this username for now.', (t) => ({
  retryAfterSeconds: t.exposeInt('retryAfterSeconds'),
}));
