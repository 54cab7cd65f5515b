// @ts-check
/**
 * Trusted documents: the manifest id of every executable document the SDK ships (the
 * hex SHA-256 of its normalized text, as `sha256:<hex>`). The `typed-document-node`
 * plugin embeds it in each document it writes (`__meta__.hash`, through `embedId`), and
 * this module's plugin writes the manifest (`persisted-documents.json`: id -> normalized
 * text) from the very documents that plugin builds, so every id a document carries is a
 * key of the manifest.
 */
import { createHash } from 'node:crypto';
import { plugin as typedDocumentNode } from '@graphql-codegen/typed-document-node';
import { printExecutableGraphQLDocument } from '@graphql-tools/documents';

/** @param {import('graphql').DocumentNode} document */
const idAndText = (document) => {
  const text = printExecutableGraphQLDocument(document);
  return { id: `sha256:${createHash('sha256').update(text).digest('hex')}`, text };
};

/** `typed-document-node`'s hook: what it embeds in a document as `__meta__`. */
export const embedId = (/** @type {import('graphql').DocumentNode} */ document) => ({
  hash: idAndText(document).id,
});

/**
 * graphql-codegen plugin: the manifest. Give it the config of the output that embeds the
 * ids, so that it builds the same documents.
 * @type {import('@graphql-codegen/plugin-helpers').PluginFunction}
 */
export const plugin = async (schema, documents, config) => {
  /** @type {Record<string, string>} */
  const manifest = {};
  await typedDocumentNode(schema, documents, {
    ...config,
    unstable_onExecutableDocumentNode: (/** @type {import('graphql').DocumentNode} */ document) => {
      const { id, text } = idAndText(document);
      manifest[id] = text;
      return { hash: id };
    },
  });
  return `${JSON.stringify(manifest, null, 2)}\n`;
};
