/**
 * The projector's tenure: taking and renewing the lease that elects the one active
 * projector, the fence its writes carry, and when the tenure certainly lasts.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../logger.js';
import { FencedOut, type Fence, type ProjectorStorage } from './types.js';

/** Name of the lease that elects the one active projector. */
export const PROJECTOR_LEASE = 'projector';

/** Default projector lease: twice a default election timeout, so a failover does not move it. */
export const DEFAULT_LEASE_TTL_MS = 20_000;

export interface ProjectorLeaseOptions {
  leases: ProjectorStorage['leases'];
  owner: string;
  ttlMs: number;
  logger: Logger;
  /** Called when a held tenure ends (lapsed, renewed too late, or a new epoch). */
  onLost: () => void;
}

/** The lease as one runtime holds it (see `acquire`). */
export class ProjectorLease {
  readonly #o: ProjectorLeaseOptions;
  /**
   * The tenure this runtime believes it holds: its fencing epoch, and until when (on this
   * process's monotonic clock) the lease certainly lasts. That is `ttl` from when the
   * acquire or renewal that granted it was SENT: the store measured expiry from when it
   * received the request, later, so the holder stops writing before anyone else may start.
   */
  #lease: { epoch: number; validUntil: number } | undefined;

  constructor(options: ProjectorLeaseOptions) {
    this.#o = options;
  }

  /** How often a held lease is renewed, and a standby polls for it: a third of the ttl. */
  get renewEvery(): number {
    return Math.max(50, Math.floor(this.#o.ttlMs / 3));
  }

  /** The epoch of the tenure held, undefined when none is. */
  get epoch(): number | undefined {
    return this.#lease?.epoch;
  }

  /**
   * Takes or renews the lease. Granted only if the answer came back while the lease it
   * grants still certainly lasts: a renewal that returns after its expiry (held up by a
   * failover, a pause) does not count, because another runtime may already have taken
   * the lease over in between. A new epoch also ends the current round: its writes carry
   * the old one.
   */
  async acquire(): Promise<boolean> {
    const sent = performance.now();
    const grant = await this.#o.leases.acquire(PROJECTOR_LEASE, this.#o.owner, this.#o.ttlMs);
    const validUntil = sent + this.#o.ttlMs;
    const held = this.#lease;
    if (!grant || performance.now() >= validUntil) {
      if (grant) {
        this.#o.logger.warn({ owner: this.#o.owner }, 'projector lease renewal came back too late');
      }
      this.lose();
      return false;
    }
    if (held && held.epoch !== grant.epoch) {
      this.lose();
      return false;
    }
    this.#lease = { epoch: grant.epoch, validUntil };
    return true;
  }

  /** Whether the tenure certainly lasts now: no write starts once it may have lapsed. */
  valid(): boolean {
    return this.#lease !== undefined && performance.now() < this.#lease.validUntil;
  }

  /** Ends the tenure held (if any) and tells the runtime. */
  lose(): void {
    if (this.#lease) this.#o.logger.warn({ owner: this.#o.owner }, 'projector lease lost');
    this.#lease = undefined;
    this.#o.onLost();
  }

  /** The fence of the tenure held; `FencedOut` when none is. */
  fence(): Fence {
    if (!this.#lease) throw new FencedOut('the projector lease is not held');
    return { lease: PROJECTOR_LEASE, owner: this.#o.owner, epoch: this.#lease.epoch };
  }

  /** The supervised renewal: every ttl/3 while the lease is held. */
  async renewWhileHeld(signal: AbortSignal, progress: () => void): Promise<void> {
    while (!signal.aborted) {
      await sleep(this.renewEvery, undefined, { signal }).catch(() => undefined);
      if (signal.aborted || !this.#lease) return;
      if (!(await this.acquire())) return;
      progress();
    }
  }

  /** Gives the lease up (on stop). */
  async release(): Promise<void> {
    this.#lease = undefined;
    await this.#o.leases.release(PROJECTOR_LEASE, this.#o.owner);
  }

  /** Asks the holder to hand the lease over to this runtime. */
  requestHandover(): Promise<void> {
    return this.#o.leases.requestHandover(PROJECTOR_LEASE, this.#o.owner);
  }
}
