import type { EventStore } from '../eventstore/types.js';
import type { ChangeLogFollower } from '../projector/ChangeLogFollower.js';
import type { ProjectorRuntime } from '../projector/ProjectorRuntime.js';
import type { ProjectorLag } from '../projector/projectorStatus.js';
import type { ChangeLog } from '../projector/types.js';
import type { LoopStatus } from '../supervision.js';

/** What health and readiness look at. */
export interface HealthSources {
  storeKind: string;
  store: Pick<EventStore, 'headPosition'>;
  changeLog: Pick<ChangeLog, 'read'>;
  projector: Pick<ProjectorRuntime, 'lag'>;
  follower: Pick<ChangeLogFollower, 'seen'>;
  /** Every supervised loop of the process (projector, follower, and any the storage runs). */
  loops: () => LoopStatus[];
  /** Readiness fails when the projector or the follower trails by more than this. */
  maxLagSeconds: number;
  /** How long a store probe may take before the store counts as unreachable. @default 2_000 */
  probeTimeoutMs?: number;
  /** @default Date.now */
  now?: () => number;
}

/** `ok`: all well; `degraded`: serving, but a loop restarts or the read side lags; `down`: not serving. */
export type HealthStatus = 'ok' | 'degraded' | 'down';

/**
 * Why a process is not ready, as `/readyz` tells anyone who asks: stable codes from this
 * fixed set (a loop's reasons end with `:<loop name>`, a name from the code), never an
 * error message. The detail (errors, lag, loops) is the admin API's.
 */
export const HealthReasonCode = {
  /** The store did not answer a probe (within the probe timeout). */
  StoreUnreachable: 'STORE_UNREACHABLE',
  /** A supervised loop is stopped. */
  LoopStopped: 'LOOP_STOPPED',
  /** A supervised loop failed and waits to restart. */
  LoopRestarting: 'LOOP_RESTARTING',
  /** The projector trails the store by more than `READY_MAX_LAG_SECONDS`. */
  ProjectorBehind: 'PROJECTOR_BEHIND',
  /** The change-log follower trails by more than `READY_MAX_LAG_SECONDS`. */
  FollowerBehind: 'FOLLOWER_BEHIND',
  /** The process received SIGTERM or SIGINT (set by the server, not by `checkHealth`). */
  ShuttingDown: 'SHUTTING_DOWN',
} as const;
export type HealthReasonCode = (typeof HealthReasonCode)[keyof typeof HealthReasonCode];

/** A reason as `/readyz` shows it: a code, with its loop's name for a loop's reasons. */
export type HealthReason = HealthReasonCode | `${HealthReasonCode}:${string}`;

export interface HealthReport {
  status: HealthStatus;
  /** Why the status is not `ok`, as stable codes; empty when ok. Safe to show anyone. */
  reasons: HealthReason[];
  /**
   * The same reasons for an operator, one line each, with the errors' messages: for the
   * server's log, never for an unauthenticated answer.
   */
  details: string[];
  store: string;
  projector: ProjectorLag | null;
  follower: { seen: number; secondsBehind: number } | null;
  loops: LoopStatus[];
}

const describe = (error: unknown) => (error instanceof Error ? error.message : String(error));

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Checks the process: the store answers, every supervised loop runs, and the
 * projector and follower trail by at most `maxLagSeconds`. A loop in backoff or a
 * lag over the bound is `degraded`; an unreachable store or a stopped loop is `down`.
 * Readiness is `status === 'ok'`.
 */
export async function checkHealth(sources: HealthSources): Promise<HealthReport> {
  const timeoutMs = sources.probeTimeoutMs ?? 2_000;
  const now = sources.now ?? Date.now;
  const reasons: HealthReason[] = [];
  const details: string[] = [];
  const because = (reason: HealthReason, detail: string) => {
    reasons.push(reason);
    details.push(detail);
  };
  let down = false;
  let projector: ProjectorLag | null = null;
  let follower: HealthReport['follower'] = null;
  try {
    await withTimeout(sources.store.headPosition(), timeoutMs, 'the event store');
    projector = await withTimeout(sources.projector.lag(), timeoutMs, 'the projector storage');
    const seen = sources.follower.seen;
    const next = await withTimeout(
      sources.changeLog.read(seen, { limit: 1 }),
      timeoutMs,
      'the change log',
    );
    const oldestUnseen = next.kind === 'entries' ? next.entries[0] : undefined;
    follower = {
      seen,
      secondsBehind: oldestUnseen ? Math.max(0, (now() - oldestUnseen.at.getTime()) / 1000) : 0,
    };
  } catch (error) {
    down = true;
    because(HealthReasonCode.StoreUnreachable, `store unreachable: ${describe(error)}`);
  }
  const loops = sources.loops();
  for (const loop of loops) {
    if (loop.state === 'stopped') {
      down = true;
      because(`${HealthReasonCode.LoopStopped}:${loop.name}`, `${loop.name} loop is stopped`);
    } else if (loop.state === 'backoff') {
      because(
        `${HealthReasonCode.LoopRestarting}:${loop.name}`,
        `${loop.name} loop is restarting after: ${loop.lastError?.message ?? 'a failure'}`,
      );
    }
  }
  const bound = sources.maxLagSeconds;
  if (projector && projector.secondsBehind > bound) {
    because(
      HealthReasonCode.ProjectorBehind,
      `projector is ${projector.secondsBehind.toFixed(1)} s (${projector.commitsBehind} commits) behind, over ${bound} s`,
    );
  }
  if (follower && follower.secondsBehind > bound) {
    because(
      HealthReasonCode.FollowerBehind,
      `change-log follower is ${follower.secondsBehind.toFixed(1)} s behind, over ${bound} s`,
    );
  }
  const status: HealthStatus = down ? 'down' : reasons.length > 0 ? 'degraded' : 'ok';
  return { status, reasons, details, store: sources.storeKind, projector, follower, loops };
}
