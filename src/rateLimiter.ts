import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';

/** How much a client may do: `points` in every window of `windowMs`. */
export interface RateLimit {
  /** Points (actions) allowed per window; 0 turns the limit off. */
  points: number;
  /** Length of one window. @default 60_000 */
  windowMs?: number;
}

/** Thrown by {@link RateLimiter.consume} when the client has used its points for now. */
export class RateLimited extends Error {
  override readonly name = 'RateLimited';
  constructor(
    /** Which limit was reached, e.g. `registrations`. */
    readonly limit: string,
    /** How long until the client may try again (at least 1 ms). */
    readonly retryAfterMs: number,
  ) {
    super(`Too many ${limit}; retry in ${Math.ceil(retryAfterMs / 1000)} s`);
  }

  /** `retryAfterMs` in whole seconds, rounded up, as HTTP's `Retry-After` takes it. */
  get retryAfterSeconds(): number {
    return Math.max(1, Math.ceil(this.retryAfterMs / 1000));
  }
}

/**
 * Per-client rate limits by name, in this process's memory (rate-limiter-flexible's
 * `RateLimiterMemory`: a fixed window per client key, each key forgotten when its window
 * ends, so memory follows the clients active in one window). A limit of 0 points is off.
 *
 * @example
 * const limits = new RateLimiter({ signIn: { points: 10, windowMs: 60_000 } });
 * await limits.consume('signIn', `ip:${address}`); // throws RateLimited past 10 a minute
 */
export class RateLimiter<Name extends string> {
  readonly #limiters = new Map<Name, RateLimiterMemory>();

  constructor(limits: Readonly<Record<Name, RateLimit>>) {
    for (const [name, limit] of Object.entries(limits) as [Name, RateLimit][]) {
      if (!Number.isInteger(limit.points) || limit.points < 0) {
        throw new RangeError(`rate limit ${name}: points must be a whole number >= 0`);
      }
      if (limit.points === 0) continue;
      const windowMs = limit.windowMs ?? 60_000;
      if (!(windowMs >= 1_000)) throw new RangeError(`rate limit ${name}: window under 1 s`);
      // The library counts windows in seconds.
      this.#limiters.set(
        name,
        new RateLimiterMemory({ points: limit.points, duration: windowMs / 1000 }),
      );
    }
  }

  /**
   * Takes `points` of `client`'s allowance under `limit`. Resolves when they were
   * available; otherwise throws {@link RateLimited} and the client's count stays at the
   * limit (a refused call does not lengthen its wait). A limit that is off always resolves.
   */
  async consume(limit: Name, client: string, points = 1): Promise<void> {
    const limiter = this.#limiters.get(limit);
    if (!limiter || points <= 0) return;
    try {
      await limiter.consume(client, points);
    } catch (rejection) {
      if (!(rejection instanceof RateLimiterRes)) throw rejection;
      throw new RateLimited(limit, Math.max(1, rejection.msBeforeNext));
    }
  }
}
