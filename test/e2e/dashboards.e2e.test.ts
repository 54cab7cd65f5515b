import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { REPO_ROOT } from '../support/serverProcess.js';
import { startTestServer, type TestServer } from '../support/server.js';

/**
 * The Grafana dashboard and the Prometheus alert rules in ops/ query only series that a
 * running server's /metrics serves, with labels those series carry.
 */

const DASHBOARD = resolve(REPO_ROOT, 'ops/grafana/corkboard.json');
const ALERTS = resolve(REPO_ROOT, 'ops/prometheus/alerts.yml');

/** Series Prometheus makes itself, and labels it adds to every scraped series. */
const PROMETHEUS_SERIES = new Set(['up']);
const PROMETHEUS_LABELS = new Set(['job', 'instance', 'le']);

interface Dashboard {
  panels: { type: string; title: string; targets?: { expr: string }[] }[];
  templating: { list: { query?: string | { query: string } }[] };
}

interface RuleFile {
  groups: { name: string; rules: { alert: string; expr: string; for?: string }[] }[];
}

/** Every series name in a PromQL expression: each is written with a `{...}` selector. */
function seriesOf(expr: string): string[] {
  return [...expr.matchAll(/([a-zA-Z_:][a-zA-Z0-9_:]*)\{/g)].map((m) => m[1]!);
}

/** Label names an expression groups by or matches on. */
function labelsOf(expr: string): string[] {
  const grouped = [...expr.matchAll(/\b(?:by|without)\s*\(([^)]*)\)/g)].flatMap((m) =>
    m[1]!.split(',').map((label) => label.trim()),
  );
  const matched = [...expr.matchAll(/\{([^}]*)\}/g)].flatMap((m) =>
    [...m[1]!.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)/g)].map((l) => l[1]!),
  );
  return [...grouped, ...matched].filter(Boolean);
}

/** Sample names of an exposition, each with the label names its samples carry. */
function exposition(text: string): Map<string, Set<string>> {
  const series = new Map<string, Set<string>>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s/.exec(line);
    if (!match) continue;
    const labels = series.get(match[1]!) ?? new Set<string>();
    for (const label of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="/g)) {
      labels.add(label[1]!);
    }
    series.set(match[1]!, labels);
  }
  return series;
}

describe('dashboards and alert rules over /metrics', () => {
  let server: TestServer;
  let metrics: Map<string, Set<string>>;

  beforeAll(async () => {
    server = await startTestServer();
    const { token } = await server.register('watcher');
    const board = (
      await server.gql(
        `mutation { createBoard(input: { name: "Watched" }) {
          ... on CreateBoardSuccess { board { id version } } } }`,
        {},
        token,
      )
    ).data!.createBoard.board as { id: string; version: number };
    const column = (
      await server.gql(
        `mutation ($b: ID!, $v: Int!) { addColumn(input: { boardId: $b, expectedVersion: $v, name: "Todo" }) {
          ... on AddColumnSuccess { column { id } } } }`,
        { b: board.id, v: board.version },
        token,
      )
    ).data!.addColumn.column as { id: string };
    const card = (
      await server.gql(
        `mutation ($c: ID!) { addCard(input: { columnId: $c, title: "Seen" }) {
          ... on AddCardSuccess { card { id version } } } }`,
        { c: column.id },
        token,
      )
    ).data!.addCard.card as { id: string; version: number };
    const edit = `mutation ($c: ID!, $v: Int!, $t: String, $d: Boolean) {
      editCard(input: { cardId: $c, expectedVersion: $v, title: $t, done: $d }) { __typename } }`;
    // A commit, a merge (stale, other field) and a conflict (stale, same field).
    await server.gql(edit, { c: card.id, v: card.version, t: 'One' }, token);
    await server.gql(edit, { c: card.id, v: card.version, d: true }, token);
    await server.gql(edit, { c: card.id, v: card.version, t: 'Two' }, token);
    await server.gql('{ nonsense }', {}, token);
    const response = await fetch(`${server.url}/metrics`, {
      headers: { authorization: `Bearer ${server.app.admin.token}` },
    });
    expect(response.status).toBe(200);
    metrics = exposition(await response.text());
  });
  afterAll(async () => {
    await server?.close();
  });

  const expectServed = (expr: string, where: string) => {
    const series = seriesOf(expr);
    expect(series.length, `${where}: ${expr}`).toBeGreaterThan(0);
    // No series written without a selector (it would escape this check).
    const named = expr.match(/\b(?:corkboard|graphql|nodejs|process)_[a-z0-9_]+/g) ?? [];
    expect(named.length, `${where}: ${expr}`).toBe(
      series.filter((s) => !PROMETHEUS_SERIES.has(s)).length,
    );
    const labels = new Set<string>();
    for (const name of series) {
      if (PROMETHEUS_SERIES.has(name)) continue;
      expect(metrics.has(name), `${where}: /metrics has no ${name}`).toBe(true);
      for (const label of metrics.get(name) ?? []) labels.add(label);
    }
    for (const label of labelsOf(expr)) {
      if (PROMETHEUS_LABELS.has(label)) continue;
      expect(labels.has(label), `${where}: no series of ${series.join(', ')} has ${label}`).toBe(
        true,
      );
    }
  };

  it('has a Grafana dashboard whose every panel queries series /metrics serves', () => {
    const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as Dashboard;
    const graphs = dashboard.panels.filter((p) => p.type !== 'row');
    expect(graphs.length).toBeGreaterThanOrEqual(10);
    for (const panel of graphs) {
      expect(panel.targets?.length, panel.title).toBeGreaterThan(0);
      for (const { expr } of panel.targets ?? []) expectServed(expr, panel.title);
    }
    for (const variable of dashboard.templating.list) {
      const query = typeof variable.query === 'object' ? variable.query.query : undefined;
      const series = query && /label_values\((\w+)/.exec(query)?.[1];
      if (series) expect(metrics.has(series), query).toBe(true);
    }
    // What the dashboard is for: each of these is on it.
    const queried = graphs
      .flatMap((p) => p.targets ?? [])
      .map((t) => t.expr)
      .join('\n');
    for (const name of [
      'graphql_envelop_request_duration_count',
      'graphql_envelop_request_duration_bucket',
      'corkboard_conflicts_total',
      'corkboard_merges_total',
      'corkboard_append_duration_seconds_bucket',
      'corkboard_projector_seconds_behind',
      'corkboard_live_subscribers',
      'corkboard_live_fanout_seconds_bucket',
      'corkboard_live_slow_consumers',
    ]) {
      expect(queried).toContain(`${name}{`);
    }
    expect(queried).toContain('outcome="busy"');
  });

  it('has Prometheus alert rules for lag, readiness and error rate over served series', () => {
    const rules = (parseYaml(readFileSync(ALERTS, 'utf8')) as RuleFile).groups.flatMap(
      (g) => g.rules,
    );
    const names = rules.map((r) => r.alert);
    expect(names).toEqual(
      expect.arrayContaining([
        'CorkboardProjectorLagging',
        'CorkboardNotReady',
        'CorkboardHighErrorRate',
      ]),
    );
    for (const rule of rules) {
      expectServed(rule.expr, rule.alert);
      if (rule.for) expect(rule.for, rule.alert).toMatch(/^\d+[smh]$/);
    }
  });

  it('counts what the dashboard shows: a merge, a conflict and readiness', async () => {
    const text = await (
      await fetch(`${server.url}/metrics`, {
        headers: { authorization: `Bearer ${server.app.admin.token}` },
      })
    ).text();
    expect(text).toMatch(/^corkboard_merges_total\{mutation="editCard"\} 1$/m);
    expect(text).toMatch(/^corkboard_conflicts_total\{mutation="editCard"\} 1$/m);
    expect(text).toMatch(/^corkboard_ready 1$/m);
  });
});
