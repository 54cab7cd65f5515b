import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Commit, EventStore, FeedItem, FeedPosition } from '../eventstore/types.js';
import type { Logger } from '../logger.js';
import { superviseLoop, type LoopStatus, type SupervisedLoop } from '../supervision.js';
import { applyCommit, type AppliedCommit } from './applyCommit.js';
import { Attr, inSpan, linksTo, SpanName } from '../telemetry/spans.js';
import { Mutex } from '../mutex.js';
import { WriteBehindView } from './WriteBehindView.js';
import {
  FencedOut,
  type Fence,
  type Projection,
  type ProjectorStorage,
  type ReadView,
} from './types.js';

/** Name of the lease that elects the one active projector. */
export const PROJECTOR_LEASE = 'projector';

/** Default projector lease: twice a default election timeout, so a failover does not move it. */
export const DEFAULT_LEASE_TTL_MS = 20_000;

/**
 * A quiet feed yields a heartbeat per empty batch (about once a second) with a fresher
 * resume token; saving each would write forever on an idle system. They are saved at most
 * this often: a resume from a slightly older token costs the server a little more, nothing else.
 */
const HEARTBEAT_SAVE_INTERVAL_MS = 60_000;

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
}

/** Feed items applied as one batch at most, when the projector is far behind the store. */
const CATCH_UP_BATCH = 500;

/** Read documents a rebuild keeps in memory between batches (see `WriteBehindOptions.keepUpTo`). */
const REBUILD_DOCUMENTS_KEPT = 200_000;

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
  readonly #renewal: SupervisedLoop;
  #stopping = new AbortController();
  /**
   * The tenure this runtime believes it holds: its fencing epoch, and until when (on this
   * process's monotonic clock) the lease certainly lasts. That is `ttl` from when the
   * acquire or renewal that granted it was SENT: the store measured expiry from when it
   * received the request, later, so the holder stops writing before anyone else may start.
   */
  #lease: { epoch: number; validUntil: number } | undefined;
  /** Ends the current projecting round (closes its feed) when the lease is lost. */
  #endRound: (() => void) | undefined;
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
      leaseTtlMs: DEFAULT_LEASE_TTL_MS,
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
    this.#renewal = superviseLoop({
      name: 'projector-lease',
      logger: this.#o.logger,
      initialMs: this.#o.retryDelayMs,
      maxMs: Math.max(this.#o.retryDelayMs, 5_000),
      run: (signal, progress) => this.#renewWhileHeld(signal, progress),
    });
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
    this.#rebuildAbort?.abort();
    for (const wake of this.#onProjecting) wake();
    await this.#loop.stop();
    await this.#renewal.stop();
    this.#lease = undefined;
    await this.#o.storage.leases.release(PROJECTOR_LEASE, this.owner);
  }

  get #renewEvery(): number {
    return Math.max(50, Math.floor(this.#o.leaseTtlMs / 3));
  }

  /**
   * Takes or renews the lease. Granted only if the answer came back while the lease it
   * grants still certainly lasts: a renewal that returns after its expiry (held up by a
   * failover, a pause) does not count, because another runtime may already have taken
   * the lease over in between. A new epoch also ends the current round: its writes carry
   * the old one.
   */
  async #acquire(): Promise<boolean> {
    const sent = performance.now();
    const grant = await this.#o.storage.leases.acquire(
      PROJECTOR_LEASE,
      this.owner,
      this.#o.leaseTtlMs,
    );
    const validUntil = sent + this.#o.leaseTtlMs;
    const held = this.#lease;
    if (!grant || performance.now() >= validUntil) {
      if (grant) {
        this.#o.logger.warn({ owner: this.owner }, 'projector lease renewal came back too late');
      }
      this.#loseLease();
      return false;
    }
    if (held && held.epoch !== grant.epoch) {
      this.#loseLease();
      return false;
    }
    this.#lease = { epoch: grant.epoch, validUntil };
    return true;
  }

  #leaseValid(): boolean {
    return this.#lease !== undefined && performance.now() < this.#lease.validUntil;
  }

  #loseLease(): void {
    if (this.#lease) this.#o.logger.warn({ owner: this.owner }, 'projector lease lost');
    this.#lease = undefined;
    this.#active = false;
    this.#endRound?.();
  }

  #fence(): Fence {
    if (!this.#lease) throw new FencedOut('the projector lease is not held');
    return { lease: PROJECTOR_LEASE, owner: this.owner, epoch: this.#lease.epoch };
  }

  /** The supervised renewal: every ttl/3 while the lease is held. */
  async #renewWhileHeld(signal: AbortSignal, progress: () => void): Promise<void> {
    while (!signal.aborted) {
      await sleep(this.#renewEvery, undefined, { signal }).catch(() => undefined);
      if (signal.aborted || !this.#lease) return;
      if (!(await this.#acquire())) return;
      progress();
    }
  }

  /**
   * One run of the supervised loop: waits for the lease (polling), projects while it
   * holds it, and goes back to waiting when it loses it. Failures end the run; the
   * supervisor logs them and resumes from the checkpoint after a backoff.
   */
  async #leaseAndProject(signal: AbortSignal, progress: () => void): Promise<void> {
    while (!signal.aborted) {
      this.#active = await this.#acquire();
      // Standing by is healthy too: the loop is alive and polls the lease.
      progress();
      if (!this.#active) {
        await sleep(this.#renewEvery, undefined, { signal }).catch(() => undefined);
        continue;
      }
      this.#o.logger.info(
        { owner: this.owner, epoch: this.#lease?.epoch },
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
      const asking = this.#o.storage.leases.requestHandover(PROJECTOR_LEASE, this.owner);
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
        const timer = setTimeout(wake, this.#renewEvery);
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

  async #projectWhileLeased(signal: AbortSignal, progress: () => void): Promise<void> {
    const { store, storage } = this.#o;
    // Claims the pointer for this tenure: a rebuild switch by a deposed holder is refused
    // from now on, or already happened and this is its generation.
    let active: ReadView;
    try {
      active = await storage.readModels.active({ fence: this.#fence() });
    } catch (error) {
      if (!(error instanceof FencedOut)) throw error;
      this.#loseLease();
      return;
    }
    this.#view = storage.readModels.view(active.generation, { fence: this.#fence() });
    const from = (await storage.checkpoints.load(this.#view.generation)) ?? { position: 0 };
    this.#position = from.position;
    for (const wake of this.#onProjecting) wake();
    const feed = store.subscribe({ from });
    const stop = () => void feed.close();
    this.#endRound = stop;
    signal.addEventListener('abort', stop);
    if (signal.aborted) stop();
    let lastSaved = performance.now();
    const items = feed[Symbol.asyncIterator]();
    // The store's head as last seen, and when: far behind it, items go in batches.
    let head = 0;
    let headSeenAt = -Infinity;
    let batching = false;
    try {
      for (let next = await items.next(); !next.done; next = await items.next()) {
        const item = next.value;
        if (!this.#active || signal.aborted) break;
        // No write starts once the lease may have lapsed; writes already started carry the
        // fence, which storage refuses once a newer holder has written.
        if (!this.#leaseValid()) {
          this.#loseLease();
          break;
        }
        if (
          item.kind === 'heartbeat' &&
          item.checkpoint.position === this.#position &&
          performance.now() - lastSaved < HEARTBEAT_SAVE_INTERVAL_MS
        ) {
          progress();
          continue;
        }
        lastSaved = performance.now();
        // Far behind the store's head (after downtime, a burst): this item and the ones
        // already in the store after it are applied as one batch (see `#applyBatch`). The
        // head is looked up at most once a second while caught up, so a quiet projector
        // does not pay a store call per commit.
        const batch: FeedItem[] = [item];
        if (item.kind !== 'heartbeat') {
          const position = item.checkpoint.position;
          if (position >= head && (batching || performance.now() - headSeenAt >= 1_000)) {
            head = await store.headPosition();
            headSeenAt = performance.now();
          }
          while (batch.length < CATCH_UP_BATCH && batch.at(-1)!.checkpoint.position < head) {
            const more = await items.next();
            if (more.done) break;
            batch.push(more.value);
            if (more.value.kind === 'heartbeat') break;
          }
          batching = batch.length > 1;
        }
        await this.#lock.run(async () => {
          const fence = this.#fence();
          const saveCheckpoint = async (done: FeedItem) => {
            await storage.checkpoints.save(this.#currentView().generation, done.checkpoint, fence);
            this.#position = done.checkpoint.position;
          };
          if (batch.length > 1 && (await this.#applyBatch(batch, saveCheckpoint))) return;
          // One item at a time: as a caught-up projector goes, and where a batch failed (so
          // that a failing commit stops the projector right before it, with its error).
          for (const one of batch) {
            if (one.kind === 'commit') await this.#applyLive(one.commit);
            else if (one.kind === 'gap') await this.#recordGap(one.position);
            await saveCheckpoint(one);
          }
        });
        this.#lastError = null;
        progress();
      }
    } catch (error) {
      if (error instanceof FencedOut) {
        this.#loseLease();
        return;
      }
      throw error;
    } finally {
      this.#endRound = undefined;
      signal.removeEventListener('abort', stop);
      await feed.close();
    }
  }

  /**
   * A position no commit will ever take still gets its change log entry, with nothing in
   * it: cursors stay dense, so `after: cursor` resumes with no gap and no duplicate, and
   * `waitFor` on a later position is not held up. No subscriber is sent anything for it.
   */
  async #recordGap(position: number): Promise<void> {
    await this.#o.storage.changeLog.record({
      cursor: position,
      commitId: `gap-${position}`,
      scopes: [],
      operation: null,
      actor: null,
      at: new Date(this.#o.now()),
      invalidated: [],
    });
  }

  /**
   * Applies one commit and records its change log entry, in a span of its own linked to
   * the trace that made the commit (its `metadata.traceContext`).
   */
  async #applyLive(commit: Commit): Promise<void> {
    const { traceContext } = commit.metadata;
    await inSpan(
      SpanName.Project,
      {
        root: true,
        links: linksTo([traceContext]),
        attributes: {
          [Attr.Position]: commit.position,
          [Attr.ProjectCommits]: 1,
          ...(commit.operation !== null && { [Attr.Operation]: commit.operation }),
        },
      },
      async (span) => {
        const invalidated = await this.#applyAndRecord(commit);
        span.setAttribute(Attr.Invalidated, invalidated);
      },
    );
  }

  /** Applies `commit` to the read models and records its entry; returns what it invalidated. */
  async #applyAndRecord(commit: Commit): Promise<number> {
    this.#noteGap(this.#position, commit);
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
    this.#count(commit);
    await this.#record(commit, applied);
    return applied.invalidated.length;
  }

  /**
   * Applies feed items that are already in the store as one batch: every commit's
   * projections write into a `WriteBehindView` of the active generation, which then writes
   * each changed document once, with the same conditional, fenced `put` one commit would
   * use. Only then are the change log entries recorded, in order (gaps included), so a
   * reader waiting for one finds its documents written; the checkpoint is saved after
   * the last entry recorded. Returns false, having recorded nothing, when a projection or
   * a write failed (other than `FencedOut`): the caller then applies the items one at a
   * time, which `update` makes harmless for documents this attempt wrote.
   */
  async #applyBatch(
    batch: readonly FeedItem[],
    saveCheckpoint: (done: FeedItem) => Promise<void>,
  ): Promise<boolean> {
    // One span for the batch, linked to (the first MAX_SPAN_LINKS of) its commits' traces.
    const commits = batch.flatMap((item) => (item.kind === 'commit' ? [item.commit] : []));
    const traced = commits.flatMap((c) =>
      c.metadata.traceContext ? [c.metadata.traceContext] : [],
    );
    const links = linksTo(traced);
    return inSpan(
      SpanName.Project,
      {
        root: true,
        links,
        attributes: {
          [Attr.Position]: batch[0]!.checkpoint.position,
          [Attr.ProjectLastPosition]: batch.at(-1)!.checkpoint.position,
          [Attr.ProjectCommits]: commits.length,
          [Attr.LinksOmitted]: traced.length - links.length,
        },
      },
      async (span) => {
        const applied = await this.#applyBatchUntraced(batch, saveCheckpoint);
        // Not applied: the commits are applied one at a time next, each in a span of its own.
        if (!applied) span.setAttribute(Attr.ProjectBatchApplied, false);
        return applied;
      },
    );
  }

  /** `#applyBatch`'s work, in its span. */
  async #applyBatchUntraced(
    batch: readonly FeedItem[],
    saveCheckpoint: (done: FeedItem) => Promise<void>,
  ): Promise<boolean> {
    const view = new WriteBehindView(this.#currentView(), { write: 'put' });
    const applied: (AppliedCommit | null)[] = [];
    try {
      for (const item of batch) {
        applied.push(
          item.kind === 'commit' ? await applyCommit(item.commit, view, this.#o.projections) : null,
        );
      }
      await view.flush();
    } catch (error) {
      if (error instanceof FencedOut) throw error;
      return false;
    }
    let recorded: FeedItem | undefined;
    try {
      for (const [i, item] of batch.entries()) {
        if (item.kind === 'commit') {
          this.#noteGap(recorded?.checkpoint.position ?? this.#position, item.commit);
          this.#count(item.commit);
          await this.#record(item.commit, applied[i]!);
        } else if (item.kind === 'gap') {
          await this.#recordGap(item.position);
        }
        recorded = item;
      }
    } finally {
      if (recorded) await saveCheckpoint(recorded);
    }
    return true;
  }

  /** Notes a gap when the feed skipped positions between `previous` and `commit`. */
  #noteGap(previous: number, commit: Commit): void {
    if (commit.position <= previous + 1) return;
    this.#gapsDetected += 1;
    this.#gaps = [
      ...this.#gaps,
      { after: previous, before: commit.position, at: new Date(this.#o.now()) },
    ].slice(-RECENT_ISSUES_KEPT);
    this.#o.logger.warn(
      { after: previous, before: commit.position },
      'feed skipped commit positions',
    );
  }

  /** Counts a commit applied live, in total and per projection. */
  #count(commit: Commit): void {
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
  }

  /** Records a projected commit's change log entry. */
  async #record(commit: Commit, applied: AppliedCommit): Promise<void> {
    await this.#o.storage.changeLog.record({
      cursor: commit.position,
      commitId: commit.commitId,
      scopes: applied.scopes,
      operation: commit.operation,
      actor: commit.actor,
      at: commit.occurredAt,
      invalidated: applied.invalidated,
      ...(applied.changed.length > 0 ? { changed: applied.changed } : {}),
      ...(commit.metadata.traceContext && { traceContext: commit.metadata.traceContext }),
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
      const fromView = await this.#untilProjecting(signal);
      const from = fromView.generation;
      status.from = from;
      to = await storage.readModels.createGeneration();
      status.to = to;
      const target = storage.readModels.view(to);
      // Nobody reads or writes the new generation yet: batch its writes (one putMany per
      // collection per batch), and keep the documents in memory between batches while
      // they fit, so each is read from storage at most once.
      const buffered = new WriteBehindView(target, { keepUpTo: REBUILD_DOCUMENTS_KEPT });
      let position = 0;
      let events = 0;
      const total = () => Math.max(this.#position, position);
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
          for (const commit of batch) {
            await applyCommit(commit, buffered, projections);
            events += commit.events.length;
          }
          await buffered.flush();
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
      await replayUpTo(this.#position);
      // ...then the last few commits and the switch happen between two live commits.
      await this.#lock.run(async () => {
        signal.throwIfAborted();
        if (!this.#active) throw new Error('projector lease lost during rebuild; nothing switched');
        await replayUpTo(this.#position);
        // The lease is renewed right before the switch, and the switch carries its epoch:
        // refused if a newer holder has claimed the pointer meanwhile.
        if (!(await this.#acquire()) || !this.#leaseValid()) {
          throw new Error('projector lease lost during rebuild; nothing switched');
        }
        const fence = this.#fence();
        // The position this rebuild replayed, not the old generation's checkpoint (which
        // another holder may have moved past it).
        await storage.checkpoints.save(to!, { position }, fence);
        if (!(await storage.readModels.activate(to!, from, fence))) {
          throw new Error(`read model generation changed during rebuild (expected ${from})`);
        }
        this.#view = storage.readModels.view(target.generation, { fence });
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
