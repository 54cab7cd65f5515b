// @ts-check
/**
 * graphql-codegen plugin: the SDK client's operations, one entry per query and mutation
 * document, named after the operation (camelCase: `CardHistory` -> `cardHistory`), with
 * the response key of its one root field (its alias, else its name), which is what the
 * client's method resolves to. Written from the documents, so a new operation file is a
 * new client method with no list kept by hand. Subscriptions are left to the client's
 * own live methods. A query or mutation without a name, or with other than exactly one
 * root field, fails the generation: the client could not name it or pick its value.
 */
import { Kind } from 'graphql';

/** @param {import('graphql').GraphQLSchema} _schema @param {{ document?: import('graphql').DocumentNode }[]} documents */
export const plugin = (_schema, documents) => {
  /** @type {{ key: string, document: string, field: string }[]} */
  const entries = [];
  for (const { document } of documents) {
    for (const definition of document?.definitions ?? []) {
      if (definition.kind !== Kind.OPERATION_DEFINITION) continue;
      if (definition.operation === 'subscription') continue;
      const name = definition.name?.value;
      if (!name) throw new Error('every SDK query and mutation needs a name');
      const [root, ...more] = definition.selectionSet.selections;
      if (!root || more.length > 0 || root.kind !== Kind.FIELD) {
        throw new Error(`${name}: an SDK operation selects exactly one root field`);
      }
      const field = (root.alias ?? root.name).value;
      const key = name.charAt(0).toLowerCase() + name.slice(1);
      entries.push({ key, document: `${name}Document`, field });
    }
  }
  entries.sort((a, b) => a.key.localeCompare(b.key, 'en'));
  const keys = new Set();
  for (const { key } of entries) {
    if (keys.has(key)) throw new Error(`two SDK operations are named ${key}`);
    keys.add(key);
  }
  return [
    `import {`,
    ...entries.map((e) => `  ${e.document},`),
    `} from './graphql.js';`,
    '',
    '/**',
    " * Every query and mutation of the SDK's documents by its camelCased name: its document, and",
    " * the response key of its root field, whose value the client's method resolves to.",
    ' */',
    'export const operations = {',
    ...entries.map((e) => `  ${e.key}: { document: ${e.document}, field: '${e.field}' },`),
    '} as const;',
    '',
  ].join('\n');
};
