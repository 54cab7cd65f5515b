import type { IncomingMessage, Server, ServerOptions, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { HttpLimits } from '../config.js';

/**
 * Options of `http.createServer` that bound how long a client may hold a socket: the
 * whole request (`requestTimeout`), its headers (`headersTimeout`), an idle kept-alive
 * socket (`keepAliveTimeout`). Node checks the first two every
 * `connectionsCheckingInterval` (30 s by default, so a limit of 10 s could take 40):
 * here once a second. A response may take as long as it needs (subscriptions over SSE);
 * a websocket leaves these timeouts when it upgrades.
 */
export function serverOptions(
  limits: Pick<HttpLimits, 'requestTimeoutMs' | 'headersTimeoutMs' | 'keepAliveTimeoutMs'>,
): ServerOptions {
  return {
    requestTimeout: limits.requestTimeoutMs,
    // Node wants headersTimeout <= requestTimeout.
    headersTimeout: Math.min(limits.headersTimeoutMs, limits.requestTimeoutMs),
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    connectionsCheckingInterval: 1_000,
  };
}

/**
 * Counts the requests a server is answering, so a shutdown can let them finish: once
 * `drain` starts, the server accepts no new connection, every answer closes its
 * connection, and `drain` resolves when the last answer is sent (or at the deadline).
 */
export class RequestDrain {
  readonly #server: Server;
  readonly #inFlight = new Set<ServerResponse>();
  /** Connections accepted whose first request has not arrived yet, with when. */
  readonly #fresh = new Map<Socket, number>();
  #draining = false;

  constructor(server: Server) {
    this.#server = server;
    const fresh = this.#fresh;
    // One listener for every socket (`this` is the socket), removed when its first
    // request arrives: a long-lived connection (a websocket) keeps nothing of it.
    this.#closedFresh = function (this: Socket) {
      fresh.delete(this);
    };
    server.on('connection', (socket: Socket) => {
      fresh.set(socket, Date.now());
      socket.on('close', this.#closedFresh);
    });
    // A websocket's handshake is its first request, and it never reaches `track`.
    server.on('upgrade', (req: IncomingMessage) => this.#arrived(req.socket));
  }

  readonly #closedFresh: (this: Socket) => void;

  #arrived(socket: Socket): void {
    if (this.#fresh.delete(socket)) socket.removeListener('close', this.#closedFresh);
  }

  /** Call first thing for every request. */
  track(req: IncomingMessage, res: ServerResponse): void {
    this.#arrived(req.socket);
    const inFlight = req.headers.accept?.includes('text/event-stream')
      ? this.#streams
      : this.#inFlight;
    inFlight.add(res);
    res.once('close', () => inFlight.delete(res));
    if (this.#draining) res.shouldKeepAlive = false;
  }

  /** Responses that stream (SSE), which only their owner ends. */
  readonly #streams = new Set<ServerResponse>();

  get draining(): boolean {
    return this.#draining;
  }

  /** Requests received and not yet answered (streams included). */
  get inFlight(): number {
    return this.#inFlight.size + this.#streams.size;
  }

  /**
   * From now on every answer closes its connection (`Connection: close`), answers under
   * way included, while the server goes on accepting and serving: what a load balancer
   * expects during its deregistration delay. `drain` does it too. Idempotent.
   */
  closeConnectionsAfterAnswers(): void {
    this.#draining = true;
    for (const res of this.#inFlight) res.shouldKeepAlive = false;
    for (const res of this.#streams) res.shouldKeepAlive = false;
  }

  /**
   * Stops accepting connections and waits, at most `timeoutMs`, for every request
   * already received to be answered. Resolves with the number still unanswered at the
   * deadline (0 when all were). Streaming responses (SSE) are not waited for unless
   * `streams` is true: their owner must end them.
   */
  async drain(timeoutMs: number, options: { streams?: boolean } = {}): Promise<number> {
    this.closeConnectionsAfterAnswers();
    const deadline = Date.now() + timeoutMs;
    const unanswered = () => this.#inFlight.size + (options.streams ? this.#streams.size : 0);
    // Two turns of the event loop first, so connections the kernel has already queued
    // (clients that sent before the signal) are accepted rather than reset by the close.
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setImmediate(resolve));
    // Stops listening; `close`'s callback is left to the final close of the server.
    if (this.#server.listening) this.#server.close();
    // A connection accepted just now has its request on the way: wait for it too (up
    // to 3 s), but not for one that has said nothing for longer (slowloris).
    const waitingForRequest = () =>
      [...this.#fresh.values()].some((acceptedAt) => Date.now() - acceptedAt < 3_000);
    while ((unanswered() > 0 || waitingForRequest()) && Date.now() < deadline) {
      if (!waitingForRequest()) this.#server.closeIdleConnections();
      await sleep(Math.min(20, Math.max(1, deadline - Date.now())));
    }
    return unanswered();
  }
}
