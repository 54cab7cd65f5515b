/** Raw frame writes: whole graphql-ws frames written to a websocket's TCP socket. */
import { Socket } from 'node:net';
import type { WebSocket } from 'ws';
import { messageOf } from '../live/frames.js';

/** `ws` send options for a message given as bytes: a text message, as graphql-ws sends. */
const AS_TEXT = Object.freeze({ binary: false, compress: false, fin: true });

/** What of `ws`'s internals the direct write relies on (checked, never assumed). */
interface WsInternals {
  _socket?: unknown;
  _sender?: { _state?: unknown; _queue?: unknown; _firstFragment?: unknown };
}

/**
 * The TCP socket under `socket`, when a whole frame (`nextFrame`) may be written to it
 * as it is: no extension was negotiated (a frame is sent as built, uncompressed) and
 * `ws`'s sender looks as this code knows it. Null otherwise: then frames go through
 * `ws.send`, which is always correct, only slower (it frames each message again and
 * writes header and payload as two corked writes).
 */
function rawSocketOf(socket: WebSocket): Socket | null {
  const { _socket: raw, _sender: sender } = socket as unknown as WsInternals;
  if (socket.extensions !== '' || !(raw instanceof Socket) || !sender) return null;
  if (sender._state !== 0 || !Array.isArray(sender._queue)) return null;
  return raw;
}

/** Whether `ws` has nothing of its own under way on `socket` (a frame written now is next). */
function senderIdle(socket: WebSocket): boolean {
  const sender = (socket as unknown as WsInternals)._sender!;
  return (
    sender._state === 0 &&
    (sender._queue as unknown[]).length === 0 &&
    sender._firstFragment === true
  );
}

/** How whole graphql-ws frames (built once by `nextFrame`) reach one socket. */
export interface FrameWriter {
  /** Writes one whole text frame. */
  write(frame: Buffer): void;
}

/**
 * A frame writer for `socket`: straight to its TCP socket in one write while `ws` has
 * nothing of its own under way (so the frame is next in order), through `ws.send`
 * otherwise or when the socket is not one this code knows how to write to.
 */
export function frameWriterFor(socket: WebSocket): FrameWriter {
  const raw = rawSocketOf(socket);
  return {
    write(frame) {
      if (raw && senderIdle(socket)) raw.write(frame);
      else socket.send(messageOf(frame), AS_TEXT);
    },
  };
}
