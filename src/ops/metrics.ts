import {
  createCounter,
  createHistogram,
  usePrometheus,
  type FillLabelsFnParams,
} from '@graphql-yoga/plugin-prometheus';
import {
  defaultFieldResolver,
  type GraphQLResolveInfo,
  type GraphQLSchema,
  OperationTypeNode,
} from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { ErrorCode } from '../boards/errors.js';
import type { AppendRequest, EventStore } from '../eventstore/types.js';
import { EventStoreBusy, VersionConflict } from '../eventstore/errors.js';
import type { ChangeLogEntrySource } from '../live/BoardChangeHub.js';
import type { ChangeLogFollower } from '../projector/ChangeLogFollower.js';
import type { ProjectorRuntime } from '../projector/ProjectorRuntime.js';
import type { LoopStatus } from '../supervision.js';
import { registerScrapeGauges } from './scrapeGauges.js';

/**
 * What the metrics read from the live side. One small adapter, so the numbers can
 * be re-pointed when the hub grows its own counters.
 */
export interface LiveMetricsSource {
  /** Subscriptions open now. */
  subscribers(): number;
  /** Websockets open now. */
  connections(): number;
  /** Subscriptions ended as slow consumers since start. */
  slowConsumers(): number;
  /** Subscriber groups with a member now (subscriptions that share one execution per change). */
  groups(): number;
  /** Executions of the subscription document since start: one per group per change. */
  groupExecutions(): number;
}

/** What the metrics read when scraped. */
export interface MetricsSources {
  projector: Pick<ProjectorRuntime, 'lag'>;
  follower: Pick<ChangeLogFollower, 'seen'>;
  live: LiveMetricsSource;
  /** Every supervised loop of the process. */
  loops: () => LoopStatus[];
  /** Whether `/readyz` would answer 200 now. */
  ready?: () => Promise<boolean>;
}

/** One process's Prometheus metrics (prom-client), served at `/metrics`. */
export interface Metrics {
  readonly registry: Registry;
  /** Request/operation duration (yoga's Prometheus plugin) and commits/conflicts by mutation. */
  readonly yogaPlugins: Plugin[];
  /** `store` whose appends are timed into `corkboard_append_duration_seconds`. */
  instrumentStore(store: EventStore): EventStore;
  /** `source` whose listeners' dispatch of each change is timed (the hub's fan-out). */
  timeFanOut(source: ChangeLogEntrySource): ChangeLogEntrySource;
  /** Tells the scrape-time gauges where to read. Until then they report nothing. */
  observe(sources: MetricsSources): void;
  /** The exposition text and its content type. */
  render(): Promise<{ contentType: string; body: string }>;
}

/** The context key under which an app's metrics take the results of its mutations. */
const MUTATION_SINK = 'corkboardMutationResults';
type MutationSink = (info: GraphQLResolveInfo, result: unknown) => void;

const reporting = new WeakSet<GraphQLSchema>();

/**
 * Wraps every mutation resolver of `schema`, once per schema, to hand its result to
 * the `MUTATION_SINK` of the operation's context. The schema is built once per
 * process and shared by every app in it (tests run several): each operation reports
 * to its own app's metrics, and a second app adds no second wrapper.
 */
function reportMutationResults(schema: GraphQLSchema): void {
  const mutationType = schema.getMutationType();
  if (!mutationType || reporting.has(schema)) return;
  reporting.add(schema);
  for (const field of Object.values(mutationType.getFields())) {
    const resolve = field.resolve ?? defaultFieldResolver;
    field.resolve = async (root, args, context, info) => {
      const result: unknown = await resolve(root, args, context, info);
      const sink = (context as Record<string, unknown> | null)?.[MUTATION_SINK];
      if (typeof sink === 'function') (sink as MutationSink)(info, result);
      return result;
    };
  }
}

/** Mutations of the admin API: they commit nothing to the event store. */
const ADMIN_MUTATIONS = new Set(['rebuildReadModels', 'cancelRebuild']);

/** Methods reported as themselves; Node's parser accepts a few dozen more. */
const HTTP_METHODS = new Set(['GET', 'POST', 'OPTIONS', 'HEAD', 'PUT', 'DELETE', 'PATCH']);

const seconds = (startedNs: bigint) => Number(process.hrtime.bigint() - startedNs) / 1e9;

const errorCodes = new Set<unknown>(Object.values(ErrorCode));

/**
 * A domain error a mutation returns as data. Not `instanceof Error`: the errors
 * plugin hands its proxy of the error on, so it is recognised by its `code`.
 */
const isCodedError = (value: unknown): value is { code: string } =>
  typeof value === 'object' && value !== null && errorCodes.has((value as { code?: unknown }).code);

/** What `operationName` reads for an operation whose name is not a known one. */
export const OTHER_OPERATION = 'other';
/** What `operationName` reads for an operation without a name. */
export const ANONYMOUS_OPERATION = 'anonymous';

export interface MetricsOptions {
  /**
   * Operation names reported as themselves (the SDK's operations); any other name is
   * reported as `other`, so clients cannot grow the label set. @default none
   */
  knownOperations?: ReadonlySet<string>;
}

const operationTypes = new Set<unknown>(Object.values(OperationTypeNode));

/**
 * Labels of one operation, each from a fixed set: a client chooses its operation's name,
 * so a name becomes a label value only when the server knows it.
 */
function operationLabels(known: ReadonlySet<string>, params: Partial<FillLabelsFnParams>) {
  const name = params.operationName;
  return {
    operationType: operationTypes.has(params.operationType)
      ? String(params.operationType)
      : 'unknown',
    operationName:
      typeof name !== 'string' || name === '' || name === 'Anonymous'
        ? ANONYMOUS_OPERATION
        : known.has(name)
          ? name
          : OTHER_OPERATION,
  };
}

/**
 * Creates the metrics of one app in their own registry (so several apps in one
 * process, as in tests, do not collide): default process metrics, GraphQL and HTTP
 * durations by operation, commits and conflicts by mutation, append latency,
 * projector lag per projection, follower position, live subscribers, connections,
 * fan-out time and slow consumers, and the state of every supervised loop.
 */
export function createMetrics(options: MetricsOptions = {}): Metrics {
  const known = options.knownOperations ?? new Set<string>();
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  let sources: MetricsSources | undefined;

  const mutations = new Counter({
    name: 'corkboard_mutations_total',
    help: 'Mutations answered, by mutation and outcome (committed, conflict, or the error code).',
    labelNames: ['mutation', 'outcome'],
    registers: [registry],
  });
  /** A counter of mutations, by mutation. */
  const perMutation = (name: string, help: string) =>
    new Counter({ name, help, labelNames: ['mutation'], registers: [registry] });
  const commits = perMutation(
    'corkboard_commits_total',
    'Mutations that committed events (not replays, not writes of nothing), by mutation.',
  );
  const replays = perMutation(
    'corkboard_replays_total',
    'Mutations answered from the first result of their idempotency key (nothing written), by mutation.',
  );
  const conflicts = perMutation(
    'corkboard_conflicts_total',
    'Mutations answered with VersionConflictError, by mutation.',
  );
  const merges = perMutation(
    'corkboard_merges_total',
    'Mutations that committed over changes the client had not seen (merged: true), by mutation.',
  );
  const appendDuration = new Histogram({
    name: 'corkboard_append_duration_seconds',
    help: 'Event store append latency, by outcome (ok, conflict, busy, error).',
    labelNames: ['outcome'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });
  const fanOut = new Histogram({
    name: 'corkboard_live_fanout_seconds',
    help: 'Time to hand one change to its subscribers (the synchronous dispatch of each change).',
    buckets: [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.1],
    registers: [registry],
  });

  const scrape = registerScrapeGauges(registry, () => sources);

  const countMutation = (info: GraphQLResolveInfo, result: unknown) => {
    const mutation = info.fieldName;
    if (ADMIN_MUTATIONS.has(mutation)) return;
    if (isCodedError(result)) {
      const conflict = result.code === ErrorCode.VersionConflict;
      mutations.inc({ mutation, outcome: conflict ? 'conflict' : result.code });
      if (conflict) conflicts.inc({ mutation });
    } else if (typeof result === 'object' && result !== null && !(result instanceof Error)) {
      const { replayed, position } = result as { replayed?: unknown; position?: unknown };
      if (replayed === true) {
        mutations.inc({ mutation, outcome: 'replayed' });
        replays.inc({ mutation });
      } else if (position === null) {
        // Decided to write nothing (already so): a success without a commit.
        mutations.inc({ mutation, outcome: 'unchanged' });
      } else {
        mutations.inc({ mutation, outcome: 'committed' });
        commits.inc({ mutation });
        if ((result as { merged?: unknown }).merged === true) merges.inc({ mutation });
      }
    }
  };

  const histogramOf = <Phase extends string>(
    name: string,
    help: string,
    phases: [Phase, ...Phase[]],
  ) =>
    createHistogram({
      registry,
      histogram: { name, help, labelNames: ['operationName', 'operationType'] },
      fillLabelsFn: (params) => operationLabels(known, params),
      phases,
    });

  const yogaPlugins: Plugin[] = [
    usePrometheus({
      registry,
      endpoint: false,
      // Every label from a bounded set: the operation's name only when known
      // (`operationLabels`), no URL (a series per host and port) and no error path
      // (aliases are the client's). Phases, methods and status codes are few.
      labels: { url: false, path: false },
      metrics: {
        graphql_yoga_http_duration: createHistogram({
          registry,
          histogram: {
            name: 'graphql_yoga_http_duration',
            help: 'Time spent on HTTP connection',
            labelNames: ['operationName', 'operationType', 'method', 'statusCode'],
          },
          fillLabelsFn: (params, context) => {
            const { request, response } = context as { request: Request; response: Response };
            return {
              method: HTTP_METHODS.has(request.method) ? request.method : 'other',
              statusCode: response.status,
              ...operationLabels(known, params),
            };
          },
        }),
        graphql_envelop_request_duration: histogramOf(
          'graphql_envelop_request_duration',
          'Time spent on running the GraphQL operation from parse to execute',
          ['execute', 'subscribe'],
        ),
        graphql_envelop_request: createCounter({
          registry,
          counter: {
            name: 'graphql_envelop_request',
            help: 'Counts the amount of GraphQL requests executed through Envelop',
            labelNames: ['operationName', 'operationType'],
          },
          fillLabelsFn: (params) => operationLabels(known, params),
        }),
        graphql_envelop_error_result: createCounter({
          registry,
          counter: {
            name: 'graphql_envelop_error_result',
            help: 'Counts the amount of errors reported from all phases',
            labelNames: ['operationName', 'operationType', 'phase'],
          },
          fillLabelsFn: (params) => ({
            ...operationLabels(known, params),
            phase: params.errorPhase ?? 'unknown',
          }),
        }),
        graphql_envelop_phase_execute: histogramOf(
          'graphql_envelop_phase_execute',
          'Time spent on running the GraphQL "execute" function',
          ['execute'],
        ),
        graphql_envelop_phase_subscribe: histogramOf(
          'graphql_envelop_phase_subscribe',
          'Time spent on running the GraphQL "subscribe" function',
          ['subscribe'],
        ),
        graphql_envelop_phase_parse: histogramOf(
          'graphql_envelop_phase_parse',
          'Time spent on running GraphQL "parse" function',
          ['parse'],
        ),
        graphql_envelop_phase_validate: histogramOf(
          'graphql_envelop_phase_validate',
          'Time spent on running GraphQL "validate" function',
          ['validate'],
        ),
        graphql_envelop_phase_context: histogramOf(
          'graphql_envelop_phase_context',
          'Time spent on building the GraphQL context',
          ['context'],
        ),
        graphql_envelop_deprecated_field: false,
        graphql_envelop_schema_change: false,
        graphql_envelop_request_time_summary: false,
      },
    }),
    // Each mutation's result as its resolver returned it (the success payload, or the
    // domain error the errors plugin turns into a union member), before selection.
    {
      onSchemaChange: ({ schema }) => reportMutationResults(schema as GraphQLSchema),
      onContextBuilding: ({ extendContext }) =>
        extendContext({ [MUTATION_SINK]: countMutation } as Record<string, unknown>),
    },
  ];

  return {
    registry,
    yogaPlugins,
    instrumentStore(store) {
      const append = async (request: AppendRequest, options?: { signal?: AbortSignal }) => {
        const started = process.hrtime.bigint();
        try {
          const result = await store.append(request, options);
          appendDuration.observe({ outcome: 'ok' }, seconds(started));
          return result;
        } catch (error) {
          const outcome =
            error instanceof VersionConflict
              ? 'conflict'
              : error instanceof EventStoreBusy
                ? 'busy'
                : 'error';
          appendDuration.observe({ outcome }, seconds(started));
          throw error;
        }
      };
      return {
        append,
        readStream: (stream, options) => store.readStream(stream, options),
        readStreamBackward: (stream, options) => store.readStreamBackward(stream, options),
        streamVersion: (stream, options) => store.streamVersion(stream, options),
        idempotentResult: (key, fingerprint, options) =>
          store.idempotentResult(key, fingerprint, options),
        readAll: (options) => store.readAll(options),
        headPosition: () => store.headPosition(),
        subscribe: (options) => store.subscribe(options),
        archiveStreams: (streams, options) => store.archiveStreams(streams, options),
        restoreStreams: (streams, options) => store.restoreStreams(streams, options),
        close: () => store.close(),
      };
    },
    timeFanOut(source) {
      return {
        onEntry: (listener) =>
          source.onEntry((entry) => {
            const started = process.hrtime.bigint();
            try {
              listener(entry);
            } finally {
              if (entry.scopes.length > 0) fanOut.observe(seconds(started));
            }
          }),
      };
    },
    observe(next) {
      sources = next;
    },
    async render() {
      scrape.newScrape();
      try {
        return { contentType: registry.contentType, body: await registry.metrics() };
      } finally {
        scrape.newScrape();
      }
    },
  };
}
