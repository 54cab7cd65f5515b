import { costLimitPlugin } from '@escape.tech/graphql-armor-cost-limit';
import { maxAliasesPlugin } from '@escape.tech/graphql-armor-max-aliases';
import { maxDepthPlugin } from '@escape.tech/graphql-armor-max-depth';
import { maxTokensPlugin } from '@escape.tech/graphql-armor-max-tokens';
import { renderGraphiQL } from '@graphql-yoga/render-graphiql';
import { useEngine } from '@envelop/core';
import { execute, subscribe } from 'graphql';
import {
  createYoga,
  maskError,
  isAsyncIterable,
  useExecutionCancellation,
  type Plugin,
  type YogaServerInstance,
} from 'graphql-yoga';
import type { GraphQLError } from 'graphql';
import { BoardReads } from '../boards/reads.js';
import { ProjectionTimeout } from '../projector/ChangeLogFollower.js';
import { authenticate, isAdminAuthorization } from './auth.js';
import type { GraphQLContext, Services } from './context.js';
import { buildSchema } from './schema.js';
import { useSharedSubscriptions } from './sharedSubscriptions.js';

/** Where GraphQL (and GraphiQL) is served. */
export const GRAPHQL_PATH = '/graphql';

const DEFAULT_QUERY = `# Corkboard. Run \`npm run seed\` and paste the printed header into Headers below:
#   { "Authorization": "Bearer <token>" }
query MyBoards {
  me { username displayName }
  boards {
    id
    version
    name
    members { username }
    columns {
      id
      version
      name
      wipLimit
      cardCount
      cards(first: 20) {
        edges { node { id version title done rank assignee { username } labels } }
        pageInfo { hasNextPage endCursor }
      }
    }
  }
}
`;

/**
 * Builds the context of one operation: authenticates the bearer token and pins the
 * read model generation, so one operation never mixes two generations.
 */
export async function createContext(
  services: Services,
  authorization: string | null | undefined,
  signal: AbortSignal,
): Promise<GraphQLContext> {
  const reads = new BoardReads(await services.readModels.active({ signal }), signal);
  const viewer = await authenticate(reads, authorization);
  const context: GraphQLContext = {
    services,
    viewer,
    isAdmin: isAdminAuthorization(services.adminToken, authorization),
    signal,
    reads,
    readModelBehind: null,
    async settle(position) {
      try {
        await services.follower.waitFor(position, {
          timeoutMs: services.readYourWritesTimeoutMs,
          signal,
        });
      } catch (error) {
        if (!(error instanceof ProjectionTimeout)) throw error;
        // Answer anyway: the write is committed; the payload may lag behind it.
        services.logger.warn({ position }, 'mutation answered before its commit was projected');
        this.readModelBehind = Math.max(this.readModelBehind ?? 0, position);
      }
      // `this`, not `context`: yoga copies this object into the context resolvers see.
      // `fresh`: a cached pointer could still name the generation a rebuild just replaced,
      // which never receives the commit waited for.
      this.reads = new BoardReads(
        await services.readModels.active({ signal, fresh: true }),
        signal,
      );
    },
  };
  return context;
}

/**
 * Adds `extensions.readModelBehind: { position }` to the answer of an operation whose
 * write committed but was not projected within the read-your-writes timeout: the
 * payload's fields may then show the resource before that write (a resource the write
 * created is built from the committed events), and the caller's next query may too,
 * until the read model reaches `position`.
 */
function readModelBehindPlugin(): Plugin<GraphQLContext> {
  return {
    onExecute() {
      return {
        onExecuteDone({ args, result, setResult }) {
          const position = (args.contextValue as GraphQLContext).readModelBehind;
          if (position === null || isAsyncIterable(result)) return;
          setResult({
            ...result,
            extensions: { ...result.extensions, readModelBehind: { position } },
          });
        },
      };
    },
  };
}

/**
 * graphql-yoga over the Pothos schema: GraphiQL at /graphql, errors masked except
 * the expected ones (which are data), and query limits from graphql-armor (a
 * maintained set of envelop plugins) so one request cannot ask for unbounded work.
 */
export function createGraphQLServer(
  services: Services,
  options: { plugins?: Plugin[] } = {},
): YogaServerInstance<object, GraphQLContext> {
  const maskUnexpected = (error: unknown, message = 'Unexpected error.', isDev = false) => {
    const masked = maskError(error, message, isDev);
    // Only what yoga hides is unexpected; log it with its stack, server-side only.
    if (masked !== error)
      services.logger.error({ err: error }, 'unexpected error in a GraphQL operation');
    return masked;
  };
  return createYoga<object, GraphQLContext>({
    schema: buildSchema(),
    graphqlEndpoint: GRAPHQL_PATH,
    context: ({ request }) =>
      createContext(services, request.headers.get('authorization'), request.signal),
    graphiql: { title: 'Corkboard', defaultQuery: DEFAULT_QUERY, subscriptionsProtocol: 'WS' },
    // Serves GraphiQL's bundle from this server instead of yoga's default CDN, so
    // GraphiQL works offline and behind firewalls.
    renderGraphiQL,
    maskedErrors: { maskError: maskUnexpected },
    logging: {
      debug: (...args) => services.logger.debug(args.map(String).join(' ')),
      info: (...args) => services.logger.info(args.map(String).join(' ')),
      warn: (...args) => services.logger.warn(args.map(String).join(' ')),
      error: (...args) => services.logger.error(args.map(String).join(' ')),
    },
    plugins: [
      // Stops resolvers (and so store reads) once the client has gone away.
      useExecutionCancellation(),
      maxDepthPlugin({ n: 12 }),
      maxAliasesPlugin({ n: 30 }),
      maxTokensPlugin({ n: 5_000 }),
      // Depth weighs less than graphql-armor's default (1.5) so a whole board in one query
      // (board > columns > cards > fields) stays allowed; aliases and depth are capped above.
      costLimitPlugin({ maxCost: 50_000, depthCostFactor: 1.2 }),
      readModelBehindPlugin(),
      // graphql-js executes: it builds each result object in selection order, as the
      // spec asks. The @graphql-tools/executor yoga ships (pinned for Node 20) builds
      // them in resolve order, so `{ id version name }` came back as version, name, id.
      useEngine({ execute, subscribe }),
      // Identical subscriptions of a board: one execution and one serialisation per change.
      useSharedSubscriptions({
        services,
        maskError: (error) => maskUnexpected(error) as GraphQLError,
      }),
      ...(options.plugins ?? []),
    ],
  });
}
