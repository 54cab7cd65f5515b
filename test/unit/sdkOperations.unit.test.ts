/**
 * The client's operations map is generated from the operation documents: every query of
 * src/sdk/operations and every generated mutation document is a method of the client,
 * resolving to its root field, and every subscription is served by a live method of the
 * client. Every mutation of the schema but the admin API's has its document.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  buildSchema,
  Kind,
  OperationTypeNode,
  parse,
  type DocumentNode,
  type OperationDefinitionNode,
} from 'graphql';
import { describe, expect, it } from 'vitest';
// @ts-expect-error: a plain-JS codegen plugin, typed by its JSDoc only.
import { plugin } from '../../scripts/codegen/operations.js';
import { createCorkboardClient } from '../../src/sdk/createCorkboardClient.js';
import { operations } from '../../src/sdk/generated/operations.js';

const dir = 'src/sdk/operations';
const files = [
  ...readdirSync(dir)
    .filter((file) => file.endsWith('.graphql'))
    .map((file) => join(dir, file)),
  'src/sdk/generated/mutations.graphql',
];
const definitions: OperationDefinitionNode[] = files
  .flatMap((file) => parse(readFileSync(file, 'utf8')).definitions)
  .filter((d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION);

const camel = (name: string) => name.charAt(0).toLowerCase() + name.slice(1);
const operationNameOf = (document: DocumentNode) =>
  document.definitions
    .filter((d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION)
    .map((d) => d.name?.value);

describe('the SDK operations map', () => {
  const client = createCorkboardClient({ url: 'http://localhost:1/graphql' });
  const live = new Set(['boardChanges']);

  it('has one entry per query and mutation document, and nothing else', () => {
    const expected = definitions
      .filter((d) => d.operation !== OperationTypeNode.SUBSCRIPTION)
      .map((d) => camel(d.name!.value))
      .sort();
    expect(expected.length).toBeGreaterThan(20);
    expect(Object.keys(operations).sort()).toEqual(expected);
  });

  it("maps each to its own document and its root field's response key", () => {
    for (const definition of definitions.filter(
      (d) => d.operation !== OperationTypeNode.SUBSCRIPTION,
    )) {
      const name = definition.name!.value;
      const entry = operations[camel(name) as keyof typeof operations];
      expect(operationNameOf(entry.document)).toEqual([name]);
      const [root] = definition.selectionSet.selections;
      expect(root?.kind).toBe(Kind.FIELD);
      if (root?.kind === Kind.FIELD) expect(entry.field).toBe((root.alias ?? root.name).value);
    }
  });

  it("has a document for every mutation of the schema but the admin API's", () => {
    const schema = buildSchema(readFileSync('schema/schema.graphql', 'utf8'));
    const mutations = Object.keys(schema.getMutationType()!.getFields());
    const documented = definitions
      .filter((d) => d.operation === OperationTypeNode.MUTATION)
      .map((d) => camel(d.name!.value));
    expect(mutations.filter((m) => !documented.includes(m)).sort()).toEqual([
      'cancelRebuild',
      'rebuildReadModels',
    ]);
  });

  it('gives the client a method for every operation, subscriptions included', () => {
    for (const definition of definitions) {
      const name = camel(definition.name!.value);
      if (definition.operation === OperationTypeNode.SUBSCRIPTION) expect(live).toContain(name);
      expect(typeof (client as unknown as Record<string, unknown>)[name]).toBe('function');
    }
  });

  it('refuses an operation the client could not name or resolve', () => {
    const generate = (source: string) => () =>
      (plugin as (schema: unknown, docs: unknown[]) => string)(null, [{ document: parse(source) }]);
    expect(generate('query Two { me { id } boards { id } }')).toThrow(/exactly one root field/);
    expect(generate('query { me { id } }')).toThrow(/needs a name/);
    expect(generate('query A { me { id } } query a { me { id } }')).toThrow(/two SDK operations/);
    expect(generate('query Me { viewer: me { id } }')()).toContain(
      "me: { document: MeDocument, field: 'viewer' }",
    );
  });
});
