import { Kind, type DocumentNode } from 'graphql';
import * as trusted from '../sdk/generated/trusted/graphql.js';

/** A document as codegen's client preset emits it: with its manifest id embedded. */
type HashedDocument = DocumentNode & { __meta__?: { hash?: unknown } };

const isHashedDocument = (value: unknown): value is HashedDocument =>
  typeof value === 'object' &&
  value !== null &&
  (value as { kind?: unknown }).kind === Kind.DOCUMENT &&
  typeof (value as HashedDocument).__meta__?.hash === 'string';

const documents = Object.values(trusted as Record<string, unknown>).filter(isHashedDocument);

/**
 * The SDK's operations by document id (`sha256:<hex>` of the normalized document, as
 * codegen writes them in `src/sdk/generated/trusted/persisted-documents.json`).
 */
export const TRUSTED_DOCUMENTS: ReadonlyMap<string, DocumentNode> = new Map(
  documents.map((document) => [document.__meta__!.hash as string, document]),
);

/** The names of the SDK's operations: the operations this server knows by name. */
export const SDK_OPERATION_NAMES: ReadonlySet<string> = new Set(
  documents.flatMap((document) =>
    document.definitions.flatMap((definition) =>
      definition.kind === Kind.OPERATION_DEFINITION && definition.name
        ? [definition.name.value]
        : [],
    ),
  ),
);
