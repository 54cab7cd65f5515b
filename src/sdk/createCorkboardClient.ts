import type { ResultOf, TypedDocumentNode, VariablesOf } from '@graphql-typed-document-node/core';
import { Kind, print, type DocumentNode, type GraphQLFormattedError } from 'graphql';
import {
  followBoardChanges,
  type BoardChange,
  type BoardChangesOptions,
  type ReconnectOptions,
} from './boardChanges.js';
import { CorkboardRequestError } from './CorkboardRequestError.js';
import { manifestIdOf, persistedQueryExtensions } from './documentIds.js';
import { BoardChangesDocument } from './generated/graphql.js';
import { operations } from './generated/operations.js';

/**
 * The client's queries and mutations: every one of src/sdk/operations and of the generated
 * mutation documents, by its camelCased name (generated: `src/sdk/generated/operations.ts`). `client.moveCard(...)` resolves to
 * `data.moveCard`, the mutation's result union; `client.cardHistory(...)` to `data.card`.
 */
type Operations = typeof operations;

/** Per-call options of every query and mutation. */
export interface RequestOptions {
  /** Aborting it aborts the HTTP request; the call rejects with the signal's reason. */
  signal?: AbortSignal;
}

/** `(variables, options?)`, with `variables` optional when the operation needs none. */
export type OperationArgs<V> =
  Record<string, never> extends V
    ? [variables?: V, options?: RequestOptions]
    : [variables: V, options?: RequestOptions];

/** One method per operation: typed variables in, the root field's typed value out. */
export type CorkboardOperations = {
  [K in keyof Operations]: (
    ...args: OperationArgs<VariablesOf<Operations[K]['document']>>
  ) => Promise<
    ResultOf<Operations[K]['document']>[Operations[K]['field'] &
      keyof ResultOf<Operations[K]['document']>]
  >;
};

/** What `createCorkboardClient` returns: the named operations, `request` and `boardChanges`. */
export interface CorkboardClient extends CorkboardOperations {
  /**
   * Sends any generated query or mutation document over HTTP and resolves with its
   * whole `data`. Rejects with `CorkboardRequestError` when the server answers with
   * GraphQL errors or not with GraphQL at all; network failures and aborts reject
   * with what `fetch` threw.
   */
  request<R, V>(document: TypedDocumentNode<R, V>, ...args: OperationArgs<V>): Promise<R>;
  /**
   * The board's changes, in commit order, as an async iterator that resumes after a
   * dropped connection with no gap and no duplicate (see `followBoardChanges`).
   * A message with `resyncRequired: true` means the app must refetch what it shows.
   */
  boardChanges(
    boardId: string,
    options?: BoardChangesOptions,
  ): AsyncGenerator<BoardChange, void, undefined>;
}

/** Gives the bearer token to send; `expired` asks for a fresh one (refresh it). */
export type TokenProvider = (context: {
  expired: boolean;
}) => string | null | undefined | Promise<string | null | undefined>;

/** Where the server is and how to talk to it. */
export interface CorkboardClientOptions {
  /** The GraphQL endpoint, e.g. `http://localhost:4000/graphql`. */
  url: string;
  /**
   * Sent as `Authorization: Bearer <token>` over HTTP and as
   * `connectionParams.authorization` on the websocket. A function (a token provider,
   * which may be async) is asked again for every request and every (re)connection,
   * with `{ expired: true }` after the server refused the last token as expired or
   * ended (an HTTP `UNAUTHENTICATED` answer, which is then retried once with the new
   * token; a websocket closed with 4403, which reconnects and resumes from its
   * cursor). Absent: anonymous.
   */
  token?: string | TokenProvider;
  /** The Fetch implementation for queries and mutations. @default globalThis.fetch */
  fetch?: typeof fetch;
  /**
   * The WebSocket constructor for subscriptions: Node 20 has none built in, so pass
   * `WebSocket` from the `ws` package there. @default globalThis.WebSocket
   */
  webSocketImpl?: unknown;
  /** The websocket endpoint. @default `url` with `http` replaced by `ws` */
  webSocketUrl?: string;
  /** How subscriptions reconnect after a drop. @default {} (see ReconnectOptions) */
  reconnect?: ReconnectOptions;
  /**
   * Send each of the SDK's operations by its id in the operations manifest
   * (`generated/trusted/persisted-documents.json`), as
   * `extensions: { persistedQuery: { version: 1, sha256Hash: "sha256:…" } }` and no
   * document text, over HTTP and the websocket alike: what a server started with
   * `TRUSTED_DOCUMENTS=only` requires (and one with `allow` accepts). A document that is
   * not in the manifest (one passed to `request` that the SDK does not ship) is still
   * sent as text, which such a server refuses with `PERSISTED_QUERY_ONLY`.
   * @default false: every operation is sent as its text
   */
  documentIds?: boolean;
}

const printed = new WeakMap<DocumentNode, string>();
const queryOf = (document: DocumentNode): string => {
  let query = printed.get(document);
  if (query === undefined) printed.set(document, (query = print(document)));
  return query;
};

const operationNameOf = (document: DocumentNode): string => {
  for (const definition of document.definitions) {
    if (definition.kind === Kind.OPERATION_DEFINITION && definition.name) {
      return definition.name.value;
    }
  }
  return 'anonymous';
};

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null;

/** Whether the server refused the request's bearer token (`UNAUTHENTICATED`, no data). */
const refusedToken = (body: unknown): boolean =>
  isObject(body) &&
  !isObject(body['data']) &&
  Array.isArray(body['errors']) &&
  body['errors'].some(
    (e: unknown) =>
      isObject(e) && isObject(e['extensions']) && e['extensions']['code'] === 'UNAUTHENTICATED',
  );

/**
 * A Corkboard client: one typed method per query and mutation of the generated SDK
 * (over HTTP: `fetch`, POST, JSON), `request()` for any generated document, and
 * `boardChanges()`, a resumable subscription over graphql-ws.
 *
 * It holds no connection between calls: each `boardChanges()` iteration opens its
 * own websocket and closes it when the iteration ends.
 *
 * @example
 * ```ts
 * import WebSocket from 'ws';
 * const client = createCorkboardClient({ url, token, webSocketImpl: WebSocket });
 * const result = await client.moveCard({ input: { cardId, toColumnId, expectedVersion } });
 * switch (result.__typename) {
 *   case 'MoveCardSuccess': return result.card;
 *   case 'VersionConflictError': // reload and retry: see withConflictRetry
 *   ...
 * }
 * ```
 */
export function createCorkboardClient(options: CorkboardClientOptions): CorkboardClient {
  const { url } = options;
  const doFetch = options.fetch ?? globalThis.fetch;
  const token = async (expired = false): Promise<string | null | undefined> =>
    typeof options.token === 'function' ? options.token({ expired }) : options.token;
  const webSocketUrl = new URL(options.webSocketUrl ?? url);
  webSocketUrl.protocol = webSocketUrl.protocol.replace(/^http/, 'ws');

  /** The document as sent: its manifest id (with `documentIds`), else its text. */
  const sourceOf = (
    document: DocumentNode,
  ): { query: string } | { query?: never; extensions: Record<string, unknown> } => {
    const query = queryOf(document);
    const id = options.documentIds ? manifestIdOf(document, query) : undefined;
    return id === undefined ? { query } : { extensions: persistedQueryExtensions(id) };
  };

  /** POSTs one operation and resolves with its `data`, or rejects (see `request`). */
  async function send(
    document: DocumentNode,
    variables: unknown,
    signal: AbortSignal | undefined,
  ): Promise<Record<string, unknown>> {
    const operationName = operationNameOf(document);
    const post = async (bearer: string | null | undefined) => {
      const response = await doFetch(url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'application/graphql-response+json, application/json',
          ...(bearer ? { authorization: `Bearer ${bearer}` } : {}),
        },
        body: JSON.stringify({ ...sourceOf(document), variables: variables ?? {}, operationName }),
        signal: signal ?? null,
      });
      const body: unknown = (response.headers.get('content-type') ?? '').includes('json')
        ? await response.json().catch(() => undefined)
        : undefined;
      return { response, body };
    };
    const bearer = await token();
    let { response, body } = await post(bearer);
    if (bearer && typeof options.token === 'function' && refusedToken(body)) {
      // The token expired or its session ended: ask the provider for a fresh one, once.
      const fresh = await token(true);
      if (fresh && fresh !== bearer) ({ response, body } = await post(fresh));
    }
    if (!isObject(body)) {
      throw new CorkboardRequestError(`HTTP ${response.status} without a GraphQL response`, {
        operationName,
        status: response.status,
      });
    }
    const errors = Array.isArray(body['errors']) ? (body['errors'] as GraphQLFormattedError[]) : [];
    const data = body['data'];
    if (errors.length > 0 || !isObject(data)) {
      throw new CorkboardRequestError(errors.map((e) => e.message).join('; ') || 'no data', {
        operationName,
        status: response.status,
        errors,
      });
    }
    return data;
  }

  async function request<R, V>(
    document: TypedDocumentNode<R, V>,
    ...[variables, requestOptions]: OperationArgs<V>
  ): Promise<R> {
    return (await send(document, variables, requestOptions?.signal)) as R;
  }

  const methods = Object.fromEntries(
    Object.entries(operations).map(([name, { document, field }]) => [
      name,
      async (variables?: unknown, requestOptions?: RequestOptions) =>
        (await send(document, variables, requestOptions?.signal))[field],
    ]),
  ) as unknown as CorkboardOperations;

  const boardChangesSource = sourceOf(BoardChangesDocument);
  return {
    ...methods,
    request,
    boardChanges: (boardId, boardChangesOptions) =>
      followBoardChanges(
        {
          url: webSocketUrl.href,
          webSocketImpl: options.webSocketImpl,
          token,
          // graphql-ws wants a string `query`: empty when the id names the document.
          query: boardChangesSource.query ?? '',
          ...('extensions' in boardChangesSource
            ? { extensions: boardChangesSource.extensions }
            : {}),
          reconnect: options.reconnect ?? {},
        },
        boardId,
        boardChangesOptions,
      ),
  };
}
