import type { IncomingMessage, ServerResponse } from 'node:http';

/** The default of `MAX_JSON_DEPTH`. */
export const DEFAULT_MAX_JSON_DEPTH = 64;

/** What a request body may be. */
export interface BodyLimits {
  /** Largest body in bytes; a larger one is refused with 413 before it is all read. */
  maxBodyBytes: number;
  /** Deepest nesting of JSON arrays and objects; deeper is refused with 400 before parsing. */
  maxJsonDepth: number;
}

/** A request refused at the door: the status and one GraphQL-shaped error to answer with. */
export class RequestRejected extends Error {
  override readonly name = 'RequestRejected';
  constructor(
    readonly status: number,
    readonly code: 'PAYLOAD_TOO_LARGE' | 'BAD_REQUEST',
    message: string,
  ) {
    super(message);
  }
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_ARRAY = 0x5b;
const OPEN_OBJECT = 0x7b;
const CLOSE_ARRAY = 0x5d;
const CLOSE_OBJECT = 0x7d;

/**
 * Whether JSON text nests arrays and objects deeper than `maxDepth`. One pass over the
 * bytes, skipping strings, without parsing: a body of ten million `[` costs a scan of
 * the first `maxDepth + 1` of them, not seconds of `JSON.parse` and a gigabyte of heap.
 */
export function jsonNestsDeeperThan(body: Uint8Array, maxDepth: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < body.length; i += 1) {
    const byte = body[i];
    if (inString) {
      if (byte === BACKSLASH) i += 1;
      else if (byte === QUOTE) inString = false;
    } else if (byte === QUOTE) {
      inString = true;
    } else if (byte === OPEN_ARRAY || byte === OPEN_OBJECT) {
      depth += 1;
      if (depth > maxDepth) return true;
    } else if (byte === CLOSE_ARRAY || byte === CLOSE_OBJECT) {
      depth -= 1;
    }
  }
  return false;
}

/**
 * Whether a parsed JSON value (an operation's `variables` or `extensions`) nests arrays
 * and objects deeper than `maxDepth`, counted as `jsonNestsDeeperThan` counts the text.
 * Iterative: a value of a million levels is walked without a deep stack, and the walk
 * stops at the first path past the bound.
 */
export function valueNestsDeeperThan(value: unknown, maxDepth: number): boolean {
  const pending: { value: unknown; depth: number }[] = [{ value, depth: 0 }];
  for (let next = pending.pop(); next; next = pending.pop()) {
    if (typeof next.value !== 'object' || next.value === null) continue;
    const depth = next.depth + 1;
    if (depth > maxDepth) return true;
    const children = Array.isArray(next.value) ? next.value : Object.values(next.value);
    for (const child of children) {
      if (typeof child === 'object' && child !== null) pending.push({ value: child, depth });
    }
  }
  return false;
}

/**
 * The one refusal of JSON nested past `MAX_JSON_DEPTH`, whichever transport carried it
 * (a JSON or multipart body, a GET's query string, a websocket message): code
 * `BAD_REQUEST`, HTTP 400 where there is HTTP. Nothing of the operation runs.
 */
export function jsonTooDeepMessage(maxDepth: number): string {
  return `JSON nested deeper than ${maxDepth} levels (MAX_JSON_DEPTH).`;
}

/** The code of `jsonTooDeepMessage`'s refusal on every transport. */
export const JSON_TOO_DEEP_CODE = 'BAD_REQUEST';

/**
 * Reads a request body of at most `maxBytes`. A declared `content-length` over the limit
 * is refused before reading anything; a chunked body is refused as soon as it passes it.
 */
export async function readBoundedBody(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  const tooLarge = () =>
    new RequestRejected(
      413,
      'PAYLOAD_TOO_LARGE',
      `Request body larger than ${maxBytes} bytes (MAX_BODY_BYTES).`,
    );
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBytes) throw tooLarge();
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBytes) throw tooLarge();
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, size);
}

/**
 * The text fields of a `multipart/form-data` body (GraphQL multipart requests carry the
 * operation as JSON in `operations` and `map`); files are skipped. Parsed by the Fetch
 * API's own multipart parser. Throws `RequestRejected` when the body is not multipart.
 */
async function multipartFields(body: Buffer, type: string): Promise<string[]> {
  try {
    const form = await new Response(new Uint8Array(body), {
      headers: { 'content-type': type },
    }).formData();
    return [...form.values()].filter((value): value is string => typeof value === 'string');
  } catch {
    throw new RequestRejected(400, 'BAD_REQUEST', 'POST body sent an invalid multipart body.');
  }
}

/**
 * Reads and checks the body of a GraphQL POST before yoga sees it: its size, how deep its
 * JSON nests (in a JSON body, or in the fields of a multipart one), and that JSON is JSON
 * (yoga's own parse error would echo the body). Leaves the checked bytes on `req.body`,
 * where `@whatwg-node/server` takes a body already read. Throws `RequestRejected`.
 * The same depth rule holds where no body is scanned (a GET's query string, a websocket
 * message): see `valueNestsDeeperThan`.
 */
export async function checkGraphQLBody(req: IncomingMessage, limits: BodyLimits): Promise<void> {
  const body = await readBoundedBody(req, limits.maxBodyBytes);
  const type = req.headers['content-type'] ?? '';
  const tooDeep = () =>
    new RequestRejected(400, JSON_TOO_DEEP_CODE, jsonTooDeepMessage(limits.maxJsonDepth));
  if (type.toLowerCase().startsWith('multipart/form-data')) {
    for (const field of await multipartFields(body, type)) {
      if (jsonNestsDeeperThan(Buffer.from(field), limits.maxJsonDepth)) throw tooDeep();
    }
  } else if (type.includes('json') || type === '') {
    if (jsonNestsDeeperThan(body, limits.maxJsonDepth)) throw tooDeep();
    // An empty body is no JSON either (yoga's own refusal would carry the parser's error).
    if (body.length > 0 || type !== '') {
      try {
        JSON.parse(body.toString('utf8'));
      } catch {
        throw new RequestRejected(400, 'BAD_REQUEST', 'POST body sent invalid JSON.');
      }
    }
  }
  (req as IncomingMessage & { body?: Buffer }).body = body;
}

/**
 * Answers a refused request with its status and one error, and closes the connection
 * when the body was not read to its end (the rest of it is not worth receiving).
 */
export function sendRejection(
  req: IncomingMessage,
  res: ServerResponse,
  rejection: RequestRejected,
): void {
  const unread = !req.readableEnded;
  res.writeHead(rejection.status, {
    'content-type': 'application/json; charset=utf-8',
    ...(unread ? { connection: 'close' } : {}),
  });
  res.end(
    JSON.stringify({
      errors: [{ message: rejection.message, extensions: { code: rejection.code } }],
    }),
  );
  if (unread) res.once('finish', () => req.destroy());
}
