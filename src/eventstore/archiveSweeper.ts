import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../logger.js';
import { superviseLoop, type LoopStatus, type SupervisedLoop } from '../supervision.js';
import type { EventStore } from './types.js';

/** Which way a group's commits move: out to the archive, or back to the hot store. */
export type MoveDirection = 'archive' | 'restore';

/**
 * A group of streams (a board's) that the plan says should move, as its record stood when
 * listed. `token` is the plan's version of that record: `begin` refuses a move whose
 * record changed since (another sweeper, or a restore, wrote it).
 */
export interface PlannedMove {
  /** What the group is, for operators (a board id). */
  group: string;
  direction: MoveDirection;
  /** Since when the group is out of use (archived); null when in use. */
  since: Date | null;
  token: number;
}

/** The group's streams and whether it is out of use, as the book of record (the event log) says now. */
export interface GroupStreams {
  streams: string[];
  /** Since when the group is out of use; null when it is in use. */
  since: Date | null;
}

/**
 * What the sweeper moves, as the domain knows it. The plan keeps a durable record per group
 * of where its commits are (`hot`, `archive`, or mixed while a move runs), so a sweep lists
 * only the groups that must move, and the record survives restarts and is shared by every
 * instance.
 */
export interface ArchivePlan {
  /**
   * Groups whose commits should move `direction`, at most `limit`: for `archive`, groups
   * out of use whose commits are not all archived, oldest `since` first, whether or not
   * they are old enough yet; for `restore`, groups in use again whose commits may still be
   * archived.
   */
  due(direction: MoveDirection, limit: number, signal: AbortSignal): Promise<PlannedMove[]>;
  /** Every stream of the group and its state, read from the book of record. */
  streamsOf(group: string, signal: AbortSignal): Promise<GroupStreams>;
  /**
   * Records that `move` starts (its commits are mixed from here on), if the group's record
   * is still at `move.token`. Returns the move with its new token, or null when the
   * record changed since `due` listed it (then nothing was recorded and nothing may move).
   */
  begin(move: PlannedMove, signal: AbortSignal): Promise<PlannedMove | null>;
  /** Records that `move` (as `begin` returned it) is done; false when the record changed since. */
  end(move: PlannedMove, signal: AbortSignal): Promise<boolean>;
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
  /**
   * Groups listed as due that did not move: the event log said they were no longer due, or
   * another record came first. The next sweep plans them again.
   */
  skippedGroups: number;
  /** When the next group out of use becomes old enough to move; null when none is waiting. */
  nextDueAt: Date | null;
  /** Whether a list held `limit` groups: more may be due, so the next sweep starts at once. */
  full: boolean;
}

export interface ArchiveSweeperOptions {
  store: EventStore;
  plan: ArchivePlan;
  /** How long a group stays out of use before its streams move (`ARCHIVE_AFTER_DAYS`). */
  archiveAfterMs: number;
  /** Longest pause between sweeps (a sweep also runs when a group becomes due, or on `wake()`). @default 600_000 (10 min) */
  intervalMs?: number;
  /** Most groups moved per direction in one sweep. @default {@link ARCHIVE_GROUPS_PER_SWEEP} */
  groupsPerSweep?: number;
  /**
   * Whether this instance may sweep now; checked before each group. The app passes "holds
   * the projector lease", so one instance sweeps at a time. @default always
   */
  mayRun?: () => boolean;
  logger: Logger;
  /** @default () => new Date() */
  now?: () => Date;
}

/** The loop's name in health, readiness and `/metrics` (`corkboard_loop_*`). */
export const ARCHIVE_SWEEPER_LOOP = 'archive-sweeper';

/** Most groups (boards) one sweep moves in each direction; the rest wait for the next sweep. */
export const ARCHIVE_GROUPS_PER_SWEEP = 100;

/**
 * Moves the streams of groups (boards) out of use for `archiveAfterMs` to the event store's
 * archive, and brings back those of groups in use again. A supervised loop: a failed sweep
 * is logged and retried with backoff, and operators see its state with the other loops.
 *
 * Each move is recorded by the plan before (`begin`) and after (`end`), each record
 * conditional on the one the sweep listed. Before moving, the sweeper re-reads the group
 * from the event log and skips it unless it is still due. So a move never starts on a
 * record someone else changed, and a move cut short (a crash, a restore racing it) leaves
 * the group marked mixed, which the next sweep moves whichever way the group's state says.
 * Moves themselves are idempotent and leave every commit in exactly one place.
 */
export class ArchiveSweeper {
  readonly #options: ArchiveSweeperOptions;
  readonly #loop: SupervisedLoop;
  readonly #now: () => Date;
  readonly #intervalMs: number;
  readonly #limit: number;
  #last: SweepResult | undefined;
  #woken = false;
  #wakeUp: (() => void) | undefined;

  constructor(options: ArchiveSweeperOptions) {
    this.#options = options;
    this.#now = options.now ?? (() => new Date());
    this.#intervalMs = options.intervalMs ?? 600_000;
    this.#limit = options.groupsPerSweep ?? ARCHIVE_GROUPS_PER_SWEEP;
    this.#loop = superviseLoop({
      name: ARCHIVE_SWEEPER_LOOP,
      logger: options.logger,
      maxMs: this.#intervalMs,
      run: async (signal, progress) => {
        for (;;) {
          this.#woken = false;
          const result = await this.sweep(signal);
          progress();
          await this.#pause(this.#pauseAfter(result), signal);
        }
      },
    });
  }

  /** Starts sweeping in the background (the first sweep at once). Idempotent. */
  start(): void {
    this.#loop.start();
  }

  /** Stops after the move in flight. */
  stop(): Promise<void> {
    return this.#loop.stop();
  }

  /** Sweeps again at once (e.g. a board was archived or restored); no-op when stopped. */
  wake(): void {
    this.#woken = true;
    this.#wakeUp?.();
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
    const { plan, logger, archiveAfterMs } = this.#options;
    const mayRun = this.#options.mayRun ?? (() => true);
    const at = this.#now();
    const result: SweepResult = {
      at,
      archivedGroups: 0,
      restoredGroups: 0,
      commits: 0,
      skippedGroups: 0,
      nextDueAt: null,
      full: false,
    };
    const cutoff = new Date(at.getTime() - archiveAfterMs);
    if (mayRun()) {
      const restores = await plan.due('restore', this.#limit, signal);
      for (const move of restores) {
        if (!mayRun()) break;
        await this.#move(move, cutoff, result, signal);
      }
      const archives = await plan.due('archive', this.#limit, signal);
      // A full list may hide more due groups; only worth sweeping again at once if it moved some.
      result.full = restores.length >= this.#limit || archives.length >= this.#limit;
      for (const move of archives) {
        if (move.since && move.since > cutoff) {
          result.nextDueAt = new Date(move.since.getTime() + archiveAfterMs);
          result.full = false;
          break;
        }
        if (!mayRun()) break;
        await this.#move(move, cutoff, result, signal);
      }
    }
    result.full &&= result.archivedGroups + result.restoredGroups > 0;
    this.#last = result;
    if (result.commits > 0 || result.skippedGroups > 0) {
      const { archivedGroups, restoredGroups, commits, skippedGroups } = result;
      logger.info(
        { archivedGroups, restoredGroups, commits, skippedGroups },
        'archive: sweep done',
      );
    }
    return result;
  }

  async #move(
    listed: PlannedMove,
    cutoff: Date,
    result: SweepResult,
    signal: AbortSignal,
  ): Promise<void> {
    const { store, plan, logger } = this.#options;
    const { group, direction } = listed;
    // The record may lag the log (a read model): the log decides whether it is still due.
    const { streams, since } = await plan.streamsOf(group, signal);
    const stillDue = direction === 'archive' ? since !== null && since <= cutoff : since === null;
    const begun = stillDue ? await plan.begin(listed, signal) : null;
    if (!begun) {
      result.skippedGroups += 1;
      logger.info({ group, direction, stillDue }, 'archive: group no longer due or taken; skipped');
      return;
    }
    const { commits } =
      direction === 'archive'
        ? await store.archiveStreams(streams, { signal })
        : await store.restoreStreams(streams, { signal });
    const ended = await plan.end(begun, signal);
    if (direction === 'archive') result.archivedGroups += 1;
    else result.restoredGroups += 1;
    result.commits += commits;
    logger.info(
      { group, direction, streams: streams.length, commits, recorded: ended },
      direction === 'archive'
        ? 'archive: commits moved to the archive'
        : 'archive: commits brought back to the hot store',
    );
  }

  #pauseAfter(result: SweepResult): number {
    if (result.full) return 0;
    if (!result.nextDueAt) return this.#intervalMs;
    const untilDue = result.nextDueAt.getTime() - this.#now().getTime();
    return Math.max(0, Math.min(this.#intervalMs, untilDue));
  }

  async #pause(ms: number, signal: AbortSignal): Promise<void> {
    if (this.#woken || ms === 0) return;
    const wakeUp = new AbortController();
    this.#wakeUp = () => wakeUp.abort();
    try {
      await sleep(ms, undefined, { signal: AbortSignal.any([signal, wakeUp.signal]) });
    } catch (error) {
      if (signal.aborted) throw error;
    } finally {
      this.#wakeUp = undefined;
    }
  }
}
