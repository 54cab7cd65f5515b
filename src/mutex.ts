/** A section was refused because `maxQueued` sections were already waiting. */
export class MutexQueueFull extends Error {
  override readonly name = 'MutexQueueFull';
}

/**
 * Runs async sections at most `permits` at a time, the rest waiting in call order; with
 * `maxQueued`, a section that would wait behind that many is refused at once.
 */
export class Semaphore {
  readonly #permits: number;
  readonly #maxQueued: number;
  #running = 0;
  readonly #waiting: (() => void)[] = [];

  /**
   * @param options.permits sections running at once. @default 1
   * @param options.maxQueued sections allowed to wait. @default unbounded
   */
  constructor(options: { permits?: number; maxQueued?: number } = {}) {
    this.#permits = Math.max(1, options.permits ?? 1);
    this.#maxQueued = options.maxQueued ?? Infinity;
  }

  /** Sections waiting for a permit (not counting those running). */
  get queued(): number {
    return this.#waiting.length;
  }

  /** Sections running now. */
  get running(): number {
    return this.#running;
  }

  /**
   * Runs `section` once a permit is free; rejects with `MutexQueueFull` when the queue is
   * full, and with `signal`'s reason when it fires while waiting (leaving the queue at once).
   */
  async run<T>(section: () => Promise<T>, options: { signal?: AbortSignal } = {}): Promise<T> {
    const { signal } = options;
    signal?.throwIfAborted();
    if (this.#running >= this.#permits) {
      if (this.#waiting.length >= this.#maxQueued) {
        throw new MutexQueueFull(`${this.#waiting.length} sections already queued`);
      }
      // The releasing section hands its permit over, so #running stays counted.
      await new Promise<void>((resolve, reject) => {
        const onAbort = () => {
          const at = this.#waiting.indexOf(grant);
          // Already granted: the permit is ours, and the section sees the signal itself.
          if (at < 0) return;
          this.#waiting.splice(at, 1);
          reject(signal!.reason as Error); // rejects as throwIfAborted does, with the reason as given
        };
        const grant = () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        };
        this.#waiting.push(grant);
        signal?.addEventListener('abort', onAbort, { once: true });
      });
    } else {
      this.#running += 1;
    }
    try {
      return await section();
    } finally {
      const next = this.#waiting.shift();
      if (next) next();
      else this.#running -= 1;
    }
  }
}

/** Runs async sections one at a time, in call order. */
export class Mutex extends Semaphore {
  /** @param options.maxQueued sections allowed to wait behind the running one. @default unbounded */
  constructor(options: { maxQueued?: number } = {}) {
    super({ permits: 1, ...options });
  }
}
