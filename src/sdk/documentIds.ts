import { print, type DocumentNode } from 'graphql';
import * as trusted from './generated/graphql.js';

/** A document as codegen writes it, its manifest id embedded. */
type HashedDocument = DocumentNode & { __meta__?: { hash?: unknown } };

let idsByText: Map<string, string> | undefined;

/**
 * The manifest id (`sha256:<hex>`, a key of `generated/trusted/persisted-documents.json`)
 * of the operation whose printed text is `query`, or undefined when it is not one of the
 * SDK's operations. The SDK's documents and the manifest's come from the same
 * documents (`src/sdk/operations` and the generated mutations), and print alike.
 */
export function manifestIdOf(document: DocumentNode, query: string): string | undefined {
  const embedded = (document as HashedDocument).__meta__?.hash;
  if (typeof embedded === 'string') return embedded;
  idsByText ??= new Map(
    Object.values(trusted as Record<string, unknown>).flatMap((value) => {
      const hash = (value as HashedDocument | null)?.__meta__?.hash;
      return typeof hash === 'string' ? [[print(value as DocumentNode), hash] as const] : [];
    }),
  );
  return idsByText.get(query);
}

/**
 * The request extensions that name a document by its manifest id, in the shape Apollo's
 * and The Guild's persisted-operations support read (`persistedQuery`, version 1).
 */
export function persistedQueryExtensions(id: string): {
  persistedQuery: { version: 1; sha256Hash: string };
} {
  return { persistedQuery: { version: 1, sha256Hash: id } };
}
