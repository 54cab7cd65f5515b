import type { Context } from '@opentelemetry/api';
import type { ObjectFieldBuilder } from '@pothos/core';
import { KeyedQueueFull } from '../keyedQueue.js';
import { busyError } from './clientLimits.js';
import {
  writesOf,
  type AnyCommandSpec,
  type SuccessOf,
} from '../boards/commandHandling/defineCommand.js';
import type { WrittenResource } from '../boards/commandHandling/results.js';
import type { DomainError } from '../boards/errors.js';
import { committedDoc, type DocOfType } from '../boards/committedDocs.js';
import type { UserDoc } from '../boards/readModel.js';
import type { MaybePromise } from '../boards/reads.js';
import type { StreamKind } from '../boards/streams.js';
import { operationTraceOf } from '../telemetry/graphqlTracing.js';
import { builder } from './builder.js';
import { commandInputOf, inputFieldsOf, type InputField } from './commandInputs.js';
import type { GraphQLContext } from './context.js';
import { BoardRef, CardRef, ColumnRef, UserRef, readNode, viewerIdOf } from './refs.js';

/**
 * Builds a mutation's GraphQL field from its command spec: the input type from the
 * spec's zod schema, the result union from its error list plus the success type,
 * and the success payload from the resources the command wrote. Expected failures
 * are returned as union members (values), never thrown.
 */

const capitalize = (name: string) => name.charAt(0).toUpperCase() + name.slice(1);

/** How a payload shows a resource the command wrote, by the kind of its stream. */
const writtenNodes = {
  user: { ref: UserRef, type: 'User', read: readNode.User },
  board: { ref: BoardRef, type: 'Board', read: readNode.Board },
  column: { ref: ColumnRef, type: 'Column', read: readNode.Column },
  card: { ref: CardRef, type: 'Card', read: readNode.Card },
} as const satisfies Partial<
  Record<
    StreamKind,
    {
      ref: typeof UserRef | typeof BoardRef | typeof ColumnRef | typeof CardRef;
      type: keyof DocOfType;
      read: (ctx: GraphQLContext, id: string) => MaybePromise<object | null>;
    }
  >
>;
type WrittenKind = keyof typeof writtenNodes;

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
  kind: WrittenKind,
  { id, version }: WrittenResource,
): Promise<object> {
  const { type, read } = writtenNodes[kind];
  const { store } = ctx.services;
  const doc =
    (await read(ctx, id)) ??
    (ctx.readModelBehind !== null
      ? await committedDoc(store, type, id, ctx.signal)
      : await committedDoc(store, type, id, ctx.signal, { version }));
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
  /**
   * Fields holding a resource the command wrote, each read (projected) by id, by the kind
   * of its stream. Omitted: those `written(...)` names (see `writesOf`), else none.
   */
  resources?: { [K in ResourceKeys<S>]?: WrittenKind };
  /** Any other fields of the payload. */
  fields?: (t: PayloadFieldBuilder<S>) => Record<string, unknown>;
}

type RunCommand = (
  actorId: string | null,
  input: unknown,
  options: { signal: AbortSignal; trace: Context | undefined; mustNotRefuse: boolean },
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
    result = await run(viewerIdOf(ctx), decoded.value, {
      signal: ctx.signal,
      trace: operationTraceOf(ctx),
      // BUSY means nothing was written: once a field of this operation has written, a
      // later one waits its turn rather than fail the answer that carries that write.
      mustNotRefuse: ctx.wrote,
    });
  } catch (error) {
    if (error instanceof KeyedQueueFull) throw busyError(error);
    throw error;
  }
  if (!result.ok) return result.error;
  ctx.wrote = true;
  if (result.value.position !== null) await ctx.settle(result.value.position);
  return result.value;
}

/**
 * Adds `spec`'s mutation to the schema: `<name>(input: <Name>Input!): <Name>Result!`,
 * where `<Name>Result` is `<Name>Success` or one of `spec.errors`. The payload has a
 * `merged` field whenever the command takes an expected version (a merge can happen).
 */
function commandMutation(spec: AnyCommandSpec, payload: PayloadOptions<object>): void {
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
  const declared: Readonly<Record<string, string>> = payload.resources ?? writesOf(spec) ?? {};
  const resources = Object.entries(declared).map(([field, kind]) => {
    if (!Object.hasOwn(writtenNodes, kind)) {
      throw new Error(`${spec.name}.${field}: a payload cannot show a written ${kind} stream`);
    }
    return [field, kind as WrittenKind] as const;
  });
  const Success = builder.objectRef<Success>(`${name}Success`).implement({
    fields: (t) => ({
      ...Object.fromEntries(
        resources.map(([field, kind]) => [
          field,
          t.field({
            type: writtenNodes[kind].ref as typeof UserRef,
            resolve: async (value, _args, ctx) => {
              return (await readWritten(ctx, kind, value[field] as WrittenResource)) as UserDoc;
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
      errors: { types: spec.errors as unknown as (new (...args: never[]) => Error)[] },
      args: { input: t.arg({ type: InputType, required: true }) },
      // An expected failure is returned as a value; the errors plugin resolves it as
      // its union member, so the success type is not all the resolver may return.
      resolve: (_root, args, ctx) =>
        runCommand(spec.name, input.fields, args.input, ctx) as Promise<Success>,
    }),
  );
}

/** Payloads declared by {@link commandPayload}, by spec. */
const payloads = new Map<AnyCommandSpec, PayloadOptions<object>>();

/**
 * Declares how `spec`'s mutation payload shows its success value, for a command whose
 * payload is not just the resources its `written(...)` names: other fields, or resources
 * of a `succeed` of its own. Takes effect when {@link commandMutations} adds the mutation.
 */
export function commandPayload<S extends AnyCommandSpec>(
  spec: S,
  payload: PayloadOptions<SuccessOf<S>>,
): void {
  payloads.set(spec, payload as PayloadOptions<object>);
}

/**
 * Adds every command's mutation to the schema, each once, from its spec (see
 * `commandMutation`) and the payload declared for it, if any (`commandPayload`).
 */
export function commandMutations(specs: Readonly<Record<string, AnyCommandSpec>>): void {
  const all = Object.values(specs);
  for (const spec of payloads.keys()) {
    if (!all.includes(spec))
      throw new Error(`${spec.name}: a payload for a command that is not a mutation`);
  }
  for (const spec of all) commandMutation(spec, payloads.get(spec) ?? {});
}
