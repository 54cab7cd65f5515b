/**
 * What operators see of the projector: its failures, the gaps it saw, what it applied,
 * and rebuilds; and `ProjectorHealth`, which keeps that record for one runtime.
 */
import type { Commit } from '../eventstore/types.js';
import type { Logger } from '../logger.js';
import type { LoopStatus } from '../supervision.js';
import type { Projection } from './types.js';

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

/** How a rebuild runs: its progress callback, replay batch size and cancellation. */
export interface RebuildOptions {
  onProgress?: (p: RebuildProgress) => void;
  /** Commits read per batch. @default 500 */
  batchSize?: number;
  signal?: AbortSignal;
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

/** An error's message, or the thrown value as text. */
export const describeError = (error: unknown): string =>
  error instanceof Error ? error.message : String(error);

/** What `ProjectorHealth.report` contributes to `ProjectorLag`. */
export type HealthReport = Pick<
  ProjectorLag,
  | 'lastError'
  | 'commitsProcessed'
  | 'eventsProcessed'
  | 'errors'
  | 'gaps'
  | 'gapsDetected'
  | 'projections'
>;

/**
 * One runtime's record of what it applied and what went wrong: counts per projection,
 * the newest failures and feed gaps (at most `RECENT_ISSUES_KEPT` each), the last error.
 */
export class ProjectorHealth {
  readonly #projections: readonly Projection[];
  readonly #logger: Logger;
  readonly #now: () => number;
  readonly #projectionErrors = new Map<string, string>();
  readonly #processed = { commits: 0, events: 0, byProjection: new Map<string, number>() };
  #errors: ProjectorIssue[] = [];
  /** Failures already in `#errors` (projection errors are recorded where they happen). */
  readonly #recorded = new WeakSet<object>();
  #gaps: CommitGap[] = [];
  #gapsDetected = 0;
  #lastError: string | null = null;

  constructor(projections: readonly Projection[], logger: Logger, now: () => number) {
    this.#projections = projections;
    this.#logger = logger;
    this.#now = now;
  }

  /** A failure of the projection loop; one a projection raised was recorded already. */
  loopFailed(error: unknown): void {
    this.#lastError = describeError(error);
    if (!(error instanceof Object && this.#recorded.has(error))) {
      this.#recordIssue({ position: null, projection: null, message: this.#lastError });
    }
  }

  /** The loop applied an item: the last error is over. */
  progressed(): void {
    this.#lastError = null;
  }

  /** `projection` threw applying the commit at `position`. */
  projectionFailed(projection: Projection, position: number, error: unknown): void {
    this.#projectionErrors.set(projection.name, describeError(error));
    if (error instanceof Object) this.#recorded.add(error);
    this.#recordIssue({ position, projection: projection.name, message: describeError(error) });
  }

  /** Every projection applied a commit: none is failing now. */
  projectionsSucceeded(): void {
    for (const p of this.#projections) this.#projectionErrors.delete(p.name);
  }

  #recordIssue(issue: Omit<ProjectorIssue, 'at'>): void {
    this.#errors = [...this.#errors, { ...issue, at: new Date(this.#now()) }].slice(
      -RECENT_ISSUES_KEPT,
    );
  }

  /** Notes a gap when the feed skipped positions between `previous` and `commit`. */
  noteGap(previous: number, commit: Commit): void {
    if (commit.position <= previous + 1) return;
    this.#gapsDetected += 1;
    this.#gaps = [
      ...this.#gaps,
      { after: previous, before: commit.position, at: new Date(this.#now()) },
    ].slice(-RECENT_ISSUES_KEPT);
    this.#logger.warn(
      { after: previous, before: commit.position },
      'feed skipped commit positions',
    );
  }

  /** Counts a commit applied live, in total and per projection. */
  count(commit: Commit): void {
    const types = commit.events.map((e) => e.type);
    for (const p of this.#projections) {
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

  /** The record so far, copied. */
  report(): HealthReport {
    return {
      lastError: this.#lastError,
      commitsProcessed: this.#processed.commits,
      eventsProcessed: this.#processed.events,
      errors: [...this.#errors],
      gaps: [...this.#gaps],
      gapsDetected: this.#gapsDetected,
      projections: this.#projections.map((p) => ({
        name: p.name,
        lastError: this.#projectionErrors.get(p.name) ?? null,
        eventsProcessed: this.#processed.byProjection.get(p.name) ?? 0,
        errors: this.#errors.filter((e) => e.projection === p.name),
      })),
    };
  }
}
