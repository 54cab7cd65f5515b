/**
 * A document's cost prices a page at what the field may answer: `first: 501` written in the
 * document costs what the field serves (500, its cap), as the same through a variable does;
 * a variable costs the cap whatever its value. Every document the SDK sends, every trusted
 * document and every GraphiQL tab fits the limit (at the cap, so at any variable values).
 */
import { readFileSync } from 'node:fs';
import {
  GraphQLError,
  Kind,
  ValidationContext,
  isObjectType,
  parse,
  validate,
  TypeInfo,
  type OperationDefinitionNode,
} from 'graphql';
import { describe, expect, it } from 'vitest';
import { CARD_PAGE } from '../../src/boards/column/graphql.js';
import { HISTORY_PAGE } from '../../src/boards/history/graphql.js';
import { GRAPHIQL_TABS } from '../../src/graphql/graphiqlTabs.js';
import { COST_WEIGHTS, QUERY_LIMITS, QUERY_LIMIT_CODES } from '../../src/graphql/queryLimits.js';
import { operationCost, pagedCostRule, pageSizesOf } from '../../src/graphql/queryCost.js';
import { buildSchema } from '../../src/graphql/schema.js';
import { ARCHIVED_CARDS_PAGE } from '../../src/sdk/archivedLists.js';

const schema = buildSchema();
const rule = pagedCostRule({
  ...COST_WEIGHTS,
  maxCost: QUERY_LIMITS.maxCost,
  code: QUERY_LIMIT_CODES.cost,
});

function costs(source: string): number[] {
  const document = parse(source);
  const context = new ValidationContext(schema, document, new TypeInfo(schema), () => {});
  return document.definitions
    .filter((d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION)
    .map((operation) => operationCost(context, operation, COST_WEIGHTS));
}
const costOf = (source: string) => costs(source)[0]!;
const refusals = (source: string) => validate(schema, parse(source), [rule]);

const history = (first: string) =>
  `query($id: ID!, $n: Int) { node(id: $id) { ... on Board { history(first: ${first}) { edges { node { version operation at actor { username } changes { field from to } } } } } } }`;

describe('the cost of a page', () => {
  it('prices a literal first past the cap as the cap, as a variable is priced', () => {
    const capped = costOf(history(String(HISTORY_PAGE.max)));
    expect(costOf(history(String(HISTORY_PAGE.max + 1)))).toBe(capped);
    expect(costOf(history('100000'))).toBe(capped);
    expect(costOf(history('$n'))).toBe(capped);
    expect(refusals(history(String(HISTORY_PAGE.max + 1)))).toEqual([]);
    // Under the cap, what is asked; nothing asked: the default page.
    expect(costOf(history('2'))).toBeLessThan(capped);
    const omitted = history('1').replace('(first: 1)', '');
    expect(costOf(omitted)).toBeCloseTo(costOf(history(String(HISTORY_PAGE.default))));
  });

  it('caps each paginated field by its own constant', () => {
    const archived = (first: number) =>
      `query($id: ID!) { node(id: $id) { ... on Column { archivedCards(first: ${first}) { id title } } } }`;
    expect(costOf(archived(ARCHIVED_CARDS_PAGE.max + 1))).toBe(
      costOf(archived(ARCHIVED_CARDS_PAGE.max)),
    );
    expect(costOf(archived(ARCHIVED_CARDS_PAGE.max - 1))).toBeLessThan(
      costOf(archived(ARCHIVED_CARDS_PAGE.max)),
    );
    const cards = (args: string) =>
      `query($id: ID!) { node(id: $id) { ... on Column { cards(${args}) { edges { node { id title } } } } } }`;
    expect(costOf(cards(`last: ${CARD_PAGE.max + 1}`))).toBe(
      costOf(cards(`first: ${CARD_PAGE.max}`)),
    );
    expect(costOf(cards(`first: ${CARD_PAGE.max - 1}`))).toBeLessThan(
      costOf(cards(`first: ${CARD_PAGE.max}`)),
    );
  });

  it('still refuses a document whose capped pages nest past the limit, with its code', () => {
    const nested = `query($id: ID!) { node(id: $id) { ... on Column { cards(first: 100000) { edges { node { history(first: $n) { edges { node { version } } } } } } } } }`;
    const errors = refusals(nested.replace('query($id: ID!)', 'query($id: ID!, $n: Int)'));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(GraphQLError);
    expect(errors[0]!.message).toMatch(
      new RegExp(`^Query Cost limit of ${QUERY_LIMITS.maxCost} exceeded, found \\d+\\.$`),
    );
    expect(errors[0]!.extensions.code).toBe(QUERY_LIMIT_CODES.cost);
  });

  it('knows the page sizes of every field that takes first or last', () => {
    const paged: string[] = [];
    for (const type of Object.values(schema.getTypeMap())) {
      // An interface's field is priced where the document names it on an object type.
      if (!isObjectType(type) || type.name.startsWith('__')) continue;
      for (const field of Object.values(type.getFields())) {
        if (!field.args.some((a) => a.name === 'first' || a.name === 'last')) continue;
        expect(pageSizesOf(field.extensions), `${type.name}.${field.name}`).toBeDefined();
        paged.push(`${type.name}.${field.name}`);
      }
    }
    expect(paged).toContain('Column.cards');
    expect(paged).toContain('Card.history');
  });
});

describe('documents the clients send', () => {
  const manifest = JSON.parse(
    readFileSync('src/sdk/generated/trusted/persisted-documents.json', 'utf8'),
  ) as Record<string, string>;

  it('every trusted (SDK) document fits the cost limit at any variable values', () => {
    const documents = Object.entries(manifest);
    expect(documents.length).toBeGreaterThan(20);
    expect(documents.some(([, d]) => /cards\(first: \$cardsPerColumn\)/.test(d))).toBe(true);
    for (const [id, document] of documents) {
      for (const cost of costs(document))
        expect(cost, id).toBeLessThanOrEqual(QUERY_LIMITS.maxCost);
      expect(refusals(document), id).toEqual([]);
    }
  });

  it('every GraphiQL tab fits the cost limit', () => {
    for (const { query } of GRAPHIQL_TABS) {
      expect(costOf(query), query).toBeLessThanOrEqual(QUERY_LIMITS.maxCost);
      expect(refusals(query), query).toEqual([]);
    }
  });
});
