import { lexicographicSortSchema, printSchema, type GraphQLSchema } from 'graphql';
import { builder } from './builder.js';
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
import '../boards/subscription.js';
import '../ops/graphql.js';

let schema: GraphQLSchema | undefined;

/** The executable schema, built once. */
export function buildSchema(): GraphQLSchema {
  schema ??= builder.toSchema();
  return schema;
}

/** The schema as committed in schema/schema.graphql: SDL, lexicographically sorted. */
export function printSortedSchema(): string {
  return `${printSchema(lexicographicSortSchema(buildSchema()))}\n`;
}
