/**
 * graphql-ws `next` frames built as bytes: a subscription's id spliced around a payload
 * serialised and encoded once for every subscriber of a change, so a send costs one
 * small copy, not a string concatenation and its UTF-8 encoding per subscriber.
 */

const HEAD = Buffer.from('{"id":');
const MIDDLE = Buffer.from(',"type":"next","payload":');
const QUOTE = 0x22;
const CLOSE = 0x7d;
/** Ids that JSON takes as they are (graphql-ws clients send UUIDs or counters). */
const PLAIN_ID = /^[\w.:-]*$/;

/**
 * `{"id":<id>,"type":"next","payload":<payload>}` as one Buffer, `payload` being the
 * UTF-8 bytes of a serialised `ExecutionResult`.
 */
export function nextFrame(id: string, payload: Uint8Array): Buffer {
  const plain = PLAIN_ID.test(id);
  const quoted = plain ? '' : JSON.stringify(id);
  const idLength = plain ? id.length + 2 : Buffer.byteLength(quoted);
  const frame = Buffer.allocUnsafe(HEAD.length + idLength + MIDDLE.length + payload.length + 1);
  let at = HEAD.copy(frame, 0);
  if (plain) {
    frame[at++] = QUOTE;
    at += frame.write(id, at, 'latin1');
    frame[at++] = QUOTE;
  } else {
    at += frame.write(quoted, at, 'utf8');
  }
  at += MIDDLE.copy(frame, at);
  frame.set(payload, at);
  frame[at + payload.length] = CLOSE;
  return frame;
}
