import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Commit, EventStore, FeedPosition } from '../eventstore/types.js';
import type { Logger } from '../logger.js';
import { superviseLoop, type LoopStatus, type SupervisedLoop } from '../supervision.js';
import { applyCommit } from './applyCommit.js';
import { Mutex } from '../mutex.js';
import { WriteBehindView } from './WriteBehindView.js';
import type { Projection, ProjectorStorage, ReadView } from './types.js';

/** Name of the lease that elects the one active projector. */
export const PROJECTOR_LEASE = 'projector';

export interface ProjectorRuntimeOptions {
  store: EventStore;
  storage: ProjectorStorage;
  projections: readonly Projection[];
  logger: Logger;
  /** Identity in the lease. @default a random id */
  owner?: string;
  /** How long a lease lasts without renewal; a dead holder is replaced after it. @default 5_000 */
  leaseTtlMs?: number;
  /** Pause after a failure before resuming from the checkpoint. @default 500 */
  retryDelayMs?: number;
  /** @default Date.now */
  now?: () => number;
}

/** Errors and gaps kept for operators, newest last. */
export const RECENT_ISSUES_KEPT = 20;

/** One failure of the projector, as operators see it. */
export interface ProjectorIssue {
  at: Date;
  /** Position of the commit being applied, null when none was (a lease or feed failure). */
  position: number | null;
  /** The projection that threw, null when the failure was not a projection's. */
  projection: string | null;
  message: string;
}

/** Commit positions the feed skipped: `after` was applied, then `before`, nothing in between. */
export interface CommitGap {
  after: number;
  before: number;
  at: Date;
}

/** Per-projection health. */
export interface ProjectionLag {
  name: string;
  lastError: string | null;
  /** Events of the types it handles that this process applied live since it started. */
  eventsProcessed: number;
  /** This projection's failures, newest last (at most `RECENT_ISSUES_KEPT`). */
  errors: ProjectorIssue[];
}

/** How far the read side trails the book of record. */
export interface ProjectorLag {
  generation: string;
  /** Position of the last commit applied to the active generation. */
  checkpoint: number;
  head: number;
  commitsBehind: number;
  /** Age of the oldest commit not yet applied; 0 when caught up. */
  secondsBehind: number;
  /** Owner of the projector lease, null when nobody projects. */
  activeProjector: string | null;
  lastError: string | null;
  /** This runtime's identity in the lease. */
  owner: string;
  /** Commits and events this process applied live since it started. */
  commitsProcessed: number;
  eventsProcessed: number;
  /** Failures of any kind, newest last (at most `RECENT_ISSUES_KEPT`). */
  errors: ProjectorIssue[];
  /** Gaps in the feed's positions this process saw (the newest `RECENT_ISSUES_KEPT`). */
  gaps: CommitGap[];
  gapsDetected: number;
  /** The projection loop's supervision state in this process. */
  loop: LoopStatus;
  /** The last rebuild this process ran or runs, null when none. */
  rebuild: RebuildStatus | null;
  projections: ProjectionLag[];
}

export type RebuildState = 'running' | 'succeeded' | 'failed' | 'cancelled';

/** A rebuild as operators see it, while it runs and after. */
export interface RebuildStatus {
  id: string;
  state: RebuildState;
  startedAt: Date;
  finishedAt: Date | null;
  /** Commits replayed into the new generation so far. */
  processed: number;
  /** Commits to replay (grows while live writes go on). */
  total: number;
  /** Commits per second so far. */
  rate: number;
  /** Seconds left at the current rate; null before the first batch and once finished. */
  etaSeconds: number | null;
  /** The generation served before, and the one being built (null until created). */
  from: string | null;
  to: string | null;
  error: string | null;
}

/** A rebuild was asked for while this process runs one. */
export class RebuildInProgressError extends Error {
  override readonly name = 'RebuildInProgressError';
  constructor(readonly running: RebuildStatus) {
    super(`a rebuild is already running (${running.processed}/${running.total} commits)`);
  }
}

/** A rebuild was cancelled; its partial generation was dropped and reads never used it. */
export class RebuildCancelledError extends Error {
  override readonly name = 'RebuildCancelledError';
  constructor() {
    super('rebuild cancelled; reads stay on the current generation');
  }
}

export interface RebuildProgress {
  applied: number;
  total: number;
  /** Commits per second so far. */
  rate: number;
}

export interface RebuildReport {
  from: string;
  to: string;
  commits: number;
  events: number;
  seconds: number;
}

const describe = (error: unknown) => (error instanceof Error ? error.message : String(error));

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
  readonly #projectionErrors = new Map<string, string>();
  readonly #loop: SupervisedLoop;
  #stopping = new AbortController();
  #view: ReadView | undefined;
  #position = 0;
  #active = false;
  #lastError: string | null = null;
  /** Called once this runtime holds the lease and has its view (see `#untilProjecting`). */
  readonly #onProjecting = new Set<() => void>();
  readonly #processed = { commits: 0, events: 0, byProjection: new Map<string, number>() };
  #errors: ProjectorIssue[] = [];
  /** Failures already in `#errors` (projection errors are recorded where they happen). */
  readonly #recorded = new WeakSet<object>();
  #gaps: CommitGap[] = [];
  #gapsDetected = 0;
  #rebuild: RebuildStatus | undefined;
  #rebuildAbort: AbortController | undefined;

  constructor(options: ProjectorRuntimeOptions) {
    this.owner = options.owner ?? `projector-${randomUUID()}`;
    this.#o = {
      leaseTtlMs: 5_000,
      retryDelayMs: 500,
      now: Date.now,
      ...options,
    };
    this.#loop = superviseLoop({
      name: 'projector',
      logger: this.#o.logger,
      initialMs: this.#o.retryDelayMs,
      maxMs: Math.max(this.#o.retryDelayMs, 5_000),
      run: async (signal, progress) => {
        try {
          await this.#leaseAndProject(signal, progress);
        } catch (error) {
          this.#lastError = describe(error);
          // A projection's failure was recorded with its commit where it happened.
          if (!(error instanceof Object && this.#recorded.has(error))) {
            this.#recordIssue({ position: null, projection: null, message: this.#lastError });
          }
          throw error;
        } finally {
          this.#active = false;
        }
      },
    });
  }

  /** The projection loop's supervision state, for health and readiness. */
  status(): LoopStatus {
    return this.#loop.status();
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
    this.#rebuildAbort?.abort();
    for (const wake of this.#onProjecting) wake();
    await this.#loop.stop();
    await this.#o.storage.leases.release(PROJECTOR_LEASE, this.owner);
  }

  /**
   * One run of the supervised loop: waits for the lease (polling), projects while it
   * holds it, and goes back to waiting when it loses it. Failures end the run; the
   * supervisor logs them and resumes from the checkpoint after a backoff.
   */
  async #leaseAndProject(signal: AbortSignal, progress: () => void): Promise<void> {
    const { leases } = this.#o.storage;
    const renewEvery = Math.max(50, Math.floor(this.#o.leaseTtlMs / 3));
    while (!signal.aborted) {
      this.#active = await leases.acquire(PROJECTOR_LEASE, this.owner, this.#o.leaseTtlMs);
      // Standing by is healthy too: the loop is alive and polls the lease.
      progress();
      if (!this.#active) {
        await sleep(renewEvery, undefined, { signal }).catch(() => undefined);
        continue;
      }
      this.#o.logger.info({ owner: this.owner }, 'projector lease acquired');
      await this.#projectWhileLeased(renewEvery, signal, progress);
      this.#active = false;
    }
  }

  /** Resolves once this runtime holds the lease and has its view; rejects on `signal`. */
  async #untilProjecting(signal: AbortSignal): Promise<ReadView> {
    for (;;) {
      signal.throwIfAborted();
      if (this.#active && this.#view) return this.#view;
      await new Promise<void>((resolve) => {
        const wake = () => {
          this.#onProjecting.delete(wake);
          signal.removeEventListener('abort', wake);
          resolve();
        };
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

  #recordIssue(issue: Omit<ProjectorIssue, 'at'>): void {
    this.#errors = [...this.#errors, { ...issue, at: new Date(this.#o.now()) }].slice(
      -RECENT_ISSUES_KEPT,
    );
  }

  async #projectWhileLeased(
    renewEvery: number,
    signal: AbortSignal,
    progress: () => void,
  ): Promise<void> {
    const { store, storage } = this.#o;
    this.#view = await storage.readModels.active();
    const from = (await storage.checkpoints.load(this.#view.generation)) ?? { position: 0 };
    this.#position = from.position;
    for (const wake of this.#onProjecting) wake();
    const feed = store.subscribe({ from });
    const stop = () => void feed.close();
    signal.addEventListener('abort', stop);
    if (signal.aborted) stop();
    const renewal = setInterval(() => {
      storage.leases.acquire(PROJECTOR_LEASE, this.owner, this.#o.leaseTtlMs).then(
        (held) => {
          if (!held) {
            this.#o.logger.warn({ owner: this.owner }, 'projector lease lost');
            this.#active = false;
            stop();
          }
        },
        (error: unknown) => {
          this.#lastError = describe(error);
          stop();
        },
      );
    }, renewEvery);
    try {
      for await (const item of feed) {
        if (!this.#active || signal.aborted) break;
        await this.#lock.run(async () => {
          if (item.kind === 'commit') await this.#applyLive(item.commit);
          await storage.checkpoints.save(this.#currentView().generation, item.checkpoint);
          this.#position = item.checkpoint.position;
        });
        this.#lastError = null;
        progress();
      }
    } finally {
      clearInterval(renewal);
      signal.removeEventListener('abort', stop);
      await feed.close();
    }
  }

  async #applyLive(commit: Commit): Promise<void> {
    if (commit.position > this.#position + 1) {
      this.#gapsDetected += 1;
      this.#gaps = [
        ...this.#gaps,
        { after: this.#position, before: commit.position, at: new Date(this.#o.now()) },
      ].slice(-RECENT_ISSUES_KEPT);
      this.#o.logger.warn(
        { after: this.#position, before: commit.position },
        'feed skipped commit positions',
      );
    }
    const applied = await applyCommit(
      commit,
      this.#currentView(),
      this.#o.projections,
      (p, error) => {
        this.#projectionErrors.set(p.name, describe(error));
        if (error instanceof Object) this.#recorded.add(error);
        this.#recordIssue({
          position: commit.position,
          projection: p.name,
          message: describe(error),
        });
      },
    );
    for (const p of this.#o.projections) this.#projectionErrors.delete(p.name);
    const types = commit.events.map((e) => e.type);
    for (const p of this.#o.projections) {
      const handled = types.filter((t) => p.handles.includes(t)).length;
      if (handled > 0) {
        this.#processed.byProjection.set(
          p.name,
          (this.#processed.byProjection.get(p.name) ?? 0) + handled,
        );
      }
    }
    this.#processed.commits += 1;
    this.#processed.events += commit.events.length;
    await this.#o.storage.changeLog.record({
      cursor: commit.position,
      commitId: commit.commitId,
      scopes: applied.scopes,
      operation: commit.operation,
      actor: commit.actor,
      at: commit.occurredAt,
      invalidated: applied.invalidated,
    });
  }

  /**
   * Starts `rebuild()` in the background and returns its status at once; follow it
   * with `lag().rebuild`, stop it with `cancelRebuild()`. Throws
   * `RebuildInProgressError` while this process runs one.
   */
  startRebuild(options: { batchSize?: number } = {}): RebuildStatus {
    if (this.#rebuild?.state === 'running') throw new RebuildInProgressError({ ...this.#rebuild });
    const promise = this.rebuild(options);
    promise.catch((error: unknown) => {
      if (!(error instanceof RebuildCancelledError) && !(error instanceof RebuildInProgressError))
        this.#o.logger.error(
          { err: error },
          'rebuild failed; reads stay on the current generation',
        );
    });
    const status = this.#rebuild;
    if (!status) throw new Error('rebuild did not start');
    return { ...status };
  }

  /**
   * Cancels the rebuild this process runs: it stops after the batch in progress and
   * drops its partial generation; reads never saw it. Returns whether one was running.
   */
  cancelRebuild(): boolean {
    if (this.#rebuild?.state !== 'running' || !this.#rebuildAbort) return false;
    this.#rebuildAbort.abort(new RebuildCancelledError());
    return true;
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
  async rebuild(
    options: {
      onProgress?: (p: RebuildProgress) => void;
      batchSize?: number;
      signal?: AbortSignal;
    } = {},
  ): Promise<RebuildReport> {
    if (this.#rebuild?.state === 'running') throw new RebuildInProgressError({ ...this.#rebuild });
    const { store, storage, projections } = this.#o;
    const started = this.#o.now();
    const abort = new AbortController();
    const signal = AbortSignal.any([
      abort.signal,
      this.#stopping.signal,
      ...(options.signal ? [options.signal] : []),
    ]);
    const status: RebuildStatus = {
      id: randomUUID(),
      state: 'running',
      startedAt: new Date(started),
      finishedAt: null,
      processed: 0,
      total: this.#position,
      rate: 0,
      etaSeconds: null,
      from: null,
      to: null,
      error: null,
    };
    this.#rebuild = status;
    this.#rebuildAbort = abort;
    const finish = (state: RebuildState, error: string | null) => {
      Object.assign(status, {
        state,
        error,
        etaSeconds: null,
        finishedAt: new Date(this.#o.now()),
      });
      if (this.#rebuildAbort === abort) this.#rebuildAbort = undefined;
    };
    let to: string | undefined;
    try {
      this.start();
      await storage.leases.requestHandover(PROJECTOR_LEASE, this.owner);
      const fromView = await this.#untilProjecting(signal);
      const from = fromView.generation;
      status.from = from;
      to = await storage.readModels.createGeneration();
      status.to = to;
      const target = storage.readModels.view(to);
      let position = 0;
      let events = 0;
      const total = () => Math.max(this.#position, position);
      const replayUpTo = async (limit: number) => {
        for (;;) {
          signal.throwIfAborted();
          const batch = await store.readAll({
            after: position,
            limit: Math.min(options.batchSize ?? 500, limit - position),
          });
          if (batch.length === 0) return;
          // Nobody reads the new generation yet: batch its writes, one putMany per collection.
          const buffered = new WriteBehindView(target);
          for (const commit of batch) {
            await applyCommit(commit, buffered, projections);
            events += commit.events.length;
          }
          await buffered.flush();
          position = batch.at(-1)!.position;
          const seconds = Math.max(0.001, (this.#o.now() - started) / 1000);
          const progress = { applied: position, total: total(), rate: position / seconds };
          Object.assign(status, {
            processed: progress.applied,
            total: progress.total,
            rate: progress.rate,
            etaSeconds:
              progress.rate > 0 ? (progress.total - progress.applied) / progress.rate : null,
          });
          options.onProgress?.(progress);
          if (position >= limit) return;
        }
      };
      // Most of the work happens beside live projection, chasing its checkpoint...
      await replayUpTo(this.#position);
      // ...then the last few commits and the switch happen between two live commits.
      await this.#lock.run(async () => {
        signal.throwIfAborted();
        if (!this.#active) throw new Error('projector lease lost during rebuild; nothing switched');
        await replayUpTo(this.#position);
        await storage.checkpoints.save(to!, (await storage.checkpoints.load(from)) ?? { position });
        if (!(await storage.readModels.activate(to!, from))) {
          throw new Error(`read model generation changed during rebuild (expected ${from})`);
        }
        this.#view = target;
        to = undefined; // switched: nothing to drop
      });
      await storage.readModels.dropGeneration(from);
      const seconds = (this.#o.now() - started) / 1000;
      this.#o.logger.info(
        { from, to: target.generation, commits: position, events, seconds },
        'rebuild switched',
      );
      Object.assign(status, { processed: position, total: Math.max(status.total, position) });
      finish('succeeded', null);
      return { from, to: target.generation, commits: position, events, seconds };
    } catch (error) {
      if (to) await storage.readModels.dropGeneration(to).catch(() => undefined);
      if (signal.aborted) {
        finish('cancelled', null);
        this.#o.logger.info({ rebuild: status.id }, 'rebuild cancelled');
        throw signal.reason instanceof RebuildCancelledError
          ? signal.reason
          : new RebuildCancelledError();
      }
      finish('failed', describe(error));
      throw error;
    }
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
      lastError: this.#lastError,
      owner: this.owner,
      commitsProcessed: this.#processed.commits,
      eventsProcessed: this.#processed.events,
      errors: [...this.#errors],
      gaps: [...this.#gaps],
      gapsDetected: this.#gapsDetected,
      loop: this.status(),
      rebuild: this.#rebuild ? { ...this.#rebuild } : null,
      projections: this.#o.projections.map((p) => ({
        name: p.name,
        lastError: this.#projectionErrors.get(p.name) ?? null,
        eventsProcessed: this.#processed.byProjection.get(p.name) ?? 0,
        errors: this.#errors.filter((e) => e.projection === p.name),
      })),
    };
  }

  /** The position the live loop has applied (this process's view). */
  get position(): FeedPosition['position'] {
    return this.#position;
  }
}
