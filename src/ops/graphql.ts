import { setTimeout as sleep } from 'node:timers/promises';
import { GraphQLError } from 'graphql';
import { ErrorCode, ForbiddenError, UnauthenticatedError } from '../boards/errors.js';
import { builder } from '../graphql/builder.js';
import type { GraphQLContext } from '../graphql/context.js';
import { ErrorInterface } from '../graphql/errors.js';
import {
  RebuildInProgressError,
  type CommitGap,
  type ProjectionLag,
  type ProjectorIssue,
  type ProjectorLag,
  type RebuildStatus,
} from '../projector/projectorStatus.js';
import type { LoopStatus } from '../supervision.js';

/**
 * The admin API: read model status, rebuild and cancel, and a status subscription.
 * Only a caller sending `Authorization: Bearer <ADMIN_TOKEN>` may use it; anyone
 * else gets `UnauthenticatedError`/`ForbiddenError` from the mutations and a
 * `FORBIDDEN` error (null data) from the query and the subscription.
 */

/** How often `projectorStatus` looks for a change while a rebuild runs, and otherwise. */
export const STATUS_POLL_MS = { rebuilding: 250, idle: 1_000 } as const;

const ADMIN_ONLY = 'Admin only: send Authorization: Bearer <ADMIN_TOKEN>';

/** Throws the GraphQL error non-admins get from the admin query and subscription. */
function requireAdmin(ctx: GraphQLContext): void {
  if (!ctx.isAdmin)
    throw new GraphQLError(ADMIN_ONLY, { extensions: { code: ErrorCode.Forbidden } });
}

/** Throws the domain error non-admins get from the admin mutations (a union member). */
function requireAdminForMutation(ctx: GraphQLContext): void {
  if (ctx.isAdmin) return;
  if (!ctx.viewer) throw new UnauthenticatedError(ADMIN_ONLY);
  throw new ForbiddenError(ADMIN_ONLY);
}

/** `rebuildReadModels` while this server already runs a rebuild. */
export class RebuildAlreadyRunningError extends Error {
  readonly code = ErrorCode.RebuildInProgress;
  override readonly name = 'RebuildAlreadyRunningError';
  constructor(readonly running: RebuildStatus) {
    super(`A rebuild is already running (${running.processed}/${running.total} commits)`);
  }
}

const LoopStateEnum = builder.enumType('LoopState', {
  description: 'Where a supervised long-running loop is.',
  values: {
    STARTING: { value: 'starting', description: 'Started; has not reported progress yet.' },
    RUNNING: { value: 'running', description: 'Reported progress since it last (re)started.' },
    BACKOFF: { value: 'backoff', description: 'Failed; waits before restarting.' },
    STOPPED: { value: 'stopped', description: 'Not started, or stopped on purpose.' },
  } as const,
});

const LoopStatusRef = builder.objectRef<LoopStatus>('LoopStatus').implement({
  description: 'A supervised loop of this server (projector, change-log follower).',
  fields: (t) => ({
    name: t.exposeString('name'),
    state: t.field({ type: LoopStateEnum, resolve: (l) => l.state }),
    restarts: t.exposeInt('restarts'),
    since: t.field({ type: 'DateTime', resolve: (l) => l.since }),
    lastError: t.string({ nullable: true, resolve: (l) => l.lastError?.message ?? null }),
    lastErrorAt: t.field({ type: 'DateTime', nullable: true, resolve: (l) => l.lastError?.at }),
  }),
});

const ProjectorIssueRef = builder.objectRef<ProjectorIssue>('ProjectorError').implement({
  description: 'One failure of the projector.',
  fields: (t) => ({
    at: t.field({ type: 'DateTime', resolve: (e) => e.at }),
    commit: t.int({
      nullable: true,
      description: 'Position of the commit being applied; null for a lease or feed failure.',
      resolve: (e) => e.position,
    }),
    projection: t.exposeString('projection', { nullable: true }),
    message: t.exposeString('message'),
  }),
});

const CommitGapRef = builder.objectRef<CommitGap>('CommitGap').implement({
  description: 'Commit positions the feed skipped: `after` was applied, then `before`.',
  fields: (t) => ({
    after: t.exposeInt('after'),
    before: t.exposeInt('before'),
    at: t.field({ type: 'DateTime', resolve: (g) => g.at }),
  }),
});

const RebuildStateEnum = builder.enumType('RebuildState', {
  values: {
    RUNNING: { value: 'running' },
    SUCCEEDED: { value: 'succeeded', description: 'Reads use the new generation.' },
    FAILED: { value: 'failed', description: 'Reads stay on the old generation; see `error`.' },
    CANCELLED: { value: 'cancelled', description: 'Reads stay on the old generation.' },
  } as const,
});

const RebuildStatusRef = builder.objectRef<RebuildStatus>('RebuildStatus').implement({
  description: 'A rebuild of every read model into a fresh generation, run by this server.',
  fields: (t) => ({
    id: t.exposeString('id'),
    state: t.field({ type: RebuildStateEnum, resolve: (r) => r.state }),
    startedAt: t.field({ type: 'DateTime', resolve: (r) => r.startedAt }),
    finishedAt: t.field({ type: 'DateTime', nullable: true, resolve: (r) => r.finishedAt }),
    processed: t.exposeInt('processed', { description: 'Commits replayed so far.' }),
    total: t.exposeInt('total', { description: 'Commits to replay (grows with live writes).' }),
    rate: t.exposeFloat('rate', { description: 'Commits per second so far.' }),
    etaSeconds: t.exposeFloat('etaSeconds', { nullable: true }),
    fromGeneration: t.exposeString('from', { nullable: true }),
    toGeneration: t.exposeString('to', { nullable: true }),
    error: t.exposeString('error', { nullable: true }),
  }),
});

/** One projection with the runtime's shared figures (all projections move together). */
interface ProjectionRow {
  lag: ProjectorLag;
  projection: ProjectionLag;
}

const ProjectionStatusRef = builder.objectRef<ProjectionRow>('ProjectionStatus').implement({
  description:
    'One projection. Every projection is applied per commit by the one projector, so checkpoint, lag, generation, lease and rebuild are shared.',
  fields: (t) => ({
    name: t.string({ resolve: (r) => r.projection.name }),
    checkpoint: t.int({ resolve: (r) => r.lag.checkpoint }),
    commitsBehind: t.int({ resolve: (r) => r.lag.commitsBehind }),
    secondsBehind: t.float({ resolve: (r) => r.lag.secondsBehind }),
    eventsProcessed: t.int({
      description: 'Events of the types it handles that this server applied since it started.',
      resolve: (r) => r.projection.eventsProcessed,
    }),
    errors: t.field({ type: [ProjectorIssueRef], resolve: (r) => r.projection.errors }),
    gapsDetected: t.int({ resolve: (r) => r.lag.gapsDetected }),
    activeGeneration: t.string({ resolve: (r) => r.lag.generation }),
    leaseHolder: t.string({ nullable: true, resolve: (r) => r.lag.activeProjector }),
    rebuild: t.field({ type: RebuildStatusRef, nullable: true, resolve: (r) => r.lag.rebuild }),
  }),
});

const ProjectorStatusRef = builder.objectRef<ProjectorLag>('ProjectorStatus').implement({
  description: 'The read side as this server sees it.',
  fields: (t) => ({
    activeGeneration: t.exposeString('generation'),
    checkpoint: t.exposeInt('checkpoint', {
      description: 'Position of the last commit applied to the active generation.',
    }),
    head: t.exposeInt('head', { description: 'Position of the newest commit in the store.' }),
    commitsBehind: t.exposeInt('commitsBehind'),
    secondsBehind: t.exposeFloat('secondsBehind', {
      description: 'Age of the oldest commit not yet applied; 0 when caught up.',
    }),
    leaseHolder: t.exposeString('activeProjector', {
      nullable: true,
      description: 'The instance that projects now (holds the lease); null when none does.',
    }),
    instance: t.exposeString('owner', { description: "This server's projector identity." }),
    commitsProcessed: t.exposeInt('commitsProcessed'),
    eventsProcessed: t.exposeInt('eventsProcessed'),
    errors: t.field({
      type: [ProjectorIssueRef],
      description: 'The last failures, newest last.',
      resolve: (l) => l.errors,
    }),
    gapsDetected: t.exposeInt('gapsDetected'),
    gaps: t.field({ type: [CommitGapRef], resolve: (l) => l.gaps }),
    loop: t.field({ type: LoopStatusRef, resolve: (l) => l.loop }),
    follower: t.field({
      type: LoopStatusRef,
      description:
        "This server's change-log follower (what subscriptions and read-your-writes use).",
      resolve: (_l, _args, ctx) => ctx.services.follower.status(),
    }),
    rebuild: t.field({
      type: RebuildStatusRef,
      nullable: true,
      description: 'The last rebuild this server ran or runs.',
      resolve: (l) => l.rebuild,
    }),
    projections: t.field({
      type: [ProjectionStatusRef],
      resolve: (lag) => lag.projections.map((projection) => ({ lag, projection })),
    }),
  }),
});

builder.objectType(RebuildAlreadyRunningError, {
  name: 'RebuildInProgressError',
  description: 'This server already runs a rebuild; follow it or cancel it.',
  interfaces: [ErrorInterface],
  isTypeOf: (value) => value instanceof RebuildAlreadyRunningError,
  fields: (t) => ({
    rebuild: t.field({ type: RebuildStatusRef, resolve: (e) => e.running }),
  }),
});

builder.queryFields((t) => ({
  projectorStatus: t.field({
    type: ProjectorStatusRef,
    nullable: true,
    description: 'Admin only. Checkpoint, lag, errors, gaps, lease holder and rebuild progress.',
    resolve: async (_root, _args, ctx) => {
      requireAdmin(ctx);
      return ctx.services.projector.lag();
    },
  }),
  projections: t.field({
    type: [ProjectionStatusRef],
    nullable: true,
    description: 'Admin only. `projectorStatus.projections`, one row per projection.',
    resolve: async (_root, _args, ctx) => {
      requireAdmin(ctx);
      const lag = await ctx.services.projector.lag();
      return lag.projections.map((projection) => ({ lag, projection }));
    },
  }),
}));

const RebuildSuccess = builder
  .objectRef<{ rebuild: RebuildStatus }>('RebuildReadModelsSuccess')
  .implement({
    fields: (t) => ({ rebuild: t.field({ type: RebuildStatusRef, resolve: (p) => p.rebuild }) }),
  });
const CancelSuccess = builder
  .objectRef<{ cancelled: boolean; rebuild: RebuildStatus | null }>('CancelRebuildSuccess')
  .implement({
    fields: (t) => ({
      cancelled: t.exposeBoolean('cancelled', {
        description: 'Whether a running rebuild was asked to stop (false: none was running).',
      }),
      rebuild: t.field({ type: RebuildStatusRef, nullable: true, resolve: (p) => p.rebuild }),
    }),
  });

builder.mutationFields((t) => ({
  rebuildReadModels: t.field({
    type: RebuildSuccess,
    description:
      'Admin only. Starts rebuilding every read model into a fresh generation, on any store, and returns at once; reads switch to it atomically when it is done, with no downtime. Follow it with the projectorStatus subscription.',
    errors: { types: [RebuildAlreadyRunningError, ForbiddenError, UnauthenticatedError] },
    resolve: (_root, _args, ctx) => {
      requireAdminForMutation(ctx);
      try {
        return { rebuild: ctx.services.projector.startRebuild() };
      } catch (error) {
        if (error instanceof RebuildInProgressError)
          throw new RebuildAlreadyRunningError(error.running);
        throw error;
      }
    },
  }),
  cancelRebuild: t.field({
    type: CancelSuccess,
    description:
      'Admin only. Stops the running rebuild after its current batch and drops its partial generation; reads never used it.',
    errors: { types: [ForbiddenError, UnauthenticatedError] },
    resolve: async (_root, _args, ctx) => {
      requireAdminForMutation(ctx);
      const cancelled = ctx.services.projector.cancelRebuild();
      return { cancelled, rebuild: (await ctx.services.projector.lag()).rebuild };
    },
  }),
}));

/**
 * The projector's status, first at once and then whenever it changes: looked at
 * every `STATUS_POLL_MS.rebuilding` while a rebuild runs, else every `.idle`.
 */
async function* projectorStatusUpdates(ctx: GraphQLContext): AsyncGenerator<ProjectorLag> {
  let last = '';
  while (!ctx.signal.aborted) {
    const status = await ctx.services.projector.lag();
    const fingerprint = JSON.stringify(status);
    if (fingerprint !== last) {
      last = fingerprint;
      yield status;
    }
    const interval =
      status.rebuild?.state === 'running' ? STATUS_POLL_MS.rebuilding : STATUS_POLL_MS.idle;
    await sleep(interval, undefined, { signal: ctx.signal }).catch(() => undefined);
  }
}

builder.subscriptionField('projectorStatus', (t) =>
  t.field({
    type: ProjectorStatusRef,
    description:
      'Admin only. The projector status now, then whenever it changes (at least every 250 ms during a rebuild).',
    subscribe: (_root, _args, ctx) => {
      requireAdmin(ctx);
      return projectorStatusUpdates(ctx);
    },
    resolve: (status) => status,
  }),
);
