export interface ConflictRetryOptions {
  /**
   * Tries in all, the first one included; must be 1 or more. After the last, the
   * last `VersionConflictError` is returned. @default 5
   */
  attempts?: number;
  /**
   * Pause in ms before retry `n` (1 for the first retry). Jitter keeps editors who
   * collided from colliding again in lockstep, and gives the read side a moment to
   * reflect the winning write. @default up to 10·n ms at random, at most 200
   */
  delayMs?: (retry: number) => number;
  /** Aborting it stops retrying: the call rejects with the signal's reason. */
  signal?: AbortSignal;
}

const defaultDelayMs = (retry: number) => Math.random() * Math.min(200, 10 * retry);

const sleep = (ms: number, signal: AbortSignal | undefined) =>
  new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason as Error);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason as Error);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });

/**
 * Applies the user's change to the current version of a resource, retrying while
 * another writer got there first: each try reloads the resource (`load`), re-applies
 * the change to what it loaded (`change`, which sends the mutation with the loaded
 * `version` as `expectedVersion`), and returns the mutation's result unless it is a
 * `VersionConflictError`. After `attempts` conflicts in a row it returns the last
 * one, so the caller still handles every member of the result union itself.
 *
 * `change` must compute the edit from the resource it is given, not from a copy
 * loaded earlier: that is what makes the retry a re-application rather than a
 * blind overwrite of the other writer's work. Other results (success, validation,
 * not found...) end the retries at once. Errors thrown by `load` or `change`
 * propagate.
 *
 * @example
 * ```ts
 * // Add a label, whatever other editors did to the card's labels meanwhile.
 * const result = await withConflictRetry(
 *   async () => {
 *     const { card } = await client.request(CardDocument, { id: cardId });
 *     if (card?.__typename !== 'Card') throw new Error('card gone');
 *     return card;
 *   },
 *   (card) =>
 *     client.editCard({
 *       input: { cardId, expectedVersion: card.version, labels: [...card.labels, 'urgent'] },
 *     }),
 *   { attempts: 10 },
 * );
 * if (result.__typename === 'VersionConflictError') showConflict(result.conflicts);
 * ```
 */
export async function withConflictRetry<
  T extends { version: number },
  R extends { __typename: string },
>(
  load: () => Promise<T>,
  change: (current: T) => Promise<R>,
  options: ConflictRetryOptions = {},
): Promise<R> {
  const { attempts = 5, delayMs = defaultDelayMs, signal } = options;
  if (!Number.isInteger(attempts) || attempts < 1) {
    throw new RangeError(`attempts must be an integer of 1 or more, got ${attempts}`);
  }
  for (let attempt = 1; ; attempt++) {
    signal?.throwIfAborted();
    const result = await change(await load());
    if (result.__typename !== 'VersionConflictError' || attempt >= attempts) return result;
    await sleep(delayMs(attempt), signal);
  }
}
