import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { GraphQLInputObjectType, isNonNullType } from 'graphql';
import { commandSpecs } from '../../src/boards/commands.js';
import { commandInputOf, inputFieldsOf } from '../../src/graphql/commandInputs.js';
import { DateScalar, DateTimeScalar } from '../../src/graphql/scalars.js';
import { buildSchema } from '../../src/graphql/schema.js';

describe('command inputs as GraphQL input fields', () => {
  it('takes nullability from the spec: .nullable() is a nullable field (null clears), absent-only fields too', () => {
    const { fields } = inputFieldsOf(
      z.object({
        title: z.string(),
        dueDate: z.string().nullable(),
        note: z.string().optional(),
        assigneeId: z.string().nullish(),
      }),
      'TestInput',
    );
    expect(Object.fromEntries(fields.map((f) => [f.name, f.required]))).toEqual({
      title: true,
      dueDate: false,
      note: false,
      assigneeId: false,
    });
  });
});

describe('dates in command inputs', () => {
  const spec = z.object({
    dueDate: z.iso.date().nullable(),
    remindAt: z.iso.datetime(),
    title: z.string(),
  });
  const { fields } = inputFieldsOf(spec, 'DatedInput');

  it('types z.iso.date() as Date and z.iso.datetime() as DateTime, nullability from the spec', () => {
    expect(fields.map((f) => [f.name, f.scalar, f.required])).toEqual([
      ['dueDate', 'Date', false],
      ['remindAt', 'DateTime', true],
      ['title', 'String', true],
    ]);
  });

  it("hands the spec the strings it validates for the dates GraphQL's scalars parsed", () => {
    const parsed = {
      dueDate: DateScalar.parseValue('2026-11-22'),
      remindAt: DateTimeScalar.parseValue('2026-11-22T07:34:11+02:00'),
      title: 't',
    };
    const input = commandInputOf(fields, parsed);
    expect(input).toEqual({
      ok: true,
      value: { dueDate: '2026-11-22', remindAt: '2026-11-22T05:34:11.000Z', title: 't' },
    });
    expect(input.ok && spec.parse(input.value)).toEqual(input.ok && input.value);
    expect(commandInputOf(fields, { ...parsed, dueDate: null })).toMatchObject({
      ok: true,
      value: { dueDate: null },
    });
  });
});

describe('the Date and DateTime scalars', () => {
  it('answers instants as UTC ISO strings with milliseconds, as the contract always has', () => {
    expect(DateTimeScalar.serialize(new Date(Date.UTC(2026, 10, 22, 5, 34, 11)))).toBe(
      '2026-11-22T05:34:11.000Z',
    );
    expect(DateTimeScalar.serialize('2026-11-22T07:34:11+02:00')).toBe('2026-11-22T05:34:11.000Z');
    expect(DateScalar.serialize(new Date(Date.UTC(2026, 10, 22)))).toBe('2026-11-22');
  });

  it('refuses what is not a date, with an error naming the scalar', () => {
    expect(() => DateScalar.parseValue('2026-02-30')).toThrow(/Date cannot represent/);
    expect(() => DateScalar.parseValue('2026-11-22T00:00:00Z')).toThrow(/Date cannot represent/);
    expect(() => DateTimeScalar.parseValue('2026-11-22')).toThrow(/DateTime cannot represent/);
    expect(() => DateTimeScalar.parseValue('2026-11-22T05:34:11')).toThrow(/DateTime/);
  });
});

describe("the schema's command inputs", () => {
  it('make a field non-null exactly when its spec requires it and refuses null', () => {
    const schema = buildSchema();
    for (const spec of Object.values(commandSpecs)) {
      const name = `${spec.name.charAt(0).toUpperCase()}${spec.name.slice(1)}Input`;
      const type = schema.getType(name);
      expect(type, name).toBeInstanceOf(GraphQLInputObjectType);
      const graphqlFields = (type as GraphQLInputObjectType).getFields();
      for (const field of inputFieldsOf(spec.input, name).fields) {
        const graphqlType = graphqlFields[field.name]!.type;
        expect(isNonNullType(graphqlType), `${name}.${field.name}`).toBe(field.required);
        const allowsNull = spec.input
          .safeParse({ [field.name]: null })
          .error?.issues.some((issue) => issue.path[0] === field.name);
        if (field.required) expect(allowsNull, `${name}.${field.name} refuses null`).toBe(true);
      }
    }
  });
});
