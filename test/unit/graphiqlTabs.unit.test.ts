import { Kind, parse, validate } from 'graphql';
import { describe, expect, it } from 'vitest';
import { GRAPHIQL_TABS } from '../../src/graphql/graphiqlTabs.js';
import { buildSchema } from '../../src/graphql/schema.js';

describe('GraphiQL tabs', () => {
  it('are each one named operation that is valid against the schema', () => {
    const schema = buildSchema();
    for (const { query } of GRAPHIQL_TABS) {
      const document = parse(query);
      expect(validate(schema, document), query).toEqual([]);
      const operations = document.definitions.filter((d) => d.kind === Kind.OPERATION_DEFINITION);
      expect(operations, query).toHaveLength(1);
    }
    expect(GRAPHIQL_TABS.some((t) => /history\(first:/.test(t.query))).toBe(true);
    expect(GRAPHIQL_TABS.some((t) => /setMemberRole\(input:/.test(t.query))).toBe(true);
  });
});
