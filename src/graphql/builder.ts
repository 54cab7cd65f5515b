import { isObjectType } from 'graphql';
import SchemaBuilder from '@pothos/core';
import DataloaderPlugin from '@pothos/plugin-dataloader';
import ErrorsPlugin from '@pothos/plugin-errors';
import RelayPlugin from '@pothos/plugin-relay';
import type { GraphQLContext } from './context.js';

/**
 * The one Pothos builder. It declares the context and scalar types and defines no
 * GraphQL types itself: each feature file defines its own (the Pothos guide's layout).
 */
export const builder = new SchemaBuilder<{
  Context: GraphQLContext;
  Scalars: {
    DateTime: { Input: Date; Output: Date };
    Date: { Input: Date; Output: Date | string };
    Cursor: { Input: string; Output: string };
    ID: { Input: string; Output: string };
  };
  DefaultFieldNullability: false;
  DefaultInputFieldRequiredness: false;
}>({
  plugins: [ErrorsPlugin, RelayPlugin, DataloaderPlugin],
  defaultFieldNullability: false,
  relay: {
    clientMutationId: 'omit',
    cursorType: 'String',
    nodesQueryOptions: false,
    nodeQueryOptions: {
      // A well-formed ID whose type is no node (`Session:…`, `Query:…`, an unknown name)
      // names nothing the caller can see: null, as any node they may not see, not the
      // plugin's internal error ("Session does not support loading by id").
      resolve: (_root, args, _context, info, resolveNode) => {
        const type = info.schema.getType(args.id.typename);
        const isNode = isObjectType(type) && type.getInterfaces().some((i) => i.name === 'Node');
        return isNode ? resolveNode(args.id) : null;
      },
    },
  },
  // A field with errors returns its success type or one of them, as the union named
  // after the field: `signOut` -> `SignOutResult`.
  errors: {
    directResult: true,
    defaultUnionOptions: {
      name: ({ fieldName }) => `${fieldName.charAt(0).toUpperCase()}${fieldName.slice(1)}Result`,
    },
  },
});
