import { readFileSync } from 'node:fs';
import { buildSchema as parseSdl, findBreakingChanges } from 'graphql';
import { describe, expect, it } from 'vitest';
import { buildSchema, printSortedSchema } from '../../src/graphql/schema.js';

describe('the GraphQL schema', () => {
  it('matches the committed schema/schema.graphql', async () => {
    await expect(printSortedSchema()).toMatchFileSnapshot('../../schema/schema.graphql');
  });

  it('keeps every name and shape of the public contract (it may only add)', () => {
    const contract = parseSdl(
      readFileSync(new URL('../../schema/contract.graphql', import.meta.url), 'utf8'),
    );
    const breaking = findBreakingChanges(contract, buildSchema()).map(
      (change) => `${change.type}: ${change.description}`,
    );
    expect(breaking).toEqual([]);
  });
});
