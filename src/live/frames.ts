/**
 * graphql-ws `next` frames built as bytes: a subscription's id spliced around a payload
 * serialised and encoded once for every subscriber of a change, as one complete
 * websocket text message (header and all), so a send costs one small copy and one
 * write: no string concatenation, UTF-8 encoding or framing per subscriber.
 */

const HEAD = Buffer.from('{"id":');
const MIDDLE = Buffer.from(',"type":"next","payload":');
const QUOTE = 0x22;
const CLOSE = 0x7d;
/** FIN and opcode 1: the whole of one text message (RFC 6455, 5.2). */
const FIN_TEXT = 0x81;
/** Ids that JSON takes as they are (graphql-ws clients send UUIDs or counters). */
const PLAIN_ID = /^[\w.:-]*$/;

/** Bytes of the websocket header of a server (unmasked) message of `length` bytes. */
const headerLength = (length: number) => (length < 126 ? 2 : length < 65_536 ? 4 : 10);

/**
 * The websocket message `{"id":<id>,"type":"next","payload":<payload>}` (text, final,
 * unmasked, as a server sends it), `payload` being the UTF-8 bytes of a serialised
 * `ExecutionResult`. `messageOf` gives the JSON alone.
 */
export function nextFrame(id: string, payload: Uint8Array): Buffer {
  const plain = PLAIN_ID.test(id);
  const quoted = plain ? '' : JSON.stringify(id);
  const idLength = plain ? id.length + 2 : Buffer.byteLength(quoted);
  const length = HEAD.length + idLength + MIDDLE.length + payload.length + 1;
  const header = headerLength(length);
  const frame = Buffer.allocUnsafe(header + length);
  frame[0] = FIN_TEXT;
  if (header === 2) {
    frame[1] = length;
  } else if (header === 4) {
    frame[1] = 126;
    frame.writeUInt16BE(length, 2);
  } else {
    frame[1] = 127;
    frame.writeUInt32BE(0, 2);
    frame.writeUInt32BE(length, 6);
  }
  let at = header + HEAD.copy(frame, header);
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

/** The message a frame of `nextFrame` carries (its JSON), without the websocket header. */
export function messageOf(frame: Buffer): Buffer {
  const length = frame[1]! & 0x7f;
  return frame.subarray(length === 126 ? 4 : length === 127 ? 10 : 2);
}
