/**
 * TCP writes that carry one whole unmasked websocket text frame: how the server writes a
 * shared `next` frame in one go. `ws` itself writes a frame's header and its payload as
 * two writes, and a client's frames are masked, so neither is counted.
 */
import { Socket } from 'node:net';

/** Whether `chunk` is exactly one unmasked, final text frame (header and payload). */
export function isWholeServerTextFrame(chunk: unknown): chunk is Buffer {
  if (!Buffer.isBuffer(chunk) || chunk.length < 2) return false;
  if (chunk[0] !== 0x81 || (chunk[1]! & 0x80) !== 0) return false;
  const length7 = chunk[1]! & 0x7f;
  if (length7 < 126) return chunk.length === 2 + length7;
  if (length7 === 126) return chunk.length >= 4 && chunk.length === 4 + chunk.readUInt16BE(2);
  return chunk.length >= 10 && chunk.length === 10 + Number(chunk.readBigUInt64BE(2));
}

/** Calls `onFrame` for every whole server text frame written to a TCP socket until restored. */
export function watchWholeFrameWrites(onFrame: (socket: Socket, frame: Buffer) => void): {
  restore(): void;
} {
  // eslint-disable-next-line @typescript-eslint/unbound-method -- applied to `this` below
  const write = Socket.prototype.write;
  Socket.prototype.write = function (this: Socket, ...args: unknown[]) {
    const result = write.apply(this, args as Parameters<Socket['write']>);
    if (isWholeServerTextFrame(args[0])) onFrame(this, args[0]);
    return result;
  };
  return {
    restore() {
      Socket.prototype.write = write;
    },
  };
}
