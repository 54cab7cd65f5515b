import { setImmediate as nextTurn } from 'node:timers/promises';
import { type LeaseGrant, type LeaseStore } from '../types.js';

interface Lease {
  owner: string;
  epoch: number;
  expiresAt: number;
  /** Another owner asked to take over, and when. */
  handover: { to: string; requestedAt: number } | null;
}

/** Leases in one process, on the clock given: the memory adapter of `LeaseStore`. */
export class MemoryLeases implements LeaseStore {
  readonly #leases = new Map<string, Lease>();
  constructor(private readonly now: () => number) {}

  async acquire(name: string, owner: string, ttlMs: number): Promise<LeaseGrant | null> {
    await nextTurn();
    const now = this.now();
    const lease = this.#leases.get(name);
    // A handover request reserves the lease for its requester for one ttl.
    const reservedForOther =
      lease?.handover != null &&
      lease.handover.to !== owner &&
      lease.handover.requestedAt + ttlMs > now;
    if (!lease || lease.expiresAt <= now) {
      if (reservedForOther) return null;
      // A new owner opens a new epoch; the same owner taking its lapsed lease back keeps it.
      const epoch = !lease ? 1 : lease.owner === owner ? lease.epoch : lease.epoch + 1;
      this.#leases.set(name, { owner, epoch, expiresAt: now + ttlMs, handover: null });
      return { epoch };
    }
    if (lease.owner !== owner) return null;
    if (reservedForOther) {
      lease.expiresAt = now;
      return null;
    }
    lease.expiresAt = now + ttlMs;
    return { epoch: lease.epoch };
  }

  async release(name: string, owner: string): Promise<void> {
    await nextTurn();
    const lease = this.#leases.get(name);
    if (lease?.owner === owner) lease.expiresAt = this.now();
  }

  async requestHandover(name: string, owner: string): Promise<void> {
    await nextTurn();
    const lease = this.#leases.get(name);
    if (lease && lease.owner !== owner) lease.handover = { to: owner, requestedAt: this.now() };
  }

  async holder(name: string): Promise<string | null> {
    await nextTurn();
    const lease = this.#leases.get(name);
    return lease && lease.expiresAt > this.now() ? lease.owner : null;
  }
}
