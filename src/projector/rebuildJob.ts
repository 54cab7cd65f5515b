/**
 * The rebuild job: replays every commit into a fresh generation beside live projection,
 * then switches reads to it between two live commits, under the projector's lease.
 */
import { randomUUID } from 'node:crypto';
import type { EventStore } from '../eventstore/types.js';
import type { Logger } from '../logger.js';
import { CommitApplier } from './applyCommit.js';
import {
  describeError,
  RebuildCancelledError,
  RebuildInProgressError,
  type RebuildOptions,
  type RebuildReport,
  type RebuildState,
  type RebuildStatus,
} from './projectorStatus.js';
import type { Fence, Projection, ProjectorStorage, ReadView } from './types.js';
import { WriteBehindView } from './WriteBehindView.js';

/** Read documents a rebuild keeps in memory between batches (see `WriteBehindOptions.keepUpTo`). */
const REBUILD_DOCUMENTS_KEPT = 200_000;

/** What a rebuild needs of the projector runtime it runs in. */
export interface RebuildHost {
  store: EventStore;
  storage: ProjectorStorage;
  projections: readonly Projection[];
  logger: Logger;
  now: () => number;
  /** Aborts when the runtime stops. */
  stopping: () => AbortSignal;
  /** The position live projection has applied. */
  position: () => number;
  /** Whether the runtime holds the lease and projects. */
  active: () => boolean;
  /** Starts the runtime if needed; resolves with the active view once it projects. */
  untilProjecting: (signal: AbortSignal) => Promise<ReadView>;
  /** Runs `work` between two live commits (none is applied meanwhile). */
  betweenLiveCommits: (work: () => Promise<void>) => Promise<void>;
  /** Renews the lease right before the switch; throws when it is lost. */
  renewForSwitch: () => Promise<Fence>;
  /** Live projection writes `view` from now on. */
  useView: (view: ReadView) => void;
}

/** This process's rebuilds: one at a time, its status kept after it ends. */
export class RebuildJob {
  readonly #o: RebuildHost;
  #current: RebuildStatus | undefined;
  #abort: AbortController | undefined;

  constructor(host: RebuildHost) {
    this.#o = host;
  }

  /** Aborts the rebuild in progress (the runtime is stopping). */
  abort(): void {
    this.#abort?.abort();
  }

  /** The last rebuild this process ran or runs, copied; null when none. */
  status(): RebuildStatus | null {
    return this.#current ? { ...this.#current } : null;
  }

  /**
   * Starts `rebuild()` in the background and returns its status at once; follow it
   * with `lag().rebuild`, stop it with `cancelRebuild()`. Throws
   * `RebuildInProgressError` while this process runs one.
   */
  start(options: { batchSize?: number } = {}): RebuildStatus {
    if (this.#current?.state === 'running') throw new RebuildInProgressError({ ...this.#current });
    const promise = this.run(options);
    promise.catch((error: unknown) => {
      if (!(error instanceof RebuildCancelledError) && !(error instanceof RebuildInProgressError))
        this.#o.logger.error(
          { err: error },
          'rebuild failed; reads stay on the current generation',
        );
    });
    const status = this.#current;
    if (!status) throw new Error('rebuild did not start');
    return { ...status };
  }

  /**
   * Cancels the rebuild this process runs: it stops after the batch in progress and
   * drops its partial generation; reads never saw it. Returns whether one was running.
   */
  cancel(): boolean {
    if (this.#current?.state !== 'running' || !this.#abort) return false;
    this.#abort.abort(new RebuildCancelledError());
    return true;
  }

  /** Runs one rebuild (see `ProjectorRuntime.rebuild`). */
  async run(options: RebuildOptions = {}): Promise<RebuildReport> {
    if (this.#current?.state === 'running') throw new RebuildInProgressError({ ...this.#current });
    const { store, storage, projections } = this.#o;
    const started = this.#o.now();
    const abort = new AbortController();
    const signal = AbortSignal.any([
      abort.signal,
      this.#o.stopping(),
      ...(options.signal ? [options.signal] : []),
    ]);
    const status: RebuildStatus = {
      id: randomUUID(),
      state: 'running',
      startedAt: new Date(started),
      finishedAt: null,
      processed: 0,
      total: this.#o.position(),
      rate: 0,
      etaSeconds: null,
      from: null,
      to: null,
      error: null,
    };
    this.#current = status;
    this.#abort = abort;
    const finish = (state: RebuildState, error: string | null) => {
      Object.assign(status, {
        state,
        error,
        etaSeconds: null,
        finishedAt: new Date(this.#o.now()),
      });
      if (this.#abort === abort) this.#abort = undefined;
    };
    let to: string | undefined;
    try {
      const fromView = await this.#o.untilProjecting(signal);
      const from = fromView.generation;
      status.from = from;
      to = await storage.readModels.createGeneration();
      status.to = to;
      const target = storage.readModels.view(to);
      // Nobody reads or writes the new generation yet: the fold stays in memory while it
      // fits (each document read from storage at most once), and is written back, one
      // putMany per collection, when it outgrows that and at the end of each replay; a
      // document changed by many commits is written once.
      const buffered = new WriteBehindView(target, { keepUpTo: REBUILD_DOCUMENTS_KEPT });
      const applier = new CommitApplier(buffered, projections, { report: false });
      let position = 0;
      let events = 0;
      const total = () => Math.max(this.#o.position(), position);
      const replayUpTo = async (limit: number) => {
        for (;;) {
          signal.throwIfAborted();
          const read = await store.readAll({
            after: position,
            limit: Math.min(options.batchSize ?? 500, limit - position),
          });
          // Gaps are skipped, so a batch can reach past `limit`: live projection has not
          // applied those yet, and they are left to it.
          const batch = read.filter((c) => c.position <= limit);
          if (batch.length === 0) return;
          await applier.prefetch(batch);
          for (const commit of batch) {
            await applier.apply(commit);
            events += commit.events.length;
          }
          if (buffered.pending >= REBUILD_DOCUMENTS_KEPT) await buffered.flush();
          position = batch.length < read.length ? limit : batch.at(-1)!.position;
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
      await replayUpTo(this.#o.position());
      await buffered.flush();
      // ...then the last few commits and the switch happen between two live commits.
      await this.#o.betweenLiveCommits(async () => {
        signal.throwIfAborted();
        if (!this.#o.active())
          throw new Error('projector lease lost during rebuild; nothing switched');
        await replayUpTo(this.#o.position());
        await buffered.flush();
        // The lease is renewed right before the switch, and the switch carries its epoch:
        // refused if a newer holder has claimed the pointer meanwhile.
        const fence = await this.#o.renewForSwitch();
        // The position this rebuild replayed, not the old generation's checkpoint (which
        // another holder may have moved past it).
        await storage.checkpoints.save(to!, { position }, fence);
        if (!(await storage.readModels.activate(to!, from, fence))) {
          throw new Error(`read model generation changed during rebuild (expected ${from})`);
        }
        this.#o.useView(storage.readModels.view(target.generation, { fence }));
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
      finish('failed', describeError(error));
      throw error;
    }
  }
}
