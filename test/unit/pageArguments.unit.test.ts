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

  it('checks only the fields that run: a skipped selection, fragment or spread holding a field leaves it out', () => {
    const bad = `history(after: "zzz") { edges { cursor } }`;
    const documents: [string, string][] = [
      [
        'an inline fragment',
        `mutation M($c: ID!, $s: Boolean!) { addCard(input: { columnId: $c, title: "t" }) {
          ... on AddCardSuccess @skip(if: $s) { card { ${bad} } } } }`,
      ],
      [
        'a field holding it',
        `mutation M($c: ID!, $s: Boolean!) { addCard(input: { columnId: $c, title: "t" }) {
          ... on AddCardSuccess { card @skip(if: $s) { ${bad} } } } }`,
      ],
      [
        'the mutation field itself',
        `mutation M($c: ID!, $s: Boolean!) { addCard(input: { columnId: $c, title: "t" })
          @skip(if: $s) { ... on AddCardSuccess { card { ${bad} } } } }`,
      ],
      [
        'a fragment spread',
        `mutation M($c: ID!, $s: Boolean!) { addCard(input: { columnId: $c, title: "t" }) {
          ...P @skip(if: $s) } }
        fragment P on AddCardSuccess { card { ...H } }
        fragment H on Card { ${bad} }`,
      ],
      [
        'a spread inside a fragment',
        `mutation M($c: ID!, $s: Boolean!) { addCard(input: { columnId: $c, title: "t" }) {
          ...P } }
        fragment P on AddCardSuccess { card { ...H @skip(if: $s) } }
        fragment H on Card { ${bad} }`,
      ],
    ];
    for (const [name, text] of documents) {
      const check = (s: boolean) =>
        badPageArgumentOfMutation(schema, parse(text), 'M', { c: 'c', s });
      expect(check(true), name).toBeNull();
      expect(check(false)?.extensions, name).toMatchObject({ field: 'after' });
    }
    // A fragment spread twice runs when one of its spreads is kept.
    const twice = parse(`
      mutation M($c: ID!, $s: Boolean!) {
        a: addCard(input: { columnId: $c, title: "t" }) { ...H @skip(if: $s) }
        b: addCard(input: { columnId: $c, title: "t" }) { ...H @include(if: $s) }
      }
      fragment H on AddCardSuccess { card { ${bad} } }`);
    for (const s of [true, false]) {
      expect(
        badPageArgumentOfMutation(schema, twice, 'M', { c: 'c', s })?.extensions,
      ).toMatchObject({ field: 'after' });
    }
  });
});
