/**
 * The server side of `live.ts`, run by it as a child process (never by hand):
 *
 *   node --import tsx --expose-gc scripts/bench/liveServer.ts corkboard|baseline
 *
 * `corkboard`: the real app (`createApp`, memory store) on 127.0.0.1, any free port.
 * `baseline`: a minimal graphql-yoga server on 127.0.0.1 with yoga's stock `createPubSub`
 * and graphql-ws (yoga's graphql-ws recipe): `Subscription.boardChanged(boardId)` is
 * `pubSub.subscribe('board', boardId)`, `Mutation.publish` publishes one message.
 *
 * It talks to its parent over IPC only: sends `{ type: 'ready', url }` once listening,
 * then answers each `{ id, type }` request with `{ id, ... }`. It exits when asked to
 * stop, and by itself when the parent goes away (the IPC channel closes), so it never
 * outlives the bench.
 */
import { setMaxListeners } from 'node:events';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { writeHeapSnapshot } from 'node:v8';
import type { AddressInfo } from 'node:net';
import { createPubSub, createSchema, createYoga } from 'graphql-yoga';
import { useServer } from 'graphql-ws/use/ws';
import type { ExecutionArgs } from 'graphql';
import { pino } from 'pino';
import { WebSocket, WebSocketServer } from 'ws';
import { createApp } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { NO_CLIENT_LIMITS } from '../../test/support/server.js';
import { watchWholeFrameWrites } from '../../test/support/frameWrites.js';
import { messageOf } from '../../src/live/frames.js';
import type { AppendResult } from '../../src/eventstore/types.js';
import { openMemoryStorage } from '../../src/storage.js';

export type ServerMode = 'corkboard' | 'baseline';

/** What the parent may ask; each answer echoes `id`. */
export type ServerRequest =
  | { id: number; type: 'clock' }
  | { id: number; type: 'memory' }
  | { id: number; type: 'subscribers' }
  | { id: number; type: 'resetSends' }
  | { id: number; type: 'sends' }
  | { id: number; type: 'commits'; keys: number[] }
  | { id: number; type: 'stop' };

export interface MemoryReport {
  heapUsed: number;
  rss: number;
  external: number;
  arrayBuffers: number;
}

/** `ws` sends since the last `resetSends`, with the first and last send's time. */
export interface SendsReport {
  count: number;
  /** Length of the last frame sent (its payload, as `send` got it). */
  bytes: number;
  first: number;
  last: number;
}

/**
 * Per key (corkboard: the commit's cursor; baseline: the message's `seq`), when it was
 * committed (append resolved; baseline: `publish` called) and, for corkboard, when the
 * change log follower handed it to the hub. Times are this process's `performance.now()`.
 */
export interface CommitsReport {
  committed: (number | null)[];
  toHub: (number | null)[];
}

const arg = process.argv[2];
if (arg !== 'corkboard' && arg !== 'baseline') throw new Error(`unknown mode ${String(arg)}`);
const mode: ServerMode = arg;
const send = (message: unknown) => process.send?.(message);
// The parent went away: nothing is left to serve.
process.on('disconnect', () => process.exit(0));

const gc = (globalThis as { gc?: () => void }).gc;

// Every message either server sends leaves through `ws`'s `send` or, for Corkboard's
// shared frames, as one TCP write of the whole frame: note when.
let sends: SendsReport = { count: 0, bytes: 0, first: 0, last: 0 };
const noteSend = (bytes: number) => {
  const now = performance.now();
  if (sends.count === 0) sends.first = now;
  sends.count += 1;
  sends.last = now;
  sends.bytes = bytes;
};
// eslint-disable-next-line @typescript-eslint/unbound-method -- applied to `this` below
const wsSend = WebSocket.prototype.send;
WebSocket.prototype.send = function (this: WebSocket, ...args: Parameters<WebSocket['send']>) {
  const data = args[0] as unknown;
  noteSend(typeof data === 'string' ? Buffer.byteLength(data) : (data as Buffer).length);
  return wsSend.apply(this, args);
} as WebSocket['send'];
// Corkboard's shared frames leave as one TCP write of the whole frame (not through `send`).
watchWholeFrameWrites((_socket, frame) => noteSend(messageOf(frame).length));

const committedAt = new Map<number, number>();
const toHubAt = new Map<number, number>();

interface Running {
  url: string;
  subscribers(): number;
  stop(): Promise<void>;
}

async function startCorkboard(): Promise<Running> {
  const storage = openMemoryStorage({});
  const { store } = storage;
  const append = store.append.bind(store);
  store.append = async (...args): Promise<AppendResult> => {
    const result = await append(...args);
    committedAt.set(result.position, performance.now());
    return result;
  };
  const app = await createApp(
    loadConfig({ STORE: 'memory', LOG_LEVEL: 'silent', HOST: '127.0.0.1', ...NO_CLIENT_LIMITS }),
    { storage, logger: pino({ level: 'silent' }) },
  );
  // Registered before `start()` registers the hub's listener, so it runs just before it.
  app.follower.onEntry((entry) => toHubAt.set(entry.cursor, performance.now()));
  const { url } = await app.start(0);
  return {
    url,
    subscribers: () => app.live.stats().subscribers,
    async stop() {
      await app.stop();
      await storage.close();
    },
  };
}

/** Yoga's graphql-ws recipe, unchanged but for types. */
async function startBaseline(): Promise<Running> {
  // The pub/sub's EventTarget would warn of a leak past 10 subscribers of one topic: a
  // warning only (nothing is limited), silenced here as a deployment would have to.
  setMaxListeners(1_000_000);
  const pubSub = createPubSub<{ board: [boardId: string, payload: string] }>();
  let subscribed = 0;
  const yoga = createYoga({
    graphqlEndpoint: '/graphql',
    logging: false,
    schema: createSchema({
      typeDefs: /* GraphQL */ `
        type Query {
          ok: Boolean!
        }
        type Mutation {
          publish(boardId: ID!, seq: Int!, message: String!): Boolean!
        }
        type Subscription {
          boardChanged(boardId: ID!): String!
        }
      `,
      resolvers: {
        Query: { ok: () => true },
        Mutation: {
          publish: (_: unknown, args: { boardId: string; seq: number; message: string }) => {
            committedAt.set(args.seq, performance.now());
            pubSub.publish('board', args.boardId, args.message);
            return true;
          },
        },
        Subscription: {
          boardChanged: {
            subscribe: (_: unknown, args: { boardId: string }) => {
              subscribed += 1;
              return pubSub.subscribe('board', args.boardId);
            },
            resolve: (payload: string) => payload,
          },
        },
      },
    }),
  });
  const server = createServer((req, res) => void yoga.handle(req, res));
  const wss = new WebSocketServer({ server, path: yoga.graphqlEndpoint });
  type Enveloped = ReturnType<typeof yoga.getEnveloped>;
  interface RecipeArgs extends ExecutionArgs {
    rootValue: { execute: Enveloped['execute']; subscribe: Enveloped['subscribe'] };
  }
  const disposable = useServer(
    {
      execute: (args) => (args as RecipeArgs).rootValue.execute(args),
      subscribe: (args) => (args as RecipeArgs).rootValue.subscribe(args),
      onSubscribe: async (ctx, _id, params) => {
        const { schema, execute, subscribe, contextFactory, parse, validate } = yoga.getEnveloped({
          ...ctx,
          req: ctx.extra.request,
          socket: ctx.extra.socket,
          params,
        });
        const args: RecipeArgs = {
          schema,
          operationName: params.operationName,
          document: parse(params.query),
          variableValues: params.variables,
          contextValue: await contextFactory(),
          rootValue: { execute, subscribe },
        };
        const errors = validate(args.schema, args.document);
        if (errors.length) return errors;
        return args;
      },
    },
    wss,
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    // Subscriptions started so far (each child serves one run, so this only grows).
    subscribers: () => subscribed,
    async stop() {
      for (const socket of wss.clients) socket.terminate();
      await disposable.dispose();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

const running = mode === 'corkboard' ? await startCorkboard() : await startBaseline();

/** `BENCH_HEAP_SNAPSHOTS=<dir>`: a heap snapshot at every memory reading, for comparing. */
const SNAPSHOT_DIR = process.env.BENCH_HEAP_SNAPSHOTS;
let snapshots = 0;

function memory(): MemoryReport {
  // Twice: the first pass may only queue finalizers whose garbage the second collects.
  gc?.();
  gc?.();
  const { heapUsed, rss, external, arrayBuffers } = process.memoryUsage();
  if (SNAPSHOT_DIR) {
    writeHeapSnapshot(join(SNAPSHOT_DIR, `${mode}-${process.pid}-${++snapshots}.heapsnapshot`));
  }
  return { heapUsed, rss, external, arrayBuffers };
}

process.on('message', (request: ServerRequest) => {
  const reply = (body: object) => send({ id: request.id, ...body });
  switch (request.type) {
    case 'clock':
      reply({ now: performance.now() });
      break;
    case 'memory':
      reply({ memory: memory() });
      break;
    case 'subscribers':
      reply({ subscribers: running.subscribers() });
      break;
    case 'resetSends':
      sends = { count: 0, bytes: 0, first: 0, last: 0 };
      reply({});
      break;
    case 'sends':
      reply({ sends });
      break;
    case 'commits': {
      const report: CommitsReport = {
        committed: request.keys.map((k) => committedAt.get(k) ?? null),
        toHub: request.keys.map((k) => toHubAt.get(k) ?? null),
      };
      reply(report);
      break;
    }
    case 'stop':
      running.stop().then(
        () => {
          reply({});
          process.disconnect();
        },
        (error: unknown) => {
          console.error('liveServer: stop failed', error);
          process.exit(1);
        },
      );
      break;
  }
});

send({ type: 'ready', url: running.url, mode, gc: gc !== undefined });
