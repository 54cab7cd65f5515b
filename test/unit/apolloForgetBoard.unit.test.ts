import { ApolloClient, ApolloLink, InMemoryCache, gql } from '@apollo/client';
import { describe, expect, it, vi } from 'vitest';
import { corkboardCacheConfig, forgetBoard } from '../../src/sdk/apollo.js';

const BOARDS = gql`
  query CachedBoards {
    boards {
      id
      name
    }
  }
`;

describe("Apollo's forgetBoard", () => {
  it('takes the board out of a cached boards list by reference, leaving no dangling reference and no warning', () => {
    const client = new ApolloClient({
      cache: new InMemoryCache(corkboardCacheConfig),
      link: ApolloLink.empty(),
    });
    client.cache.writeQuery({
      query: BOARDS,
      data: {
        boards: [
          { __typename: 'Board', id: 'Qm9hcmQ6MQ==', name: 'kept' },
          { __typename: 'Board', id: 'Qm9hcmQ6Mg==', name: 'forgotten' },
        ],
      },
    });
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    const error = vi.spyOn(console, 'error').mockImplementation(() => {});
    try {
      forgetBoard(client, 'Qm9hcmQ6Mg==');
      const stored = client.cache.extract() as Record<string, Record<string, unknown>>;
      expect(stored['ROOT_QUERY']!['boards']).toEqual([
        { __ref: client.cache.identify({ __typename: 'Board', id: 'Qm9hcmQ6MQ==' }) },
      ]);
      expect(warn).not.toHaveBeenCalled();
      expect(error).not.toHaveBeenCalled();
    } finally {
      warn.mockRestore();
      error.mockRestore();
    }
  });
});
