// @ts-check
/**
 * graphql-codegen plugin: which object types a normalized cache keys by `id` (the
 * `Node`s) and which it must keep embedded in their parent (every other object type
 * but the root types). `Invalidation` and `NotFoundError` have an `id` that names
 * another resource, so a cache that keys by `id` by default must be told.
 */
import { isObjectType } from 'graphql';

/** @param {import('graphql').GraphQLSchema} schema */
export const plugin = (schema) => {
  const roots = new Set(
    [schema.getQueryType(), schema.getMutationType(), schema.getSubscriptionType()].map(
      (type) => type?.name,
    ),
  );
  const objects = Object.values(schema.getTypeMap())
    .filter(isObjectType)
    .filter((type) => !type.name.startsWith('__') && !roots.has(type.name));
  const isNode = (/** @type {import('graphql').GraphQLObjectType} */ type) =>
    type.getInterfaces().some((i) => i.name === 'Node');
  const names = (/** @type {import('graphql').GraphQLObjectType[]} */ types) =>
    JSON.stringify(types.map((type) => type.name).sort());
  return [
    '/** Object types that implement `Node`: normalized by their global `id`. */',
    `export const nodeTypes: readonly string[] = ${names(objects.filter(isNode))};`,
    '/** Every other object type except the root types: kept embedded in its parent. */',
    `export const embeddedTypes: readonly string[] = ${names(objects.filter((t) => !isNode(t)))};`,
    '',
  ].join('\n');
};
