import { Agent, request as httpRequest } from 'node:http';

/** No pooling and no socket limit: every exchange its own connection, all at once. */
const agent = new Agent({ keepAlive: false, maxSockets: Infinity });

export interface RawAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  /** Bytes received (the body is not decoded, whatever its content-encoding). */
  bytes: number;
  /** The first 64 KiB of the body. */
  body: Buffer;
}

/**
 * One HTTP exchange on a fresh connection, the body neither decoded nor kept beyond
 * 64 KiB, so thousands can run at once without the client's memory in the way.
 */
export function exchange(
  url: string,
  init: {
    method?: string;
    headers?: Record<string, string>;
    body?: Buffer | string;
    /** Called once the whole request has been handed to the socket. */
    onSent?: () => void;
  } = {},
): Promise<RawAnswer> {
  return new Promise((done, fail) => {
    const req = httpRequest(url, { method: init.method ?? 'GET', headers: init.headers, agent });
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      let bytes = 0;
      res.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
        if (bytes <= 64 * 1024) chunks.push(chunk);
      });
      res.on('end', () =>
        done({
          status: res.statusCode ?? 0,
          headers: res.headers,
          bytes,
          body: Buffer.concat(chunks),
        }),
      );
      res.on('error', fail);
    });
    req.on('error', fail);
    if (init.onSent) req.once('finish', init.onSent);
    req.end(init.body);
  });
}

/** POSTs one GraphQL operation as JSON over a fresh connection. */
export function postGraphQL(
  baseUrl: string,
  query: string,
  variables: Record<string, unknown> = {},
  token?: string,
): Promise<RawAnswer> {
  return exchange(`${baseUrl}/graphql`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: JSON.stringify({ query, variables }),
  });
}
