/** `Mutex.run` refused a section because `maxQueued` sections were already waiting. */
export class MutexQueueFull extends Error {
  override readonly name = 'MutexQueueFull';
}

/** Runs async sections one at a time, in call order. */
export class Mutex {
  #tail: Promise<unknown> = Promise.resolve();
  #waiting = 0;

  /** @param options.maxQueued sections allowed to wait behind the running one. @default unbounded */
  constructor(private readonly options: { maxQueued?: number } = {}) {}

  /** Sections waiting for their turn (not counting the one running). */
  get queued(): number {
    return this.#waiting;
  }

  /** Runs `section` after every earlier one; rejects with `MutexQueueFull` when the queue is full. */
  run<T>(section: () => Promise<T>): Promise<T> {
    if (this.options.maxQueued !== undefined && this.#waiting > this.options.maxQueued) {
      return Promise.reject(new MutexQueueFull(`${this.#waiting} sections already queued`));
    }
    this.#waiting += 1;
    const result = this.#tail.then(() => {
      this.#waiting -= 1;
      return section();
    });
    this.#tail = result.catch(() => undefined);
    return result;
  }
}
