/** Thrown by {@link KeyedQueue.run} when a key already has `maxPending` sections waiting. */
export class KeyedQueueFull extends Error {
  override readonly name = 'KeyedQueueFull';
  constructor(
    readonly key: string,
    readonly pending: number,
  ) {
    super(`${pending} sections already waiting for ${key}`);
  }
}

export interface KeyedQueueOptions {
  /**
   * Most sections waiting (not counting the running one) per key; one more is refused
   * with {@link KeyedQueueFull} at once. @default Infinity
   */
  maxPending?: number;
}

/** How one caller takes its place in line. */
export interface AcquireOptions {
  /**
   * False: wait in line even past `maxPending` instead of being refused. For a caller
   * whose refusal would do more harm than its wait (see `CommandOptions.mustNotRefuse`).
   * @default true
   */
  bounded?: boolean;
}

/**
 * Runs async sections one at a time per key, in call order; sections on different keys
 * run concurrently. A section holding several keys (a command writing several streams)
 * takes them one by one in sorted order, so two sections never wait for each other.
 * A key's entry is dropped as soon as nothing runs or waits on it, so memory follows
 * the keys in use, not the keys ever seen.
 *
 * @example
 * const writers = new KeyedQueue();
 * await writers.run(['column-c1'], () => decideAndAppend());
 */
export class KeyedQueue {
  readonly #maxPending: number;
  /** Per key: the tail of its chain and how many sections hold or wait for it. */
  readonly #keys = new Map<string, { tail: Promise<void>; count: number }>();

  constructor(options: KeyedQueueOptions = {}) {
    this.#maxPending = options.maxPending ?? Infinity;
  }

  /** Sections holding or waiting for `key`. */
  size(key: string): number {
    return this.#keys.get(key)?.count ?? 0;
  }

  /** Keys with a section holding or waiting for them. */
  get activeKeys(): number {
    return this.#keys.size;
  }

  /**
   * Runs `section` once it holds every key of `keys`, and releases them when it
   * settles (however it settles).
   *
   * @throws KeyedQueueFull when a key already has `maxPending` sections waiting (unless
   *   `bounded: false`); then nothing waits and nothing runs.
   */
  async run<T>(
    keys: readonly string[],
    section: () => Promise<T>,
    options: AcquireOptions = {},
  ): Promise<T> {
    const release = await this.acquire(keys, options);
    try {
      return await section();
    } finally {
      release();
    }
  }

  /**
   * Resolves once the caller holds every key of `keys`, with the function that
   * releases them (call it exactly once, however the caller's work ends). The caller's
   * place in each key's line is taken at once, in call order.
   *
   * @throws KeyedQueueFull when a key already has `maxPending` sections waiting (unless
   *   `bounded: false`); then no place is taken.
   */
  async acquire(keys: readonly string[], options: AcquireOptions = {}): Promise<() => void> {
    const sorted = [...new Set(keys)].sort();
    for (const key of options.bounded === false ? [] : sorted) {
      const pending = (this.#keys.get(key)?.count ?? 1) - 1;
      if (pending >= this.#maxPending) throw new KeyedQueueFull(key, pending);
    }
    // Take a place on every key now (synchronously), so call order is kept per key.
    let open!: () => void;
    const done = new Promise<void>((resolve) => (open = resolve));
    const waits = sorted.map((key) => {
      const entry = this.#keys.get(key) ?? { tail: Promise.resolve(), count: 0 };
      const previous = entry.tail;
      entry.tail = previous.then(() => done);
      entry.count += 1;
      this.#keys.set(key, entry);
      return previous;
    });
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      open();
      for (const key of sorted) {
        const entry = this.#keys.get(key);
        if (entry && --entry.count === 0) this.#keys.delete(key);
      }
    };
    // Chains never reject, so this only waits.
    for (const wait of waits) await wait;
    return release;
  }
}
