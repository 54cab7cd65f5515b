import type { ServerResponse } from 'node:http';
import type { LiveConnection } from './boardChanges.js';
import type { LiveCloseCode } from './limits.js';

/**
 * An SSE response as the live side watches it: the bytes it holds unsent
 * (`writableLength`, its socket's included), and how a slow consumer is let go. Yoga
 * writes the stream itself, taking a message from the subscription only once the
 * response has drained, so what a paused client makes the server hold is that
 * subscription's queue (bounded with these bytes, see `BoardSubscription`) and this.
 */
export class ResponseConnection implements LiveConnection {
  constructor(
    private readonly response: ServerResponse,
    /** How long the subscription's final error may take to get through before the socket goes. */
    private readonly closeGraceMs: number,
  ) {}

  get bufferedAmount(): number {
    return this.response.writableLength;
  }

  /**
   * The subscription ends with its `SLOW_CONSUMER` error, which yoga writes; a client
   * that does not read even that within the grace has its socket destroyed, which frees
   * what it holds.
   */
  disconnect(_code: LiveCloseCode, _reason: string): void {
    const response = this.response;
    setTimeout(() => {
      if (!response.writableFinished || response.writableLength > 0) response.destroy();
    }, this.closeGraceMs).unref();
  }

  /** Never used: over SSE yoga writes every message. */
  send(): boolean {
    return true;
  }
}
