import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../logger.js';
import { superviseLoop, type LoopStatus, type SupervisedLoop } from '../supervision.js';
import type { EventStore } from './types.js';

/** Streams that move together (a board's: its own, its columns' and its cards'). */
export interface StreamGroup {
  /** What the group is, for operators (a board id). */
  id: string;
  streams: readonly string[];
}

/**
 * What the sweeper moves, as the domain knows it. Both lists may repeat a group already
 * moved: moving again moves nothing and costs one indexed query.
 */
export interface ArchivePlan {
  /** Groups out of use (archived) since `cutoff` or before: their streams go to the archive. */
  archivedBefore(cutoff: Date, signal: AbortSignal): Promise<StreamGroup[]>;
  /** Groups in use again (restored) whose streams may still be archived: they come back. */
  restored(signal: AbortSignal): Promise<StreamGroup[]>;
}

/** What one sweep did. */
export interface SweepResult {
  at: Date;
  /** Groups whose commits moved to the archive in this sweep. */
  archivedGroups: number;
  /** Groups whose commits came back from it. */
  restoredGroups: number;
  /** Commits moved, both ways. */
  commits: number;
}

export interface ArchiveSweeperOptions {
  store: EventStore;
  plan: ArchivePlan;
  /** How long a group stays out of use before its streams move (`ARCHIVE_AFTER_DAYS`). */
  archiveAfterMs: number;
  /** Pause between sweeps. @default 600_000 (10 min) */
  intervalMs?: number;
  logger: Logger;
  /** @default () => new Date() */
  now?: () => Date;
}

/** The loop's name in health, readiness and `/metrics` (`corkboard_loop_*`). */
export const ARCHIVE_SWEEPER_LOOP = 'archive-sweeper';

/**
 * Moves the streams of groups (boards) archived for `archiveAfterMs` to the event store's
 * archive, and brings back those of restored groups, every `intervalMs`. A supervised
 * loop: a failed sweep is logged and retried with backoff, and operators see its state
 * with the other loops. Safe on every instance at once: a move is idempotent and each of
 * its batches one transaction, so two sweepers moving the same group only repeat work.
 */
export class ArchiveSweeper {
  readonly #options: ArchiveSweeperOptions;
  readonly #loop: SupervisedLoop;
  readonly #now: () => Date;
  #last: SweepResult | undefined;

  constructor(options: ArchiveSweeperOptions) {
    this.#options = options;
    this.#now = options.now ?? (() => new Date());
    const intervalMs = options.intervalMs ?? 600_000;
    this.#loop = superviseLoop({
      name: ARCHIVE_SWEEPER_LOOP,
      logger: options.logger,
      maxMs: intervalMs,
      run: async (signal, progress) => {
        for (;;) {
          await this.sweep(signal);
          progress();
          await sleep(intervalMs, undefined, { signal });
        }
      },
    });
  }

  /** Starts sweeping in the background (the first sweep at once). Idempotent. */
  start(): void {
    this.#loop.start();
  }

  /** Stops after the batch in flight. */
  stop(): Promise<void> {
    return this.#loop.stop();
  }

  status(): LoopStatus {
    return this.#loop.status();
  }

  /** The last sweep's result, or undefined before the first one ends. */
  lastSweep(): SweepResult | undefined {
    return this.#last;
  }

  /** One sweep: restores first (a restored board is in use), then archives. */
  async sweep(signal: AbortSignal = new AbortController().signal): Promise<SweepResult> {
    const { store, plan, logger, archiveAfterMs } = this.#options;
    const result: SweepResult = {
      at: this.#now(),
      archivedGroups: 0,
      restoredGroups: 0,
      commits: 0,
    };
    for (const group of await plan.restored(signal)) {
      const { commits } = await store.restoreStreams(group.streams, { signal });
      if (commits === 0) continue;
      result.restoredGroups += 1;
      result.commits += commits;
      logger.info({ group: group.id, commits }, 'archive: commits brought back to the hot store');
    }
    const cutoff = new Date(result.at.getTime() - archiveAfterMs);
    for (const group of await plan.archivedBefore(cutoff, signal)) {
      const { commits } = await store.archiveStreams(group.streams, { signal });
      if (commits === 0) continue;
      result.archivedGroups += 1;
      result.commits += commits;
      logger.info({ group: group.id, commits }, 'archive: commits moved to the archive');
    }
    this.#last = result;
    if (result.commits > 0) {
      logger.info(
        {
          archivedGroups: result.archivedGroups,
          restoredGroups: result.restoredGroups,
          commits: result.commits,
        },
        'archive: sweep done',
      );
    }
    return result;
  }
}
