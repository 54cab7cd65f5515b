import { expect } from 'vitest';
import { openSocket, until } from './rawSocket.js';
import type { TestServer } from './server.js';

/**
 * One GraphQL operation sent the same way over each transport a client may use: HTTP GET,
 * a JSON POST, a multipart POST, SSE and graphql-ws. Its parts are JSON text, so a test
 * can send nesting no client would build (and no stack here needs to hold).
 */
export interface RawOperation {
  /** The document's text; absent when `extensions` names it by id. */
  query?: string;
  /** JSON text of the variables object. @default '{}' */
  variables?: string;
  /** JSON text of the extensions object (a document id). */
  extensions?: string;
}

/** What one transport answered: the HTTP status (`ws` over graphql-ws) and the result. */
export interface TransportAnswer {
  status: number | 'ws';
  body: {
    data?: unknown;
    errors?: { message: string; extensions?: Record<string, unknown> }[];
  };
}

/** The operation as a JSON object's text (a POST body, a graphql-ws `payload`). */
function paramsText(op: RawOperation, queryRequired = false): string {
  const parts = [
    ...(op.query !== undefined || queryRequired
      ? [`"query":${JSON.stringify(op.query ?? '')}`]
      : []),
    `"variables":${op.variables ?? '{}'}`,
    ...(op.extensions ? [`"extensions":${op.extensions}`] : []),
  ];
  return `{${parts.join(',')}}`;
}

const authorization = (token: string | null): Record<string, string> =>
  token ? { authorization: `Bearer ${token}` } : {};

async function jsonAnswer(response: Response): Promise<TransportAnswer> {
  return { status: response.status, body: (await response.json()) as TransportAnswer['body'] };
}

/** Sends `op` over one transport with `token` (null: anonymous) and reads its result. */
export const transports = {
  async get(s: TestServer, token: string | null, op: RawOperation): Promise<TransportAnswer> {
    const search = new URLSearchParams({ variables: op.variables ?? '{}' });
    if (op.query !== undefined) search.set('query', op.query);
    if (op.extensions) search.set('extensions', op.extensions);
    const response = await fetch(`${s.url}/graphql?${search}`, {
      headers: { accept: 'application/json', ...authorization(token) },
    });
    return jsonAnswer(response);
  },
  async post(s: TestServer, token: string | null, op: RawOperation): Promise<TransportAnswer> {
    const response = await fetch(`${s.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...authorization(token) },
      body: paramsText(op),
    });
    return jsonAnswer(response);
  },
  async multipart(s: TestServer, token: string | null, op: RawOperation): Promise<TransportAnswer> {
    const form = new FormData();
    form.set('operations', paramsText(op));
    form.set('map', '{}');
    const response = await fetch(`${s.url}/graphql`, {
      method: 'POST',
      headers: authorization(token),
      body: form,
    });
    return jsonAnswer(response);
  },
  async sse(s: TestServer, token: string | null, op: RawOperation): Promise<TransportAnswer> {
    const response = await fetch(`${s.url}/graphql`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'text/event-stream',
        ...authorization(token),
      },
      body: paramsText(op),
    });
    const text = await response.text();
    if (!(response.headers.get('content-type') ?? '').includes('text/event-stream')) {
      // Refused before a stream was opened: a plain GraphQL answer.
      return { status: response.status, body: JSON.parse(text) as TransportAnswer['body'] };
    }
    const next = /event: next\ndata: (.*)\n/.exec(text);
    if (!next) throw new Error(`no next event in ${text.slice(0, 200)}`);
    return { status: response.status, body: JSON.parse(next[1]!) as TransportAnswer['body'] };
  },
  async ws(s: TestServer, token: string | null, op: RawOperation): Promise<TransportAnswer> {
    const socket = await openSocket(s, token ?? '');
    const id = 'op';
    const received: { next: unknown[]; error: unknown[] | null; complete: boolean } = {
      next: [],
      error: null,
      complete: false,
    };
    socket.socket.on('message', (data: Buffer) => {
      const message = JSON.parse(data.toString()) as { id?: string; type: string; payload: any };
      if (message.id !== id) return;
      if (message.type === 'next') received.next.push(message.payload);
      if (message.type === 'error') received.error = message.payload as unknown[];
      if (message.type === 'complete') received.complete = true;
    });
    // graphql-ws requires a string `query`: empty when the extensions name the document.
    socket.socket.send(`{"id":"${id}","type":"subscribe","payload":${paramsText(op, true)}}`);
    await until(() => received.error !== null || received.next.length > 0, 'the answer');
    // The socket outlives a refusal: the operation failed alone.
    expect(socket.socket.readyState).toBe(socket.socket.OPEN);
    if (received.error) return { status: 'ws', body: { errors: received.error as never } };
    return { status: 'ws', body: received.next[0] as TransportAnswer['body'] };
  },
} as const;

export type Transport = keyof typeof transports;

/** Every transport, in the order tests send over them. */
export const ALL_TRANSPORTS = Object.keys(transports) as Transport[];

/** Errors without `locations` (the one thing transports may render differently). */
export const errorsOf = (answer: TransportAnswer) =>
  (answer.body.errors ?? []).map(({ message, extensions }) => ({
    message,
    ...(extensions ? { extensions } : {}),
  }));
