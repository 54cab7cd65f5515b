import { InMemoryCache } from '@apollo/client';
import { buildSchema, isObjectType } from 'graphql';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { corkboardCacheConfig } from '../../src/sdk/apollo.js';
import { embeddedTypes, nodeTypes, possibleTypes } from '../../src/sdk/cacheSchema.js';
import { BoardChangesDocument } from '../../src/sdk/generated/graphql.js';
import { mergeInvalidations } from '../../src/sdk/liveChanges.js';

const schema = buildSchema(readFileSync('schema/schema.graphql', 'utf8'));

/** A BoardChanges message as the server sends it, with the __typenames Apollo adds. */
const message = {
  boardChanges: {
    __typename: 'BoardChange',
    cursor: '7',
    boardId: 'Qm9hcmQ6MQ==',
    operation: 'moveCard',
    at: '2026-11-27T00:00:00.000Z',
    resyncRequired: false,
    actor: { __typename: 'User', id: 'VXNlcjox', username: 'alice', displayName: 'Alice' },
    invalidated: [
      {
        __typename: 'Invalidation',
        typename: 'Card',
        id: 'Q2FyZDox',
        fields: ['column', 'rank'],
        version: 4,
      },
      {
        __typename: 'Invalidation',
        typename: 'Column',
        id: 'Q29sdW1uOjE=',
        fields: ['cards', 'cardCount'],
        version: 9,
      },
    ],
    changed: [],
    cardEdges: [],
  },
};

describe('the cache configuration shipped with the client', () => {
  it('keeps invalidations embedded where a default Apollo cache normalizes them over the resources they name', () => {
    const write = (cache: InMemoryCache) => {
      cache.writeQuery({ query: BoardChangesDocument, variables: { boardId: 'b' }, data: message });
      return Object.keys(cache.extract());
    };
    expect(write(new InMemoryCache())).toContain('Invalidation:Q2FyZDox');
    const keys = write(new InMemoryCache(corkboardCacheConfig));
    expect(keys.filter((key) => key.startsWith('Invalidation'))).toEqual([]);
    // The actor is a Node: still normalized, by its global id.
    expect(keys).toContain('User:{"id":"VXNlcjox"}');
  });

  it('lists every object type of the schema as a Node or as embedded, and the members of every abstract type', () => {
    const roots = ['Query', 'Mutation', 'Subscription'];
    const objects = Object.values(schema.getTypeMap())
      .filter(isObjectType)
      .filter((type) => !type.name.startsWith('__') && !roots.includes(type.name));
    expect([...nodeTypes, ...embeddedTypes].sort()).toEqual(objects.map((t) => t.name).sort());
    expect(nodeTypes).toEqual(possibleTypes['Node']);
    expect(possibleTypes['Error']).toContain('VersionConflictError');
    expect(embeddedTypes).toEqual(expect.arrayContaining(['Invalidation', 'NotFoundError']));
  });

  it('merges the invalidations of several changes into one per resource: the union of fields, the latest version', () => {
    const change = (version: number, fields: string[]) => ({
      ...message.boardChanges,
      invalidated: [{ typename: 'Card', id: 'c', fields, version }],
    });
    expect(
      mergeInvalidations([change(4, ['title']), change(6, ['done']), change(5, ['title'])]),
    ).toEqual([{ typename: 'Card', id: 'c', fields: ['title', 'done'], version: 6 }]);
  });
});
