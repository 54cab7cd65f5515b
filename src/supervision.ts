import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from './logger.js';

/**
 * Where a supervised loop is:
 * - `starting`: started, its body has not yet reported progress;
 * - `running`: its body reported progress since it last (re)started;
 * - `backoff`: its body failed or ended and it waits before restarting;
 * - `stopped`: not started, or stopped on purpose.
 */
export type LoopState = 'starting' | 'running' | 'backoff' | 'stopped';

/** What operators (health, readiness, metrics) see of a long-running loop. */
export interface LoopStatus {
  name: string;
  state: LoopState;
  /** How many times the body was restarted after a failure or an unexpected end. */
  restarts: number;
  /** When the loop entered `state`. */
  since: Date;
  /** The last failure, kept after recovery so that operators can see what happened. */
  lastError: { message: string; at: Date } | null;
}

/** Exponential backoff with full jitter between `initialMs` and `maxMs`. */
export interface BackoffOptions {
  /** @default 100 */
  initialMs?: number;
  /** @default 10_000 */
  maxMs?: number;
  /** Random source, injectable for tests. @default Math.random */
  random?: () => number;
}

export interface SupervisedLoopOptions extends BackoffOptions {
  name: string;
  logger: Logger;
  /**
   * The loop's body. It runs until `signal` aborts; when it throws, or returns while
   * the loop is not stopping, it is restarted after a backoff. It calls `progress()`
   * whenever it has done useful work (e.g. read a batch), which marks the loop
   * `running` and resets the backoff.
   */
  run: (signal: AbortSignal, progress: () => void) => Promise<void>;
  /** @default Date.now-based clock */
  now?: () => Date;
}

/** A loop that restarts its body with backoff until stopped, and reports its state. */
export interface SupervisedLoop {
  /** Starts the loop in the background. Idempotent. */
  start(): void;
  /** Aborts the body, waits for it to end, and leaves the loop `stopped`. */
  stop(): Promise<void>;
  status(): LoopStatus;
}

const describe = (error: unknown) => (error instanceof Error ? error.message : String(error));

/**
 * Supervises one long-running loop (a feed, a follower, a lease renewal): a failure
 * is logged with its stack and the body restarts after an exponential, jittered
 * backoff, so one failed read never stops the loop for good.
 */
export function superviseLoop(options: SupervisedLoopOptions): SupervisedLoop {
  const { name, logger, run } = options;
  const initialMs = options.initialMs ?? 100;
  const maxMs = options.maxMs ?? 10_000;
  const random = options.random ?? Math.random;
  const now = options.now ?? (() => new Date());
  let status: LoopStatus = { name, state: 'stopped', restarts: 0, since: now(), lastError: null };
  let controller: AbortController | undefined;
  let running: Promise<void> | undefined;
  let attempt = 0;

  const enter = (state: LoopState) => {
    if (status.state !== state) status = { ...status, state, since: now() };
  };
  const progress = () => {
    attempt = 0;
    if (!controller?.signal.aborted) enter('running');
  };

  const loop = async (signal: AbortSignal) => {
    while (!signal.aborted) {
      enter('starting');
      try {
        await run(signal, progress);
        if (signal.aborted) break;
        logger.warn({ loop: name }, 'supervised loop ended by itself; restarting');
        status = { ...status, lastError: { message: 'ended unexpectedly', at: now() } };
      } catch (error) {
        if (signal.aborted) break;
        logger.error({ err: error, loop: name }, 'supervised loop failed; restarting');
        status = { ...status, lastError: { message: describe(error), at: now() } };
      }
      enter('backoff');
      const ceiling = Math.min(maxMs, initialMs * 2 ** attempt);
      attempt += 1;
      await sleep(Math.max(1, Math.round(random() * ceiling)), undefined, { signal }).catch(
        () => undefined,
      );
      if (!signal.aborted) status = { ...status, restarts: status.restarts + 1 };
    }
  };

  return {
    start() {
      if (running) return;
      controller = new AbortController();
      attempt = 0;
      running = loop(controller.signal);
    },
    async stop() {
      controller?.abort();
      await running;
      running = undefined;
      enter('stopped');
    },
    status: () => status,
  };
}
