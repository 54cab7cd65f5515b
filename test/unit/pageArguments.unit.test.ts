import { parse } from 'graphql';
import { describe, expect, it } from 'vitest';
import { badPageArgumentOfMutation } from '../../src/graphql/pageArguments.js';
import { buildSchema } from '../../src/graphql/schema.js';

describe('badPageArgumentOfMutation', () => {
  const schema = buildSchema();
  const document = parse(`
    mutation Add($columnId: ID!, $first: Int, $skip: Boolean!) {
      addCard(input: { columnId: $columnId, title: "t" }) {
        ... on AddCardSuccess { column { ...Page } }
      }
    }
    fragment Page on Column {
      cards(first: $first) { edges { cursor } }
      archivedCards(first: -1) @skip(if: $skip) { id }
    }
    query Read { me { id } }
  `);

  it('checks the page arguments of one parsed document afresh for each request: its variables decide', () => {
    const check = (variables: Record<string, unknown>) =>
      badPageArgumentOfMutation(schema, document, 'Add', { columnId: 'c', ...variables });
    expect(check({ first: 5, skip: true })).toBeNull();
    expect(check({ first: -5, skip: true })?.extensions).toMatchObject({ field: 'first' });
    expect(check({ first: 5, skip: false })?.message).toContain('first');
    expect(check({ first: 5, skip: true })).toBeNull();
    // Not a mutation: nothing to check.
    expect(badPageArgumentOfMutation(schema, document, 'Read', {})).toBeNull();
  });
});
