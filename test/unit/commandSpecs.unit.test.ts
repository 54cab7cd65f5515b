import { getNamedType, isUnionType, isObjectType } from 'graphql';
import { describe, expect, expectTypeOf, it } from 'vitest';
import type { moveCard } from '../../src/boards/card/commands.js';
import type { ErrorsOf } from '../../src/boards/commandHandling/defineCommand.js';
import { commandSpecs } from '../../src/boards/commands.js';
import {
  type BoardArchivedError,
  ErrorCode,
  type ForbiddenError,
  type NotFoundError,
  type UnauthenticatedError,
  type ValidationError,
  type VersionConflictError,
  type WipLimitReachedError,
} from '../../src/boards/errors.js';
import { EventStoreErrorCode } from '../../src/eventstore/errors.js';
import { buildSchema } from '../../src/graphql/schema.js';

const specs = Object.values(commandSpecs);
const mutationFields = buildSchema().getMutationType()?.getFields() ?? {};
const capitalized = (name: string) => name.charAt(0).toUpperCase() + name.slice(1);

describe('command specs and the mutations built from them', () => {
  it('builds a mutation for every command spec', () => {
    expect(Object.keys(mutationFields)).toEqual(expect.arrayContaining(specs.map((s) => s.name)));
  });

  it.each(specs)(
    "makes $name's result union exactly its success type and the errors its spec lists",
    (spec) => {
      const result = getNamedType(mutationFields[spec.name]?.type);
      if (!isUnionType(result)) throw new Error(`${spec.name} does not return a union`);
      expect(result.name).toBe(`${capitalized(spec.name)}Result`);
      const members = result.getTypes().map((t) => t.name);
      const expected = [`${capitalized(spec.name)}Success`, ...spec.errors.map((e) => e.name)];
      expect(members.sort()).toEqual(expected.sort());
    },
  );

  it.each(specs)(
    "gives $name's payload a merged flag exactly when it takes an expected version",
    (spec) => {
      const success = buildSchema().getType(`${capitalized(spec.name)}Success`);
      if (!isObjectType(success)) throw new Error(`no ${spec.name} success type`);
      const takesVersion = spec.expectedVersion !== undefined;
      expect('merged' in success.getFields()).toBe(takesVersion);
      const input = buildSchema().getType(`${capitalized(spec.name)}Input`);
      expect(input && 'getFields' in input && 'expectedVersion' in input.getFields()).toBe(
        takesVersion,
      );
    },
  );

  it("derives a command's TypeScript error type from the same list", () => {
    expectTypeOf<ErrorsOf<typeof moveCard>>().toEqualTypeOf<
      | VersionConflictError
      | WipLimitReachedError
      | BoardArchivedError
      | NotFoundError
      | ForbiddenError
      | ValidationError
      | UnauthenticatedError
    >();
  });

  it("keeps the store's error codes apart from the codes clients see", () => {
    const domain = new Set<string>(Object.values(ErrorCode));
    for (const code of Object.values(EventStoreErrorCode)) expect(domain.has(code)).toBe(false);
  });
});
