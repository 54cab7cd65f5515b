import { isThenable } from '@pothos/core';
import {
  GraphQLObjectType,
  lexicographicSortSchema,
  printSchema,
  type GraphQLFieldResolver,
  type GraphQLSchema,
} from 'graphql';
import type { ResourceType } from '../boards/errors.js';
import { commandSpecs } from '../boards/commandSpecs.js';
import { builder } from './builder.js';
import { commandMutations } from './commandMutation.js';
import { toGlobalId } from './globalIds.js';
// Feature files register their types on the builder when imported.
import './root.js';
import './scalars.js';
import './errors.js';
import './versioned.js';
import '../boards/user/graphql.js';
import '../boards/session/graphql.js';
import '../boards/board/graphql.js';
import '../boards/column/graphql.js';
import '../boards/card/graphql.js';
import '../boards/history/graphql.js';
import '../boards/subscription.js';
import '../ops/graphql.js';

// Every command's mutation, once the features have declared their payloads.
commandMutations(commandSpecs);

let schema: GraphQLSchema | undefined;

/**
 * Pothos' relay plugin resolves the `id` of every node type with an `async` function:
 * each `id` in an answer was a promise graphql-js had to wait for, which also made the
 * object holding it (and every list of such objects) complete asynchronously. A board
 * of 200 cards had over 400 of them. The raw id is read from the document itself, so
 * the same global ID (`toGlobalId`) is given synchronously instead; an `id` resolver
 * that does return a promise still gets the plugin's own resolver.
 */
function synchronousNodeIds(built: GraphQLSchema): GraphQLSchema {
  for (const type of Object.values(built.getTypeMap())) {
    if (!(type instanceof GraphQLObjectType)) continue;
    if (!type.getInterfaces().some((i) => i.name === 'Node')) continue;
    const rawId = (type.extensions as { pothosOptions?: { id?: { resolve?: unknown } } })
      .pothosOptions?.id?.resolve;
    const field = type.getFields().id;
    if (typeof rawId !== 'function' || !field?.resolve) {
      throw new Error(`node type ${type.name}: no id resolver found to make synchronous`);
    }
    const raw = rawId as GraphQLFieldResolver<unknown, unknown>;
    const relayResolve = field.resolve;
    const typename = type.name as ResourceType;
    field.resolve = (parent, args, context, info) => {
      const id = raw(parent, args, context, info);
      if (isThenable(id)) return relayResolve(parent, args, context, info);
      return toGlobalId(typename, String(id));
    };
  }
  return built;
}

/** The executable schema, built once. */
export function buildSchema(): GraphQLSchema {
  schema ??= synchronousNodeIds(builder.toSchema());
  return schema;
}

/** The schema as committed in schema/schema.graphql: SDL, lexicographically sorted. */
export function printSortedSchema(): string {
  return `${printSchema(lexicographicSortSchema(buildSchema()))}\n`;
}
