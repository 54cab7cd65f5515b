/** The gauges `/metrics` reads from the running parts at each scrape. */
import { Gauge, type Registry } from 'prom-client';
import type { ProjectorRuntime } from '../projector/ProjectorRuntime.js';
import type { MetricsSources } from './metrics.js';

/**
 * Registers on `registry` every gauge read from `sourcesOf()` when scraped (none is kept
 * up to date by hand). Call `newScrape()` around each scrape: the projector gauges share
 * one `lag()` per scrape.
 */
export function registerScrapeGauges(
  registry: Registry,
  sourcesOf: () => MetricsSources | undefined,
): { newScrape(): void } {
  // Scrape-time gauges: read from the sources, never kept up to date by hand.
  const gauge = (
    name: string,
    help: string,
    labelNames: string[],
    collect: (g: Gauge, s: MetricsSources) => void | Promise<void>,
  ) =>
    new Gauge({
      name,
      help,
      labelNames,
      registers: [registry],
      async collect() {
        this.reset();
        const sources = sourcesOf();
        if (sources) await collect(this, sources);
      },
    });
  // One lag() per scrape, shared by the projector gauges.
  type ProjectorLag = Awaited<ReturnType<ProjectorRuntime['lag']>>;
  let lagOfScrape: ReturnType<ProjectorRuntime['lag']> | undefined;
  const lag = (s: MetricsSources) => (lagOfScrape ??= s.projector.lag());
  /** A gauge of the projector's lag, set for each projection. */
  const perProjection = (name: string, help: string, value: (l: ProjectorLag) => number) =>
    gauge(name, help, ['projection'], async (g, s) => {
      const l = await lag(s);
      for (const p of l.projections) g.set({ projection: p.name }, value(l));
    });
  perProjection(
    'corkboard_projector_commits_behind',
    'Commits in the store not yet applied, per projection.',
    (l) => l.commitsBehind,
  );
  perProjection(
    'corkboard_projector_seconds_behind',
    'Age of the oldest commit not yet applied (0 when caught up), per projection.',
    (l) => l.secondsBehind,
  );
  gauge(
    'corkboard_projector_checkpoint',
    'Position of the last commit applied to the active generation.',
    [],
    async (g, s) => g.set((await lag(s)).checkpoint),
  );
  gauge(
    'corkboard_store_head',
    'Position of the newest commit in the event store.',
    [],
    async (g, s) => g.set((await lag(s)).head),
  );
  gauge(
    'corkboard_projector_events_processed',
    'Events this process applied live since start, per projection.',
    ['projection'],
    async (g, s) => {
      for (const p of (await lag(s)).projections) g.set({ projection: p.name }, p.eventsProcessed);
    },
  );
  gauge(
    'corkboard_projector_gaps_detected',
    'Gaps in the feed positions this process saw.',
    [],
    async (g, s) => g.set((await lag(s)).gapsDetected),
  );
  gauge(
    'corkboard_projector_active',
    '1 when this process holds the projector lease.',
    [],
    async (g, s) => {
      const l = await lag(s);
      g.set(l.activeProjector === l.owner ? 1 : 0);
    },
  );
  gauge(
    'corkboard_follower_position',
    "Cursor of the newest change log entry this process's follower has seen.",
    [],
    (g, s) => g.set(s.follower.seen),
  );
  gauge('corkboard_live_subscribers', 'Board subscriptions open now.', [], (g, s) =>
    g.set(s.live.subscribers()),
  );
  gauge('corkboard_live_connections', 'Websockets open now.', [], (g, s) =>
    g.set(s.live.connections()),
  );
  gauge(
    'corkboard_live_slow_consumers',
    'Subscriptions ended as slow consumers since start.',
    [],
    (g, s) => g.set(s.live.slowConsumers()),
  );
  gauge(
    'corkboard_live_groups',
    'Subscriber groups now: subscriptions of the same document, variables and scope, executed once per change.',
    [],
    (g, s) => g.set(s.live.groups()),
  );
  gauge(
    'corkboard_live_group_executions',
    'Executions of subscription documents since start (one per group per change).',
    [],
    (g, s) => g.set(s.live.groupExecutions()),
  );
  gauge('corkboard_ready', '1 when /readyz answers 200, else 0.', [], async (g, s) => {
    if (s.ready) g.set((await s.ready()) ? 1 : 0);
  });
  gauge(
    'corkboard_loop_up',
    '1 when a supervised loop is running (or starting), 0 in backoff or stopped.',
    ['loop'],
    (g, s) => {
      for (const l of s.loops()) {
        g.set({ loop: l.name }, l.state === 'running' || l.state === 'starting' ? 1 : 0);
      }
    },
  );
  gauge(
    'corkboard_loop_restarts',
    'Times a supervised loop restarted after a failure.',
    ['loop'],
    (g, s) => {
      for (const l of s.loops()) g.set({ loop: l.name }, l.restarts);
    },
  );

  return {
    newScrape() {
      lagOfScrape = undefined;
    },
  };
}
