/**
 * Live projection of feed items on the active generation: one commit at a time in a span
 * of its own, or a run of commits already in the store as one batch; each commit's change
 * log entry recorded after its documents are written.
 */
import type { Commit, FeedItem } from '../eventstore/types.js';
import { Attr, inSpan, linksTo, SpanName } from '../telemetry/spans.js';
import { applyCommit, CommitApplier, type AppliedCommit } from './applyCommit.js';
import type { ProjectorHealth } from './projectorStatus.js';
import {
  FencedOut,
  type ChangeLogEntry,
  type Projection,
  type ProjectorStorage,
  type ReadView,
} from './types.js';
import { WriteBehindView } from './WriteBehindView.js';
import { frozenCopy, frozenRecord } from './frozen.js';

/**
 * Read documents a catch-up keeps in memory from one batch to the next (see
 * `WriteBehindOptions.keepUpTo`), so that a document changed in many batches is read from
 * storage once, not once per batch.
 */
const CATCH_UP_DOCUMENTS_KEPT = 100_000;

export interface LiveApplyOptions {
  changeLog: ProjectorStorage['changeLog'];
  projections: readonly Projection[];
  health: ProjectorHealth;
  now: () => number;
  /** The view live projection writes: the active generation, swapped by a rebuild. */
  view: () => ReadView;
  /** The position the live loop has applied. */
  position: () => number;
}

/** Applies feed items to the read models and records their change log entries. */
export class LiveApply {
  readonly #o: LiveApplyOptions;
  /**
   * The write-behind view of the last batch, kept for the next one while batches follow
   * each other on the same view: its documents are what this projector wrote last. Dropped
   * as soon as anything else may have written (a commit applied alone, a failed batch,
   * another view after a rebuild or a new tenure); the conditional, fenced writes of a flush
   * refuse what a stale copy would regress, and the batch is then applied commit by commit.
   */
  #kept: { view: ReadView; buffered: WriteBehindView } | undefined;

  constructor(options: LiveApplyOptions) {
    this.#o = options;
  }

  /**
   * A position no commit will ever take still gets its change log entry, with nothing in
   * it: cursors stay dense, so `after: cursor` resumes with no gap and no duplicate, and
   * `waitFor` on a later position is not held up. No subscriber is sent anything for it.
   */
  async recordGap(position: number): Promise<void> {
    await this.#o.changeLog.record(this.#gapEntry(position));
  }

  /** The (empty) change log entry of a position no commit will take. */
  #gapEntry(position: number): ChangeLogEntry {
    return {
      cursor: position,
      commitId: `gap-${position}`,
      scopes: [],
      operation: null,
      actor: null,
      at: new Date(this.#o.now()),
      invalidated: [],
    };
  }

  /**
   * Applies one commit and records its change log entry, in a span of its own linked to
   * the trace that made the commit (its `metadata.traceContext`).
   */
  async applyLive(commit: Commit): Promise<void> {
    this.#kept = undefined;
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
    this.#o.health.noteGap(this.#o.position(), commit);
    const applied = await applyCommit(commit, this.#o.view(), this.#o.projections, {
      onProjectionError: (p, error) => this.#o.health.projectionFailed(p, commit.position, error),
    });
    this.#o.health.projectionsSucceeded();
    this.#o.health.count(commit);
    await this.#record(commit, applied);
    return applied.invalidated.length;
  }

  /**
   * Applies feed items that are already in the store as one batch: every commit's
   * projections write into a `WriteBehindView` of the active generation, which then writes
   * each changed document once, with the same conditional, fenced `put` one commit would
   * use. Only then are the change log entries recorded, in order (gaps included), in runs
   * of consecutive cursors (`recordMany`), so a reader waiting for one finds its documents
   * written; the checkpoint is saved after the last run recorded. Returns false, having recorded nothing, when a projection or
   * a write failed (other than `FencedOut`): the caller then applies the items one at a
   * time, which `update` makes harmless for documents this attempt wrote.
   */
  async applyBatch(
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
        const applied = await this.#applyBatchUntraced(batch, commits, saveCheckpoint);
        // Not applied: the commits are applied one at a time next, each in a span of its own.
        if (!applied) span.setAttribute(Attr.ProjectBatchApplied, false);
        return applied;
      },
    );
  }

  /** `#applyBatch`'s work, in its span; `commits` are the batch's commits. */
  async #applyBatchUntraced(
    batch: readonly FeedItem[],
    commits: readonly Commit[],
    saveCheckpoint: (done: FeedItem) => Promise<void>,
  ): Promise<boolean> {
    const target = this.#o.view();
    const kept = this.#kept?.view === target ? this.#kept.buffered : undefined;
    this.#kept = undefined;
    const view =
      kept ?? new WriteBehindView(target, { write: 'put', keepUpTo: CATCH_UP_DOCUMENTS_KEPT });
    const applied: (AppliedCommit | null)[] = [];
    const applier = new CommitApplier(view, this.#o.projections);
    try {
      await applier.prefetch(commits);
      // Indexed loops (as in `CommitApplier.apply`): no iterator objects around the awaits.
      for (let i = 0; i < batch.length; i += 1) {
        const item = batch[i]!;
        applied.push(item.kind === 'commit' ? await applier.apply(item.commit) : null);
      }
      await view.flush();
    } catch (error) {
      if (error instanceof FencedOut) throw error;
      return false;
    }
    this.#kept = { view: target, buffered: view };
    // Entries go in runs of consecutive cursors, one `recordMany` each; the checkpoint
    // moves to the last item whose run was recorded, never past an entry not recorded.
    let recorded: FeedItem | undefined;
    let last: FeedItem | undefined;
    const run: ChangeLogEntry[] = [];
    const recordRun = async () => {
      if (run.length > 0) await this.#o.changeLog.recordMany(run);
      run.length = 0;
      recorded = last;
    };
    try {
      for (let i = 0; i < batch.length; i += 1) {
        const item = batch[i]!;
        let entry: ChangeLogEntry | undefined;
        if (item.kind === 'commit') {
          this.#o.health.noteGap(last?.checkpoint.position ?? this.#o.position(), item.commit);
          this.#o.health.count(item.commit);
          entry = this.#entryOf(item.commit, applied[i]!);
        } else if (item.kind === 'gap') {
          entry = this.#gapEntry(item.position);
        }
        if (entry && run.length > 0 && entry.cursor !== run.at(-1)!.cursor + 1) await recordRun();
        if (entry) run.push(entry);
        last = item;
      }
      await recordRun();
    } finally {
      if (recorded) await saveCheckpoint(recorded);
    }
    return true;
  }

  /** Records a projected commit's change log entry. */
  async #record(commit: Commit, applied: AppliedCommit): Promise<void> {
    await this.#o.changeLog.record(this.#entryOf(commit, applied));
  }

  /**
   * A projected commit's change log entry, deeply frozen as what `applyCommit` reported is:
   * a memory change log keeps it as it is.
   */
  #entryOf(commit: Commit, applied: AppliedCommit): ChangeLogEntry {
    const entry: ChangeLogEntry = {
      cursor: commit.position,
      commitId: commit.commitId,
      scopes: applied.scopes,
      operation: commit.operation,
      actor: commit.actor,
      at: frozenCopy(commit.occurredAt),
      invalidated: applied.invalidated,
    };
    if (applied.changed.length > 0) entry.changed = applied.changed;
    const { traceContext } = commit.metadata;
    if (traceContext) entry.traceContext = frozenCopy(traceContext);
    return frozenRecord(entry);
  }
}
