import type { Context } from '@opentelemetry/api';
import type { ObjectFieldBuilder } from '@pothos/core';
import { z } from 'zod';
import { KeyedQueueFull } from '../keyedQueue.js';
import { busyError } from './clientLimits.js';
import type { AnyCommandSpec, SuccessOf } from '../boards/commandHandling/defineCommand.js';
import type { WrittenResource } from '../boards/commandHandling/results.js';
import type { DomainError, ResourceType } from '../boards/errors.js';
import { committedDoc, type DocOfType } from '../boards/committedDocs.js';
import type { UserDoc } from '../boards/readModel.js';
import type { MaybePromise } from '../boards/reads.js';
import { operationTraceOf } from '../telemetry/graphqlTracing.js';
import { builder } from './builder.js';
import type { GraphQLContext } from './context.js';
import { decodeGlobalId } from './globalIds.js';
import { BoardRef, CardRef, ColumnRef, UserRef } from './refs.js';
import { DateScalar, DateTimeScalar } from './scalars.js';

/**
 * Builds a mutation's GraphQL field from its command spec: the input type from the
 * spec's zod schema, the result union from its error list plus the success type,
 * and the success payload from the resources the command wrote. Expected failures
 * are returned as union members (values), never thrown.
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

const capitalize = (name: string) => name.charAt(0).toUpperCase() + name.slice(1);
const viewerId = (ctx: GraphQLContext) => ctx.viewer?._id ?? null;

type NodeRef = typeof UserRef | typeof BoardRef | typeof ColumnRef | typeof CardRef;

/** Reads a written resource for the payload from the read model. */
const readers = new Map<NodeRef, (ctx: GraphQLContext, id: string) => MaybePromise<object | null>>([
  [UserRef, (ctx, id) => ctx.reads.users.load(id)],
  [BoardRef, (ctx, id) => ctx.reads.board(id, viewerId(ctx))],
  [ColumnRef, (ctx, id) => ctx.reads.column(id, viewerId(ctx))],
  [CardRef, (ctx, id) => ctx.reads.card(id, viewerId(ctx))],
]);
const typeOfRef = new Map<NodeRef, keyof DocOfType>([
  [UserRef, 'User'],
  [BoardRef, 'Board'],
  [ColumnRef, 'Column'],
  [CardRef, 'Card'],
]);

/**
 * A written resource for the payload: from the read model, or, when the commit was
 * not projected in time (`ctx.readModelBehind`) and the read model does not have it
 * yet, built from its committed events. When the commit is projected but the read side
 * no longer shows it to the author (they lost access to the board after their commit,
 * a removal racing their write), it is built from the events up to the version the
 * write made: what they wrote, nothing newer. A committed write is never reported as a
 * failure.
 */
async function readWritten(
  ctx: GraphQLContext,
  ref: NodeRef,
  { id, version }: WrittenResource,
): Promise<object> {
  const type = typeOfRef.get(ref)!;
  const { store } = ctx.services;
  const doc =
    (await readers.get(ref)!(ctx, id)) ??
    (ctx.readModelBehind !== null
      ? await committedDoc(store, type, id, ctx.signal)
      : await committedDoc(store, type, id, ctx.signal, version));
  // The command committed and its events hold no such resource: a bug.
  if (!doc) throw new Error(`${type} ${id} not readable after its write`);
  return doc;
}

/** Keys of the success value that hold a written resource. */
type ResourceKeys<S> = { [K in keyof S]: S[K] extends WrittenResource ? K : never }[keyof S];

type BuilderTypes = typeof builder extends PothosSchemaTypes.SchemaBuilder<infer T> ? T : never;
type PayloadFieldBuilder<S> = ObjectFieldBuilder<BuilderTypes, S>;

/** How a mutation's success payload shows the command's success value. */
export interface PayloadOptions<S> {
  /** Fields holding a resource the command wrote, each read (projected) by id. */
  resources: { [K in ResourceKeys<S>]?: NodeRef };
  /** Any other fields of the payload. */
  fields?: (t: PayloadFieldBuilder<S>) => Record<string, unknown>;
}

type RunCommand = (
  actorId: string | null,
  input: unknown,
  options: { signal: AbortSignal; trace: Context | undefined },
) => Promise<{ ok: true; value: { position: number | null } } | { ok: false; error: DomainError }>;

/**
 * Runs a command for the caller: decodes the input's global IDs, runs it, and on
 * success waits (bounded) until the commit is projected, so the payload and the
 * caller's next query reflect the write. Resolves to the success value or the error.
 */
async function runCommand(
  name: string,
  fields: readonly InputField[],
  input: Record<string, unknown>,
  ctx: GraphQLContext,
): Promise<object> {
  const decoded = commandInputOf(fields, input);
  if (!decoded.ok) return decoded.error;
  const run = ctx.services.commands[name as keyof typeof ctx.services.commands] as RunCommand;
  let result;
  try {
    result = await run(viewerId(ctx), decoded.value, {
      signal: ctx.signal,
      trace: operationTraceOf(ctx),
    });
  } catch (error) {
    if (error instanceof KeyedQueueFull) throw busyError(error);
    throw error;
  }
  if (!result.ok) return result.error;
  if (result.value.position !== null) await ctx.settle(result.value.position);
  return result.value;
}

/**
 * Adds `spec`'s mutation to the schema: `<name>(input: <Name>Input!): <Name>Result!`,
 * where `<Name>Result` is `<Name>Success` or one of `spec.errors`. The payload has a
 * `merged` field whenever the command takes an expected version (a merge can happen).
 */
export function commandMutation<S extends AnyCommandSpec>(
  spec: S,
  payload: PayloadOptions<SuccessOf<S>>,
): void {
  const name = capitalize(spec.name);
  const input = inputFieldsOf(spec.input, `${name}Input`);
  const InputType = builder.inputType(`${name}Input`, {
    ...(input.description && { description: input.description }),
    fields: (t) =>
      Object.fromEntries(
        input.fields.map((f) => [
          f.name,
          t.field({
            type: f.enumRef ?? (f.list ? [f.scalar] : f.scalar),
            required: f.required,
            ...(f.description && { description: f.description }),
          }),
        ]),
      ),
  });

  // Typed loosely: the fields are generated, and `payload` is typed by the spec.
  type Success = { [field: string]: unknown; merged?: boolean; replayed?: boolean };
  const resources = Object.entries(payload.resources) as [string, NodeRef][];
  const Success = builder.objectRef<Success>(`${name}Success`).implement({
    fields: (t) => ({
      ...Object.fromEntries(
        resources.map(([field, ref]) => [
          field,
          t.field({
            type: ref as typeof UserRef,
            resolve: async (value, _args, ctx) => {
              return (await readWritten(ctx, ref, value[field] as WrittenResource)) as UserDoc;
            },
          }),
        ]),
      ),
      ...(input.fields.some((f) => f.name === 'idempotencyKey') && {
        replayed: t.boolean({
          description:
            'true when an earlier request with the same idempotencyKey wrote this result, and this one wrote nothing',
          resolve: (value) => value.replayed === true,
        }),
      }),
      ...(spec.expectedVersion && {
        merged: t.boolean({
          description:
            'true when the write went ahead over changes the client had not seen, none of which touched what it sets',
          resolve: (value) => value.merged === true,
        }),
      }),
      ...payload.fields?.(t as never),
    }),
  });

  builder.mutationField(spec.name, (t) =>
    t.field({
      type: Success,
      // The errors plugin builds `<Name>Result` (success type and errors) and passes
      // returned errors through as union members.
      errors: {
        types: spec.errors as unknown as (new (...args: never[]) => Error)[],
        directResult: true,
        union: { name: `${name}Result` },
      },
      args: { input: t.arg({ type: InputType, required: true }) },
      // An expected failure is returned as a value; the errors plugin resolves it as
      // its union member, so the success type is not all the resolver may return.
      resolve: (_root, args, ctx) =>
        runCommand(spec.name, input.fields, args.input, ctx) as Promise<Success>,
    }),
  );
}
