import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { EventStore, FeedItem, FeedPosition } from '../eventstore/types.js';
import type { Logger } from '../logger.js';
import {
  superviseLoop,
  type LoopStatus,
  type SupervisedLoop,
  type SupervisedLoopOptions,
} from '../supervision.js';
import { Mutex } from '../mutex.js';
import { CATCH_UP_BATCH, followStore } from './catchUp.js';
import { LiveApply } from './liveApply.js';
import { DEFAULT_LEASE_TTL_MS, PROJECTOR_LEASE, ProjectorLease } from './projectorLease.js';
import {
  ProjectorHealth,
  type ProjectorLag,
  type RebuildOptions,
  type RebuildReport,
  type RebuildStatus,
} from './projectorStatus.js';
import { RebuildJob } from './rebuildJob.js';
import { FencedOut, type Projection, type ProjectorStorage, type ReadView } from './types.js';

export interface ProjectorRuntimeOptions {
  store: EventStore;
  storage: ProjectorStorage;
  projections: readonly Projection[];
  logger: Logger;
  /** Identity in the lease. @default a random id */
  owner?: string;
  /**
   * How long a lease lasts without renewal; a dead holder is replaced after it. Keep it
   * above a replica set election (`electionTimeoutMillis` is 10 s by default, and an
   * election takes longer than its timeout), or every failover also moves the projector.
   * @default DEFAULT_LEASE_TTL_MS
   */
  leaseTtlMs?: number;
  /** Pause after a failure before resuming from the checkpoint. @default 500 */
  retryDelayMs?: number;
  /** @default Date.now */
  now?: () => number;
  /**
   * Commits applied as one batch at most when far behind the store; at least this many
   * behind, they are read from the store a batch at a time. @default CATCH_UP_BATCH
   */
  catchUpBatchSize?: number;
}

/**
 * The projector: while it holds the lease, it consumes the store's feed from the
 * active generation's checkpoint and, per commit, applies every projection, records
 * the change log entry, then saves the checkpoint. A crash anywhere in between replays
 * the commit on restart, which the idempotent `update` makes harmless.
 */
export class ProjectorRuntime {
  readonly owner: string;
  readonly #o: Required<Omit<ProjectorRuntimeOptions, 'owner'>>;
  readonly #lock = new Mutex();
  readonly #loop: SupervisedLoop;
  readonly #renewal: SupervisedLoop;
  readonly #lease: ProjectorLease;
  readonly #health: ProjectorHealth;
  readonly #live: LiveApply;
  readonly #rebuilds: RebuildJob;
  #stopping = new AbortController();
  /** Ends the current projecting round (closes its feed) when the lease is lost. */
  #endRound: (() => void) | undefined;
  #view: ReadView | undefined;
  #position = 0;
  #active = false;
  /** Called once this runtime holds the lease and has its view (see `#untilProjecting`). */
  readonly #onProjecting = new Set<() => void>();

  constructor(options: ProjectorRuntimeOptions) {
    this.owner = options.owner ?? `projector-${randomUUID()}`;
    this.#o = {
      catchUpBatchSize: CATCH_UP_BATCH,
      leaseTtlMs: DEFAULT_LEASE_TTL_MS,
      retryDelayMs: 500,
      now: Date.now,
      ...options,
    };
    const { store, storage, projections, logger, now } = this.#o;
    this.#lease = new ProjectorLease({
      leases: storage.leases,
      owner: this.owner,
      ttlMs: this.#o.leaseTtlMs,
      logger,
      onLost: () => {
        this.#active = false;
        this.#endRound?.();
      },
    });
    this.#health = new ProjectorHealth(projections, logger, now);
    this.#live = new LiveApply({
      changeLog: storage.changeLog,
      projections,
      health: this.#health,
      now,
      view: () => this.#currentView(),
      position: () => this.#position,
    });
    this.#rebuilds = new RebuildJob({
      store,
      storage,
      projections,
      logger,
      now,
      stopping: () => this.#stopping.signal,
      position: () => this.#position,
      active: () => this.#active,
      untilProjecting: (signal) => {
        this.start();
        return this.#untilProjecting(signal);
      },
      betweenLiveCommits: (work) => this.#lock.run(work),
      renewForSwitch: async () => {
        if (!(await this.#lease.acquire()) || !this.#lease.valid()) {
          throw new Error('projector lease lost during rebuild; nothing switched');
        }
        return this.#lease.fence();
      },
      useView: (view) => {
        this.#view = view;
      },
    });
    const supervised = (name: string, run: SupervisedLoopOptions['run']) =>
      superviseLoop({
        name,
        logger,
        initialMs: this.#o.retryDelayMs,
        maxMs: Math.max(this.#o.retryDelayMs, 5_000),
        run,
      });
    this.#loop = supervised('projector', async (signal, progress) => {
      try {
        await this.#leaseAndProject(signal, progress);
      } catch (error) {
        this.#health.loopFailed(error);
        throw error;
      } finally {
        this.#active = false;
      }
    });
    this.#renewal = supervised('projector-lease', (signal, progress) =>
      this.#lease.renewWhileHeld(signal, progress),
    );
  }

  /** The projection loop's supervision state, for health and readiness. */
  status(): LoopStatus {
    return this.#loop.status();
  }

  /** The lease renewal loop's supervision state (`running` while it renews a held lease). */
  leaseStatus(): LoopStatus {
    return this.#renewal.status();
  }

  /** Whether this runtime holds the lease and projects. */
  get active(): boolean {
    return this.#active;
  }

  /** Starts projecting in the background (once it holds the lease). Idempotent. */
  start(): void {
    if (this.#stopping.signal.aborted) this.#stopping = new AbortController();
    this.#loop.start();
  }

  /** Stops after the commit in progress (cancelling a rebuild) and gives the lease up. */
  async stop(): Promise<void> {
    this.#stopping.abort();
    this.#rebuilds.abort();
    for (const wake of this.#onProjecting) wake();
    await this.#loop.stop();
    await this.#renewal.stop();
    await this.#lease.release();
  }

  /**
   * One run of the supervised loop: waits for the lease (polling), projects while it
   * holds it, and goes back to waiting when it loses it. Failures end the run; the
   * supervisor logs them and resumes from the checkpoint after a backoff.
   */
  async #leaseAndProject(signal: AbortSignal, progress: () => void): Promise<void> {
    while (!signal.aborted) {
      this.#active = await this.#lease.acquire();
      // Standing by is healthy too: the loop is alive and polls the lease.
      progress();
      if (!this.#active) {
        await sleep(this.#lease.renewEvery, undefined, { signal }).catch(() => undefined);
        continue;
      }
      this.#o.logger.info(
        { owner: this.owner, epoch: this.#lease.epoch },
        'projector lease acquired',
      );
      this.#renewal.start();
      try {
        await this.#projectWhileLeased(signal, progress);
      } finally {
        await this.#renewal.stop();
      }
      this.#active = false;
    }
  }

  /**
   * Resolves once this runtime holds the lease and has its view; rejects on `signal`.
   * Until then it asks the holder to hand the lease over, again every renewal period: a
   * request is void when this runtime held the lease as it asked (the store records none
   * for the holder itself), so a lease lost right after asking would otherwise pass to
   * another holder that is never asked, and the wait would last forever. The first
   * request's failure is thrown; a later one is logged and tried again the next period.
   */
  async #untilProjecting(signal: AbortSignal): Promise<ReadView> {
    for (let round = 0; ; round += 1) {
      signal.throwIfAborted();
      if (this.#active && this.#view) return this.#view;
      const asking = this.#lease.requestHandover();
      await (round === 0
        ? asking
        : asking.catch((error: unknown) =>
            this.#o.logger.warn({ err: error }, 'projector lease handover request failed'),
          ));
      if (this.#active && this.#view) return this.#view;
      await new Promise<void>((resolve) => {
        const wake = () => {
          this.#onProjecting.delete(wake);
          signal.removeEventListener('abort', wake);
          clearTimeout(timer);
          resolve();
        };
        const timer = setTimeout(wake, this.#lease.renewEvery);
        this.#onProjecting.add(wake);
        signal.addEventListener('abort', wake, { once: true });
      });
    }
  }

  /** The view live projection writes: the active generation, swapped by a rebuild. */
  #currentView(): ReadView {
    if (!this.#view) throw new Error('projector has no read view yet');
    return this.#view;
  }

  async #projectWhileLeased(signal: AbortSignal, progress: () => void): Promise<void> {
    const { store, storage } = this.#o;
    // Claims the pointer for this tenure: a rebuild switch by a deposed holder is refused
    // from now on, or already happened and this is its generation.
    let active: ReadView;
    try {
      active = await storage.readModels.active({ fence: this.#lease.fence() });
    } catch (error) {
      if (!(error instanceof FencedOut)) throw error;
      this.#lease.lose();
      return;
    }
    this.#view = storage.readModels.view(active.generation, { fence: this.#lease.fence() });
    const from = (await storage.checkpoints.load(this.#view.generation)) ?? { position: 0 };
    this.#position = from.position;
    for (const wake of this.#onProjecting) wake();
    // No write starts once the lease may have lapsed; writes already started carry the
    // fence, which storage refuses once a newer holder has written.
    const leased = () => {
      if (!this.#active || signal.aborted) return false;
      if (this.#lease.valid()) return true;
      this.#lease.lose();
      return false;
    };
    try {
      await followStore({
        store,
        from,
        batchSize: this.#o.catchUpBatchSize,
        position: () => this.#position,
        leased,
        signal,
        apply: (batch) => this.#applyItems(batch),
        applied: () => {
          this.#health.progressed();
          progress();
        },
        alive: progress,
        following: (close) => (this.#endRound = close),
      });
    } catch (error) {
      if (error instanceof FencedOut) {
        this.#lease.lose();
        return;
      }
      throw error;
    }
  }

  /** Applies feed items, as one batch when there are several, between two rebuild steps. */
  async #applyItems(batch: readonly FeedItem[]): Promise<void> {
    await this.#lock.run(async () => {
      const fence = this.#lease.fence();
      const saveCheckpoint = async (done: FeedItem) => {
        await this.#o.storage.checkpoints.save(
          this.#currentView().generation,
          done.checkpoint,
          fence,
        );
        this.#position = done.checkpoint.position;
      };
      if (batch.length > 1 && (await this.#live.applyBatch(batch, saveCheckpoint))) return;
      // One item at a time: as a caught-up projector goes, and where a batch failed (so
      // that a failing commit stops the projector right before it, with its error).
      for (const one of batch) {
        if (one.kind === 'commit') await this.#live.applyLive(one.commit);
        else if (one.kind === 'gap') await this.#live.recordGap(one.position);
        await saveCheckpoint(one);
      }
    });
  }

  /**
   * Starts `rebuild()` in the background and returns its status at once; follow it
   * with `lag().rebuild`, stop it with `cancelRebuild()`. Throws
   * `RebuildInProgressError` while this process runs one.
   */
  startRebuild(options: { batchSize?: number } = {}): RebuildStatus {
    return this.#rebuilds.start(options);
  }

  /**
   * Cancels the rebuild this process runs: it stops after the batch in progress and
   * drops its partial generation; reads never saw it. Returns whether one was running.
   */
  cancelRebuild(): boolean {
    return this.#rebuilds.cancel();
  }

  /**
   * Replays every commit into a fresh generation, then switches reads to it
   * atomically; queries keep being served from the old generation meanwhile, and
   * live projection goes on. Must run on the active projector: when another holds
   * the lease, this asks it to hand over and waits. One at a time per process:
   * throws `RebuildInProgressError` while another runs; `RebuildCancelledError` when
   * cancelled (by `cancelRebuild()`, `signal` or `stop()`), after dropping the new
   * generation.
   */
  rebuild(options: RebuildOptions = {}): Promise<RebuildReport> {
    return this.#rebuilds.run(options);
  }

  /** How far the read side trails the store; answerable from any instance. */
  async lag(): Promise<ProjectorLag> {
    const { store, storage } = this.#o;
    const view = await storage.readModels.active();
    const [checkpoint, head, holder] = await Promise.all([
      storage.checkpoints.load(view.generation),
      store.headPosition(),
      storage.leases.holder(PROJECTOR_LEASE),
    ]);
    const position = checkpoint?.position ?? 0;
    let secondsBehind = 0;
    if (head > position) {
      const [next] = await store.readAll({ after: position, limit: 1 });
      if (next) secondsBehind = Math.max(0, (this.#o.now() - next.occurredAt.getTime()) / 1000);
    }
    return {
      generation: view.generation,
      checkpoint: position,
      head,
      commitsBehind: Math.max(0, head - position),
      secondsBehind,
      activeProjector: holder,
      owner: this.owner,
      ...this.#health.report(),
      loop: this.status(),
      rebuild: this.#rebuilds.status(),
    };
  }

  /** The position the live loop has applied (this process's view). */
  get position(): FeedPosition['position'] {
    return this.#position;
  }
}
