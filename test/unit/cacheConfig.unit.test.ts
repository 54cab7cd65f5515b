import { InMemoryCache } from '@apollo/client';
import { buildSchema, isObjectType } from 'graphql';
import { readFileSync } from 'node:fs';
import { describe, expect, it, vi } from 'vitest';
import { corkboardCacheConfig } from '../../src/sdk/apollo.js';
import { embeddedTypes, nodeTypes, possibleTypes } from '../../src/sdk/cacheSchema.js';
import { BoardChangesDocument, BoardMembersDocument } from '../../src/sdk/generated/graphql.js';
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

  it("replaces a board's cached memberships with each write, silently, where a default cache warns that data may be lost", () => {
    const membership = (n: number) => ({
      __typename: 'BoardMembership',
      role: 'EDITOR' as const,
      since: '2026-11-27T00:00:00.000Z',
      user: { __typename: 'User', id: `VXNlcjo${n}`, username: `u${n}`, displayName: `U${n}` },
    });
    const board = (members: number) => ({
      board: {
        __typename: 'Board',
        id: 'Qm9hcmQ6MQ==',
        version: members,
        viewerRole: 'OWNER' as const,
        memberships: Array.from({ length: members }, (_, i) => membership(i + 1)),
      },
    });
    const writes = (cache: InMemoryCache) => {
      const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
      try {
        for (const members of [3, 2]) {
          cache.writeQuery({
            query: BoardMembersDocument,
            variables: { id: 'b' },
            data: board(members),
          });
        }
        const read = cache.readQuery({ query: BoardMembersDocument, variables: { id: 'b' } });
        return { warned: warn.mock.calls.length, read: read?.board?.memberships.length };
      } finally {
        warn.mockRestore();
      }
    };
    expect(
      writes(new InMemoryCache({ possibleTypes: corkboardCacheConfig.possibleTypes })),
    ).toMatchObject({
      warned: 1,
      read: 2,
    });
    expect(writes(new InMemoryCache(corkboardCacheConfig))).toEqual({ warned: 0, read: 2 });
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
