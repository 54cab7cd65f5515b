/** One websocket connection as the live side and yoga's context see it. */
import { setMaxListeners } from 'node:events';
import type { IncomingMessage } from 'node:http';
import { WebSocket } from 'ws';
import type { LiveConnection } from '../live/BoardChangeHub.js';
import { LiveCloseCode, type LiveLimits } from '../live/limits.js';
import { frameWriterFor, type FrameWriter } from './wsFrames.js';

/**
 * One websocket as the live side sees it: its abort signal (aborted when it closes),
 * the caller's credentials from `connection_init`, handshake `Request`s for yoga's
 * context function, and how frames reach its TCP socket.
 */
export class WebSocketConnection implements LiveConnection {
  readonly #abort = new AbortController();
  /** From `connectionParams` (or the upgrade request); operations may bring their own. */
  authorization: string | null = null;
  /** The handshake request of the last authorization asked for (in practice the only one). */
  #request: HandshakeRequest | null = null;
  /** How frames reach the socket; chosen at the first send. */
  #frames: FrameWriter | undefined;
  /** Subscriptions being prepared or running (see `CountedSubscription`). */
  subscriptions = 0;

  constructor(
    private readonly socket: WebSocket,
    private readonly upgrade: IncomingMessage,
    private readonly limits: Pick<LiveLimits, 'maxBufferedBytes' | 'slowConsumerCloseGraceMs'>,
    /** How many listeners the signal may have before Node warns of a leak. */
    maxSignalListeners: number,
  ) {
    setMaxListeners(maxSignalListeners, this.#abort.signal);
  }

  /** The socket closed: every operation on it stops. */
  closed(): void {
    this.#abort.abort(new DOMException('The websocket closed', 'AbortError'));
  }

  get bufferedAmount(): number {
    return this.socket.bufferedAmount;
  }

  /**
   * Writes `frame` unless that would leave more than `maxBufferedBytes` unsent on the
   * socket: then it closes the socket as a slow consumer instead, and says so (false).
   * Checked here, when the bytes are written, not when a change is handed out: one
   * change reaches every subscription of a socket before any of its frames is written.
   */
  send(frame: Buffer): boolean {
    const socket = this.socket;
    if (socket.readyState !== WebSocket.OPEN) return true;
    if (socket.bufferedAmount + frame.length > this.limits.maxBufferedBytes) {
      this.disconnect(LiveCloseCode.SlowConsumer, 'slow consumer');
      return false;
    }
    this.#frames ??= frameWriterFor(socket);
    this.#frames.write(frame);
    return true;
  }

  /**
   * Ends every operation of the socket (its abort signal fires) and starts the close
   * handshake with `code`; the close frame queues behind whatever is
   * unsent, so the socket is destroyed after `slowConsumerCloseGraceMs` if it has
   * not closed by then.
   */
  disconnect(code: LiveCloseCode, reason: string): void {
    // Every operation of the socket stops now, not when its close handshake ends.
    this.#abort.abort(new DOMException(`The websocket is closing: ${reason}`, 'AbortError'));
    if (this.socket.readyState === WebSocket.CLOSED) return;
    if (this.socket.readyState !== WebSocket.CLOSING) this.socket.close(code, reason);
    setTimeout(() => this.socket.terminate(), this.limits.slowConsumerCloseGraceMs).unref();
  }

  /**
   * The handshake as a request carrying `authorization` and the socket's abort signal:
   * what yoga's context function and its execution cancellation read, so an operation
   * over the websocket gets the same context as one over HTTP.
   */
  requestFor(authorization: string | null): Request {
    if (this.#request?.authorization !== authorization) {
      this.#request = new HandshakeRequest(this.upgrade, authorization, this.#abort.signal);
    }
    return this.#request as unknown as Request;
  }
}

/**
 * The part of a Fetch `Request` that yoga and our context read of a websocket
 * operation (`headers.get`, `signal`, `url`, `method`), over the upgrade request. A real
 * `Request` (with its URL, Headers and a signal of its own following the socket's)
 * cost about 2 KiB per connection, kept for as long as the connection lives.
 */
class HandshakeRequest {
  /**
   * What yoga checks to refuse mutations sent by `GET` (a link or a prefetch could
   * trigger them): a websocket operation is a message the client sent on purpose, like
   * a POST, so mutations over graphql-ws run, with the same context (auth), limits and
   * idempotency keys as over HTTP. graphql-ws allows any operation; urql
   * (`enableAllOperations`) and others send mutations this way.
   */
  readonly method = 'POST';

  constructor(
    private readonly upgrade: IncomingMessage,
    readonly authorization: string | null,
    readonly signal: AbortSignal,
  ) {}

  get url(): string {
    return new URL(this.upgrade.url ?? '/', 'http://localhost').href;
  }

  /** Its own `Headers`: `get(name)`, the upgrade's headers but for `authorization`. */
  get headers(): this {
    return this;
  }

  get(name: string): string | null {
    const key = name.toLowerCase();
    if (key === 'authorization') return this.authorization;
    const value = this.upgrade.headers[key];
    return Array.isArray(value) ? value.join(', ') : (value ?? null);
  }
}
