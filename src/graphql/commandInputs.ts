import { z } from 'zod';
import type { DomainError, ResourceType } from '../boards/errors.js';
import { builder } from './builder.js';
import { decodeGlobalId } from './globalIds.js';
import { DateScalar, DateTimeScalar } from './scalars.js';

/**
 * A command's GraphQL input type, read from its spec's zod schema (its JSON Schema, input
 * side), and the input a client sent as the spec takes it.
 */

type Scalar = 'String' | 'Int' | 'Float' | 'Boolean' | 'ID' | 'Date' | 'DateTime';

/** One field of an input type, as read from the schema's JSON Schema (input side). */
export interface InputField {
  name: string;
  scalar: Scalar;
  list: boolean;
  required: boolean;
  description: string | undefined;
  /** For ids: the resource type whose global ID the field takes and decodes. */
  globalIdOf: ResourceType | undefined;
  /** For a `z.enum`: the GraphQL enum registered for its values (see {@link inputEnum}). */
  enumRef: EnumRef | undefined;
}

type EnumRef = ReturnType<typeof builder.enumType>;

/** GraphQL enums of command inputs, by their values (sorted, joined). */
const inputEnums = new Map<string, EnumRef>();
const enumKey = (values: readonly unknown[]) => [...values].map(String).sort().join('|');

/**
 * Declares the GraphQL enum `name` with `values` and makes every command input field whose
 * zod schema is a `z.enum` of exactly these values take it.
 */
export function inputEnum<const T extends string>(
  name: string,
  values: readonly T[],
  description: string,
) {
  const ref = builder.enumType(name, { description, values: values as T[] });
  inputEnums.set(enumKey(values), ref);
  return ref;
}

interface JsonSchema {
  type?: string | string[];
  anyOf?: JsonSchema[];
  items?: JsonSchema;
  description?: string;
  /** `date` for `z.iso.date()`, `date-time` for `z.iso.datetime()`. */
  format?: string;
  globalIdOf?: ResourceType;
  enum?: unknown[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
}

/** Whether `schema` takes null (`z.….nullable()`). */
function allowsNull(schema: JsonSchema): boolean {
  return (
    [schema.type ?? []].flat().includes('null') ||
    (schema.anyOf ?? []).some((branch) => allowsNull(branch))
  );
}

/** `schema` without its null alternative, and the id type found on either level. */
function nonNull(schema: JsonSchema): JsonSchema {
  const branches = (schema.anyOf ?? []).filter((s) => s.type !== 'null');
  const inner = branches.length === 1 && branches[0] ? branches[0] : schema;
  const types = [inner.type ?? []].flat().filter((t) => t !== 'null');
  return { ...inner, type: types[0], globalIdOf: schema.globalIdOf ?? inner.globalIdOf };
}

function scalarOf(schema: JsonSchema, where: string): Scalar {
  switch (schema.type) {
    case 'string':
      if (schema.globalIdOf) return 'ID';
      // Dates are written in the spec as the strings the domain keeps (`z.iso.date()`,
      // `z.iso.datetime()`); GraphQL checks them with the Date and DateTime scalars.
      if (schema.format === 'date') return 'Date';
      if (schema.format === 'date-time') return 'DateTime';
      return 'String';
    case 'integer':
      return 'Int';
    case 'number':
      return 'Float';
    case 'boolean':
      return 'Boolean';
    case undefined:
    default:
      throw new Error(`${where}: no GraphQL input type for ${JSON.stringify(schema)}`);
  }
}

/** The GraphQL enum of a `z.enum` field; one must be declared (`inputEnum`) for its values. */
function enumOf(schema: JsonSchema, where: string): EnumRef | undefined {
  if (!schema.enum) return undefined;
  const ref = inputEnums.get(enumKey(schema.enum));
  if (!ref) throw new Error(`${where}: no GraphQL enum declared for ${schema.enum.join(', ')}`);
  return ref;
}

/** The fields and description of the GraphQL input type a zod object schema declares. */
export function inputFieldsOf(schema: z.ZodType, where: string) {
  const json = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as JsonSchema;
  const required = new Set(json.required ?? []);
  const fields = Object.entries(json.properties ?? {}).map(([name, property]): InputField => {
    const value = nonNull(property);
    const list = value.type === 'array';
    const item = list ? nonNull(value.items ?? {}) : value;
    return {
      name,
      scalar: scalarOf(item, `${where}.${name}`),
      list,
      // Non-null only when the spec requires it AND refuses null: `.nullable()` makes a
      // nullable field (null clears a value), `.optional()` one the client may leave out.
      required: required.has(name) && !allowsNull(property),
      description: property.description ?? value.description,
      globalIdOf: item.globalIdOf,
      enumRef: enumOf(item, `${where}.${name}`),
    };
  });
  return { description: json.description, fields };
}

/**
 * The string a command spec takes for a date its scalar parsed (`Date` -> `YYYY-MM-DD`,
 * `DateTime` -> `toISOString()`), what `z.iso.date()` / `z.iso.datetime()` accept.
 */
const specFormOfDate: Partial<Record<Scalar, (value: Date) => string>> = {
  Date: (value) => DateScalar.serialize(value),
  DateTime: (value) => DateTimeScalar.serialize(value),
};

/**
 * `input` as the command spec takes it: every global ID replaced by its raw id and every
 * parsed date by its string, or the error to answer with.
 */
export function commandInputOf(
  fields: readonly InputField[],
  input: Record<string, unknown>,
): { ok: true; value: Record<string, unknown> } | { ok: false; error: DomainError } {
  const decoded = { ...input };
  for (const { name, globalIdOf, scalar } of fields) {
    const value = input[name];
    const dateForm = specFormOfDate[scalar];
    if (dateForm) {
      decoded[name] = Array.isArray(value)
        ? value.map((v: unknown) => (v instanceof Date ? dateForm(v) : v))
        : value instanceof Date
          ? dateForm(value)
          : value;
    }
    if (!globalIdOf || typeof value !== 'string') continue;
    const id = decodeGlobalId(value, globalIdOf, `input.${name}`);
    if (!id.ok) return id;
    decoded[name] = id.value;
  }
  return { ok: true, value: decoded };
}
