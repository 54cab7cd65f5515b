import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Commit, EventStore, FeedPosition } from '../eventstore/types.js';
import type { Logger } from '../logger.js';
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

/** Per-projection health. */
export interface ProjectionLag {
  name: string;
  lastError: string | null;
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
  projections: ProjectionLag[];
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
  #running: Promise<void> | undefined;
  #stopping = new AbortController();
  #view: ReadView | undefined;
  #position = 0;
  #active = false;
  #lastError: string | null = null;

  constructor(options: ProjectorRuntimeOptions) {
    this.owner = options.owner ?? `projector-${randomUUID()}`;
    this.#o = {
      leaseTtlMs: 5_000,
      retryDelayMs: 500,
      now: Date.now,
      ...options,
    };
  }

  /** Whether this runtime holds the lease and projects. */
  get active(): boolean {
    return this.#active;
  }

  /** Starts projecting in the background (once it holds the lease). Idempotent. */
  start(): void {
    if (this.#running) return;
    this.#stopping = new AbortController();
    this.#running = this.#loop();
  }

  /** Stops after the commit in progress and gives the lease up. */
  async stop(): Promise<void> {
    this.#stopping.abort();
    await this.#running;
    this.#running = undefined;
    await this.#o.storage.leases.release(PROJECTOR_LEASE, this.owner);
  }

  async #loop(): Promise<void> {
    const { leases } = this.#o.storage;
    const signal = this.#stopping.signal;
    const renewEvery = Math.max(50, Math.floor(this.#o.leaseTtlMs / 3));
    while (!signal.aborted) {
      try {
        this.#active = await leases.acquire(PROJECTOR_LEASE, this.owner, this.#o.leaseTtlMs);
        if (!this.#active) {
          await sleep(renewEvery, undefined, { signal }).catch(() => undefined);
          continue;
        }
        this.#o.logger.info({ owner: this.owner }, 'projector lease acquired');
        await this.#projectWhileLeased(renewEvery);
      } catch (error) {
        this.#lastError = describe(error);
        this.#o.logger.error({ err: error }, 'projector failed; resuming from its checkpoint');
        await sleep(this.#o.retryDelayMs, undefined, { signal }).catch(() => undefined);
      } finally {
        this.#active = false;
      }
    }
  }

  async #projectWhileLeased(renewEvery: number): Promise<void> {
    const { store, storage } = this.#o;
    this.#view = await storage.readModels.active();
    const from = (await storage.checkpoints.load(this.#view.generation)) ?? { position: 0 };
    this.#position = from.position;
    const feed = store.subscribe({ from });
    const stop = () => void feed.close();
    this.#stopping.signal.addEventListener('abort', stop);
    if (this.#stopping.signal.aborted) stop();
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
        if (!this.#active || this.#stopping.signal.aborted) break;
        await this.#lock.run(async () => {
          if (item.kind === 'commit') await this.#applyLive(item.commit);
          await storage.checkpoints.save(this.#view!.generation, item.checkpoint);
          this.#position = item.checkpoint.position;
        });
        this.#lastError = null;
      }
    } finally {
      clearInterval(renewal);
      this.#stopping.signal.removeEventListener('abort', stop);
      await feed.close();
    }
  }

  async #applyLive(commit: Commit): Promise<void> {
    const applied = await applyCommit(commit, this.#view!, this.#o.projections, (p, error) =>
      this.#projectionErrors.set(p.name, describe(error)),
    );
    for (const p of this.#o.projections) this.#projectionErrors.delete(p.name);
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
   * Replays every commit into a fresh generation, then switches reads to it
   * atomically; queries keep being served from the old generation meanwhile, and
   * live projection goes on. Must run on the active projector: when another holds
   * the lease, this asks it to hand over and waits.
   */
  async rebuild(
    options: { onProgress?: (p: RebuildProgress) => void; batchSize?: number } = {},
  ): Promise<RebuildReport> {
    const { store, storage, projections } = this.#o;
    const started = this.#o.now();
    this.start();
    await storage.leases.requestHandover(PROJECTOR_LEASE, this.owner);
    while (!this.#active || !this.#view) {
      if (this.#stopping.signal.aborted) throw new Error('projector stopped before rebuilding');
      await sleep(25);
    }
    const from = this.#view.generation;
    const to = await storage.readModels.createGeneration();
    const target = storage.readModels.view(to);
    let position = 0;
    let events = 0;
    const total = () => Math.max(this.#position, position);
    const replayUpTo = async (limit: number) => {
      for (;;) {
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
        options.onProgress?.({ applied: position, total: total(), rate: position / seconds });
        if (position >= limit) return;
      }
    };
    // Most of the work happens beside live projection, chasing its checkpoint...
    await replayUpTo(this.#position);
    // ...then the last few commits and the switch happen between two live commits.
    await this.#lock.run(async () => {
      if (!this.#active) throw new Error('projector lease lost during rebuild; nothing switched');
      await replayUpTo(this.#position);
      await storage.checkpoints.save(to, (await storage.checkpoints.load(from)) ?? { position });
      if (!(await storage.readModels.activate(to, from))) {
        throw new Error(`read model generation changed during rebuild (expected ${from})`);
      }
      this.#view = target;
    });
    await storage.readModels.dropGeneration(from);
    const seconds = (this.#o.now() - started) / 1000;
    this.#o.logger.info({ from, to, commits: position, events, seconds }, 'rebuild switched');
    return { from, to, commits: position, events, seconds };
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
      projections: this.#o.projections.map((p) => ({
        name: p.name,
        lastError: this.#projectionErrors.get(p.name) ?? null,
      })),
    };
  }

  /** The position the live loop has applied (this process's view). */
  get position(): FeedPosition['position'] {
    return this.#position;
  }
}
