import type { IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import {
  checkGraphQLBody,
  jsonNestsDeeperThan,
  RequestRejected,
  valueNestsDeeperThan,
} from '../../src/http/requestBody.js';

/** A request as `checkGraphQLBody` reads it: headers and a body stream. */
function requestOf(body: Buffer, contentType: string): IncomingMessage {
  const stream = Readable.from([body]) as unknown as IncomingMessage;
  stream.headers = { 'content-type': contentType, 'content-length': String(body.length) };
  return stream;
}

const limits = { maxBodyBytes: 1024 * 1024, maxJsonDepth: 64 };

async function multipart(operations: string) {
  const form = new FormData();
  form.set('operations', operations);
  form.set('map', '{}');
  const encoded = new Response(form);
  const type = encoded.headers.get('content-type')!;
  return requestOf(Buffer.from(await encoded.arrayBuffer()), type);
}

describe('the JSON depth rule', () => {
  it('counts a parsed value as the byte scan counts its text', () => {
    for (const depth of [2, 3, 63, 64, 65]) {
      const text = `{"a":${'['.repeat(depth - 1)}${']'.repeat(depth - 1)}}`;
      const value: unknown = JSON.parse(text);
      for (const bound of [depth - 1, depth, depth + 1]) {
        expect(valueNestsDeeperThan(value, bound)).toBe(
          jsonNestsDeeperThan(Buffer.from(text), bound),
        );
      }
    }
  });

  it('walks a value a million levels deep without running out of stack', () => {
    let value: unknown[] = [];
    for (let i = 0; i < 1_000_000; i += 1) value = [value];
    expect(valueNestsDeeperThan(value, 64)).toBe(true);
  });

  it('refuses a multipart body whose operations nest too deep before yoga parses them', async () => {
    const deep = `{"query":"{ __typename }","variables":{"a":${'['.repeat(400_000)}${']'.repeat(400_000)}}}`;
    const refused = await checkGraphQLBody(await multipart(deep), limits).catch(
      (error: unknown) => error,
    );
    expect(refused).toBeInstanceOf(RequestRejected);
    expect(refused).toMatchObject({ status: 400, code: 'BAD_REQUEST' });
    expect((refused as Error).message).toContain('MAX_JSON_DEPTH');
  });

  it('passes a multipart body within the bound, its bytes left for yoga', async () => {
    const req = await multipart(`{"query":"{ __typename }","variables":{"a":[[1]]}}`);
    await checkGraphQLBody(req, limits);
    expect((req as IncomingMessage & { body?: Buffer }).body?.toString()).toContain('__typename');
  });

  it('refuses a JSON body that is not JSON, an empty one included, with one message', async () => {
    for (const body of ['', '{"query": x', '\u00ff']) {
      const refused = await checkGraphQLBody(
        requestOf(Buffer.from(body), 'application/json'),
        limits,
      ).catch((error: unknown) => error);
      expect(refused).toBeInstanceOf(RequestRejected);
      expect(refused).toMatchObject({
        status: 400,
        code: 'BAD_REQUEST',
        message: 'POST body sent invalid JSON.',
      });
    }
  });

  it('refuses a body that says multipart but is not', async () => {
    const req = requestOf(Buffer.from('not multipart'), 'multipart/form-data; boundary=x');
    await expect(checkGraphQLBody(req, limits)).rejects.toMatchObject({
      status: 400,
      code: 'BAD_REQUEST',
    });
  });
});
