import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Waits until `check` holds, polling every 10 ms; throws once `timeoutMs` has passed. Tests wait
 * on durable state with it (a write, a message received), never on a transient one.
 */
export async function until(
  check: () => boolean | Promise<boolean>,
  timeoutMs = 20_000,
  what = 'condition',
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what} not met in time`);
    await sleep(10);
  }
}
