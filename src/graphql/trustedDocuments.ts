import { createHash } from 'node:crypto';
import { usePersistedOperations } from '@graphql-yoga/plugin-persisted-operations';
import { GraphQLError, Kind, type DocumentNode } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { TrustedDocuments } from '../config.js';
import * as trusted from '../sdk/generated/graphql.js';
import { isAdminAuthorization } from './auth.js';

/** A document as codegen writes it: with its manifest id embedded. */
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

/** Codes of the refusals of this module (`extensions.code`). */
export const TrustedDocumentCode = {
  /** `TRUSTED_DOCUMENTS=only` and the request sent a document's text, not its id. */
  Only: 'PERSISTED_QUERY_ONLY',
  /** The id is not in the manifest (a client built against another version). */
  NotInList: 'PERSISTED_QUERY_NOT_IN_LIST',
  /** Neither a document nor an id. */
  Missing: 'PERSISTED_QUERY_ID_REQUIRED',
  /** A document and a known id, the document not the id's (its SHA-256 is another). */
  Mismatch: 'PERSISTED_QUERY_ID_MISMATCH',
} as const;
export type TrustedDocumentCode = (typeof TrustedDocumentCode)[keyof typeof TrustedDocumentCode];

/** What an operation carries that names its document (HTTP parameters, a graphql-ws payload). */
export interface OperationParams {
  query?: string | null | undefined;
  extensions?: unknown;
}

/**
 * The document id an operation sends: `extensions.persistedQuery.sha256Hash` with
 * `version: 1` (the shape of Apollo's and The Guild's clients), the manifest's key as it
 * is (`sha256:<hex>`). Null when there is none.
 */
export function documentIdOf(params: OperationParams): string | null {
  const persisted = (params.extensions as { persistedQuery?: unknown } | null | undefined)
    ?.persistedQuery as { version?: unknown; sha256Hash?: unknown } | null | undefined;
  return persisted?.version === 1 && typeof persisted.sha256Hash === 'string'
    ? persisted.sha256Hash
    : null;
}

/** Extensions that carry `id` as a document id, as `documentIdOf` reads them. */
export function persistedQueryExtensions(id: string) {
  return { persistedQuery: { version: 1, sha256Hash: id } } as const;
}

function refusal(code: TrustedDocumentCode): GraphQLError {
  const message: Record<TrustedDocumentCode, string> = {
    [TrustedDocumentCode.Only]:
      'This server runs only the operations of its manifest (TRUSTED_DOCUMENTS=only): send the document id in extensions.persistedQuery, not the document.',
    [TrustedDocumentCode.NotInList]:
      "Unknown document id: it is not in this server's operations manifest.",
    [TrustedDocumentCode.Missing]: 'Must provide query string.',
    [TrustedDocumentCode.Mismatch]:
      'The document sent is not the one its id names (the id is the SHA-256 of the document): send the id alone, or the document alone.',
  };
  return new GraphQLError(message[code], { extensions: { code, http: { status: 400 } } });
}

/** `sha256:<hex>` of `text` (UTF-8): the manifest's id of a document of that text. */
function sha256Id(text: string): string {
  return `sha256:${createHash('sha256').update(text, 'utf8').digest('hex')}`;
}

/**
 * What an operation carrying a document id runs, under either setting: an id must be in
 * the manifest (the GraphQL-over-HTTP persisted documents appendix: a document that
 * cannot be retrieved is an error, whatever else the request carries), and a document
 * sent with it must be that id's (its SHA-256, as the id is made). Then the manifest's
 * document runs. Null: no id (the document's text alone decides).
 */
function byDocumentId(
  manifest: ReadonlyMap<string, DocumentNode>,
  id: string | null,
  query: string,
): DocumentNode | GraphQLError | null {
  if (id === null) return null;
  const document = manifest.get(id);
  if (!document) return refusal(TrustedDocumentCode.NotInList);
  if (query !== '' && query !== id && sha256Id(query) !== id) {
    return refusal(TrustedDocumentCode.Mismatch);
  }
  return document;
}

/** Which documents a server executes (README "Trusted documents"). */
export interface TrustedDocumentPolicy {
  readonly mode: TrustedDocuments;
  /**
   * yoga's persisted-operations plugin under this policy, for every HTTP request (GET,
   * POST, multipart, SSE): a manifest id runs its document; a document's text runs
   * under `allow`, or with the admin token; anything else is refused, before parsing.
   */
  readonly plugin: Plugin;
  /**
   * The same decision for an operation that does not pass yoga's HTTP pipeline (a
   * graphql-ws `subscribe`): the document to run (parsed from the manifest), the text
   * to parse, or the refusal. The id may also be sent as `query` itself, as in
   * graphql-ws's persisted-queries recipe.
   */
  resolve(
    params: OperationParams,
    authorization: string | null,
  ): DocumentNode | string | GraphQLError;
}

/**
 * The policy of `TRUSTED_DOCUMENTS`: `allow` runs documents and manifest ids alike;
 * `only` runs manifest ids only, except for the bearer of the admin token (the /admin
 * panel and the admin API send their own documents).
 */
export function trustedDocumentPolicy(options: {
  mode: TrustedDocuments;
  adminToken: string;
  /** @default TRUSTED_DOCUMENTS, the SDK's manifest */
  documents?: ReadonlyMap<string, DocumentNode>;
}): TrustedDocumentPolicy {
  const { mode, adminToken } = options;
  const manifest = options.documents ?? TRUSTED_DOCUMENTS;
  const textAllowed = (authorization: string | null | undefined): boolean => {
    switch (mode) {
      case TrustedDocuments.Allow:
        return true;
      case TrustedDocuments.Only:
        return isAdminAuthorization(adminToken, authorization);
      default: {
        const unknown: never = mode;
        throw new Error(`unknown TRUSTED_DOCUMENTS mode ${String(unknown)}`);
      }
    }
  };
  const persisted = usePersistedOperations({
    getPersistedOperation: (id) => manifest.get(id) ?? null,
    extractPersistedOperationId: (params) => documentIdOf(params),
    allowArbitraryOperations:
      mode === TrustedDocuments.Allow ||
      ((request) => textAllowed(request.headers.get('authorization'))),
    customErrors: {
      persistedQueryOnly: () => refusal(TrustedDocumentCode.Only),
      notFound: () => refusal(TrustedDocumentCode.NotInList),
      keyNotFound: () => refusal(TrustedDocumentCode.Missing),
    },
  });
  return {
    mode,
    plugin: {
      ...persisted,
      // An id with a document: checked here, then the document is dropped so the id runs
      // (yoga's plugin would run the text and ignore the id).
      onParams(payload) {
        const { params, setParams } = payload;
        const id = documentIdOf(params);
        if (id !== null && params.query) {
          const decided = byDocumentId(manifest, id, params.query);
          if (decided instanceof GraphQLError) throw decided;
          const { query: _text, ...rest } = params;
          setParams(rest);
          return persisted.onParams?.({ ...payload, params: rest });
        }
        return persisted.onParams?.(payload);
      },
    },
    resolve(params, authorization) {
      const query = params.query ?? '';
      const id = documentIdOf(params) ?? (manifest.has(query) ? query : null);
      const decided = byDocumentId(manifest, id, query);
      if (decided !== null) return decided;
      if (query === '') return refusal(TrustedDocumentCode.Missing);
      return textAllowed(authorization) ? query : refusal(TrustedDocumentCode.Only);
    },
  };
}
