import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { createClient, type Client } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { ASYNC_CONTEXT_LINGER_MS } from '../../src/telemetry/contextManager.js';
import { Attr, CommandOutcome, SpanName } from '../../src/telemetry/spans.js';
import { DEFAULT_SERVICE_NAME } from '../../src/telemetry/tracing.js';
import { OtlpReceiver, type ReceivedSpan } from '../support/otlpReceiver.js';
import { startServerProcess, type ServerProcess } from '../support/serverProcess.js';

/**
 * Traces leave the real server process (started as `npm start` starts it: node with tsx,
 * ESM) over OTLP/HTTP JSON to a receiver on loopback, configured by the standard
 * variables only.
 */

const TRACED_ENV = (receiver: OtlpReceiver): Record<string, string> => ({
  OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint,
  OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
  // Export each batch soon, so the test waits for spans, not for the default 5 s.
  OTEL_BSP_SCHEDULE_DELAY: '100',
  LOG_LEVEL: 'debug',
});

/** A W3C traceparent of a new, sampled trace: the caller's trace, which the server joins. */
function newTraceparent(): { traceparent: string; traceId: string } {
  const traceId = randomBytes(16).toString('hex');
  return { traceparent: `00-${traceId}-${randomBytes(8).toString('hex')}-01`, traceId };
}

async function gql(
  url: string,
  query: string,
  variables: Record<string, unknown>,
  headers: Record<string, string> = {},
): Promise<Record<string, any>> {
  const response = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await response.json()) as { data?: Record<string, any>; errors?: unknown };
  if (!body.data) throw new Error(JSON.stringify(body));
  return body.data;
}

const isLinkedTo = (span: ReceivedSpan, traceId: string) =>
  span.links.some((link) => link.traceId === traceId);

describe('OpenTelemetry traces of a running server', () => {
  let receiver: OtlpReceiver;
  let server: ServerProcess;
  let subscriber: Client;

  beforeAll(async () => {
    receiver = await OtlpReceiver.start();
    server = await startServerProcess({ env: TRACED_ENV(receiver), readyTimeoutMs: 90_000 });
  }, 120_000);
  afterAll(async () => {
    await subscriber?.dispose();
    await server?.kill();
    await receiver?.close();
  });

  it('follows one moveCard from the HTTP request to the push of its change, in one linked trace', async () => {
    const url = server.url;
    const registered = await gql(
      url,
      `mutation { registerUser(input: { username: "tracer", displayName: "T" }) {
        ... on RegisterUserSuccess { token } } }`,
      {},
    );
    const auth = { authorization: `Bearer ${registered.registerUser.token as string}` };
    const board = (
      await gql(
        url,
        `mutation { createBoard(input: { name: "Traced" }) {
          ... on CreateBoardSuccess { board { id version } } } }`,
        {},
        auth,
      )
    ).createBoard.board as { id: string; version: number };
    const addColumn = `mutation ($b: ID!, $v: Int!, $n: String!) {
      addColumn(input: { boardId: $b, expectedVersion: $v, name: $n }) {
        ... on AddColumnSuccess { board { version } column { id } } } }`;
    const todo = (await gql(url, addColumn, { b: board.id, v: board.version, n: 'Todo' }, auth))
      .addColumn;
    const done = (
      await gql(url, addColumn, { b: board.id, v: todo.board.version, n: 'Done' }, auth)
    ).addColumn;
    const card = (
      await gql(
        url,
        `mutation ($c: ID!) { addCard(input: { columnId: $c, title: "Follow me" }) {
          ... on AddCardSuccess { card { id version } } } }`,
        { c: todo.column.id },
        auth,
      )
    ).addCard.card as { id: string; version: number };

    // A subscriber of the board, so the change is pushed.
    subscriber = createClient({
      url: `${url.replace('http', 'ws')}/graphql`,
      webSocketImpl: WebSocket,
      connectionParams: auth,
      retryAttempts: 0,
    });
    const pushed: unknown[] = [];
    const subscribed = new Promise<void>((ready) => {
      subscriber.subscribe(
        {
          query: `subscription ($b: ID!) { boardChanges(boardId: $b) { cursor operation } }`,
          variables: { b: board.id },
        },
        {
          next: (message) => {
            pushed.push(message);
            ready();
          },
          error: () => undefined,
          complete: () => undefined,
        },
      );
    });
    // The subscription is live once a change reaches it: edits (titles only) until one
    // does, as the subscribe message may still be on its way when the first commits.
    let version = card.version;
    for (let reached = false; !reached;) {
      version = (
        await gql(
          url,
          `mutation ($c: ID!, $v: Int!, $t: String) { editCard(input: { cardId: $c, expectedVersion: $v, title: $t }) {
            ... on EditCardSuccess { card { version } } } }`,
          { c: card.id, v: version, t: `Warm ${version}` },
          auth,
        )
      ).editCard.card.version as number;
      reached = await Promise.race([
        subscribed.then(() => true),
        new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 2_000)),
      ]);
    }

    // Sent once no sampled trace is open, so async context is off in the server when the
    // request comes in: the spans of its work have their parents given explicitly.
    await sleep(ASYNC_CONTEXT_LINGER_MS + 1_000);
    const { traceparent, traceId } = newTraceparent();
    const moved = await gql(
      url,
      `mutation ($c: ID!, $to: ID!, $v: Int!) {
        moveCard(input: { cardId: $c, toColumnId: $to, expectedVersion: $v }) {
          __typename ... on MoveCardSuccess { card { version } } } }`,
      // Stale on purpose: the edits above touched the title only, so the move merges.
      { c: card.id, to: done.column.id, v: card.version },
      { ...auth, traceparent },
    );
    expect(moved.moveCard.__typename).toBe('MoveCardSuccess');

    // The mutation's own trace: HTTP request > GraphQL operation > command > append, and
    // the read-your-writes wait.
    const inTrace = (spans: ReceivedSpan[]) => spans.filter((s) => s.traceId === traceId);
    const command = await receiver.waitFor(
      (spans) => inTrace(spans).find((s) => s.name === SpanName.Command),
      'command span',
    );
    const append = await receiver.waitFor(
      (spans) => inTrace(spans).find((s) => s.name === SpanName.Append),
      'append span',
    );
    const wait = await receiver.waitFor(
      (spans) => inTrace(spans).find((s) => s.name === SpanName.ReadYourWrites),
      'read-your-writes span',
    );
    const operation = await receiver.waitFor(
      (spans) => inTrace(spans).find((s) => s.name === 'mutation.anonymous'),
      'GraphQL operation span',
    );
    const request = await receiver.waitFor(
      (spans) => inTrace(spans).find((s) => s.scope === '@opentelemetry/instrumentation-http'),
      'HTTP server span',
    );
    expect(request.attributes['http.request.method'] ?? request.attributes['http.method']).toBe(
      'POST',
    );
    // The resource: Corkboard's service name (no OTEL_SERVICE_NAME), the process's and
    // host's attributes (the detectors the Node SDK runs by default).
    expect(request.resource).toMatchObject({
      'service.name': DEFAULT_SERVICE_NAME,
      'process.pid': expect.any(Number),
      'host.name': expect.any(String),
    });
    expect(operation.parentSpanId).toBe(request.spanId);
    // Its document, recorded (it takes its values as variables only).
    expect(operation.attributes['graphql.execute.document']).toContain('moveCard(');
    expect(command.parentSpanId).toBe(operation.spanId);
    expect(append.parentSpanId).toBe(command.spanId);
    expect(wait.parentSpanId).toBe(operation.spanId);
    expect(command.attributes).toMatchObject({
      [Attr.CommandName]: 'moveCard',
      [Attr.CommandAttempts]: 1,
      [Attr.CommandOutcome]: CommandOutcome.Merged,
    });
    const position = append.attributes[Attr.Position];
    expect(position).toEqual(expect.any(Number));
    expect(append.attributes).toMatchObject({
      [Attr.AppendOutcome]: 'committed',
      [Attr.AppendRoundTrips]: 0,
    });
    expect(wait.attributes).toMatchObject({
      [Attr.Position]: position,
      [Attr.WaitOutcome]: 'projected',
    });

    // Work on the commit elsewhere: traces of their own, linked to the mutation's.
    const project = await receiver.waitFor(
      (spans) => spans.find((s) => s.name === SpanName.Project && isLinkedTo(s, traceId)),
      'projector span linked to the mutation',
    );
    const push = await receiver.waitFor(
      (spans) => spans.find((s) => s.name === SpanName.Push && isLinkedTo(s, traceId)),
      'push span linked to the mutation',
    );
    for (const linked of [project, push]) {
      expect(linked.traceId).not.toBe(traceId);
      expect(linked.links).toEqual([{ traceId, spanId: append.spanId }]);
      expect(linked.attributes[Attr.Position]).toBe(position);
    }
    expect(push.attributes).toMatchObject({
      [Attr.Groups]: 1,
      [Attr.Frames]: 1,
      [Attr.SlowConsumersDropped]: 0,
    });
    // One push span per change, never one per frame.
    expect(
      receiver.spans.filter((s) => s.name === SpanName.Push && isLinkedTo(s, traceId)),
    ).toHaveLength(1);

    // The request's log lines carry its trace id.
    const lines = server
      .output()
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as { trace_id?: string });
    expect(lines.some((line) => line.trace_id === traceId)).toBe(true);
  }, 180_000);

  it('records nothing of a request its caller did not sample: no trace of its parts either', async () => {
    const url = server.url;
    const token = (
      await gql(
        url,
        `mutation { registerUser(input: { username: "untraced", displayName: "U" }) {
          ... on RegisterUserSuccess { token } } }`,
        {},
      )
    ).registerUser.token as string;
    const createBoard = `mutation ($n: String!) { createBoard(input: { name: $n }) {
      __typename ... on CreateBoardSuccess { board { id } } } }`;
    // The caller's trace, not sampled (flags 00): parent-based, the server records none of
    // it. Sent once no sampled trace is open (async context is then off in the server).
    await sleep(ASYNC_CONTEXT_LINGER_MS + 1_000);
    const unsampled = newTraceparent();
    const notSampled = unsampled.traceparent.replace(/-01$/, '-00');
    const quiet = await gql(
      url,
      createBoard,
      { n: 'Quiet' },
      {
        authorization: `Bearer ${token}`,
        traceparent: notSampled,
      },
    );
    expect(quiet.createBoard.__typename).toBe('CreateBoardSuccess');
    // Then a sampled request: once its HTTP span (it ends last) is in, so is anything of
    // the first request's.
    const marker = newTraceparent();
    await gql(
      url,
      createBoard,
      { n: 'Marker' },
      {
        authorization: `Bearer ${token}`,
        traceparent: marker.traceparent,
      },
    );
    await receiver.waitFor(
      (spans) =>
        spans.find(
          (s) => s.traceId === marker.traceId && s.scope === '@opentelemetry/instrumentation-http',
        ),
      'the marker request’s HTTP span',
    );
    expect(receiver.spans.filter((s) => s.traceId === unsampled.traceId)).toEqual([]);
    // Nor traces of the request's parts on their own (a command or an append started with
    // no active span): every span of a request's parts is in a request's trace.
    const requestTraces = new Set(
      receiver.spans
        .filter((s) => s.scope === '@opentelemetry/instrumentation-http')
        .map((s) => s.traceId),
    );
    const parts = receiver.spans.filter(
      (s) =>
        s.name === SpanName.Command ||
        s.name === SpanName.Append ||
        s.name === SpanName.ReadYourWrites ||
        s.name.startsWith('mutation.'),
    );
    expect(parts.filter((s) => !requestTraces.has(s.traceId))).toEqual([]);
    expect(parts.some((s) => s.traceId === marker.traceId && s.name === SpanName.Command)).toBe(
      true,
    );
    // Nor a projection of its commit, sampled on its own: the work on a commit is sampled
    // when the request that made it was (the marker's is), never without a link to it.
    await receiver.waitFor(
      (spans) => spans.find((s) => s.name === SpanName.Project && isLinkedTo(s, marker.traceId)),
      'the marker commit’s projection span',
    );
    expect(
      receiver.spans.filter((s) => s.name === SpanName.Project && s.links.length === 0),
    ).toEqual([]);
  }, 60_000);
});

describe('OTLP over http/protobuf', () => {
  it('exports a request’s spans as protobuf to /v1/traces, as the service OTEL_SERVICE_NAME names', async () => {
    const receiver = await OtlpReceiver.start();
    const server = await startServerProcess({
      env: {
        ...TRACED_ENV(receiver),
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
        OTEL_SERVICE_NAME: 'corkboard-edge',
      },
      readyTimeoutMs: 90_000,
    });
    try {
      const { traceparent, traceId } = newTraceparent();
      await gql(
        server.url,
        `mutation { registerUser(input: { username: "protobuf", displayName: "P" }) {
          __typename } }`,
        {},
        { traceparent },
      );
      // The trace id travels as its 16 raw bytes in the protobuf encoding.
      const id = Buffer.from(traceId, 'hex');
      const deadline = Date.now() + 60_000;
      let carried: { path: string; contentType: string; body: Buffer } | undefined;
      while (!carried && Date.now() < deadline) {
        carried = receiver.exports.find((e) => e.body.includes(id));
        if (!carried) await sleep(50);
      }
      expect(carried).toMatchObject({
        path: '/v1/traces',
        contentType: 'application/x-protobuf',
      });
      // The resource's service.name, a string in the same export.
      expect(carried!.body.includes('corkboard-edge')).toBe(true);
    } finally {
      await server.kill();
      await receiver.close();
    }
  }, 120_000);
});
