/**
 * Limits on what one operation may ask: its parameters' nesting, and its document's depth,
 * aliases, tokens and cost. Every transport runs them (HTTP GET and POST, multipart, SSE,
 * graphql-ws), through yoga's envelop or, for the parameters, before anything else.
 */
import { maxAliasesPlugin } from '@escape.tech/graphql-armor-max-aliases';
import { maxDepthPlugin } from '@escape.tech/graphql-armor-max-depth';
import { maxTokensPlugin } from '@escape.tech/graphql-armor-max-tokens';
import { GraphQLError, type ValidationContext } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import {
  JSON_TOO_DEEP_CODE,
  jsonTooDeepMessage,
  valueNestsDeeperThan,
} from '../http/requestBody.js';
import { pagedCostRule } from './queryCost.js';

/**
 * The query limits of every operation, on every transport (HTTP GET and POST, multipart,
 * SSE, graphql-ws): enforced by graphql-armor's plugins in parse and validation, which
 * every transport runs through yoga's envelop.
 */
export const QUERY_LIMITS = {
  /** Deepest selection nesting. */
  maxDepth: 12,
  /** Aliases in one document. */
  maxAliases: 30,
  /** Tokens of one document. */
  maxTokens: 5_000,
  /**
   * Cost of one operation: graphql-armor's weights, a page priced at what it may hold
   * (`pagedCostRule`). The SDK's `MoveCard` at 500 cards per column (two columns' pages)
   * costs about 154,000; two pages of 500 nested in each other cost millions.
   */
  maxCost: 200_000,
} as const;

/**
 * Weights of a document's cost (`pagedCostRule`): graphql-armor's, but depth weighs less than
 * its default (1.5) so a whole board in one query (board > columns > cards > fields) stays
 * allowed; aliases and depth are capped above.
 */
export const COST_WEIGHTS = { objectCost: 2, scalarCost: 1, depthCostFactor: 1.2 } as const;

/** The `extensions.code` of each query limit's refusal (the token limit is a parse error). */
export const QUERY_LIMIT_CODES = {
  depth: 'QUERY_TOO_DEEP',
  aliases: 'TOO_MANY_ALIASES',
  cost: 'QUERY_TOO_COSTLY',
} as const;

/**
 * graphql-armor reports a limit as "Syntax Error: Query depth limit…" with no code; the
 * query is well-formed, so it is reported as the validation error it is, with its code
 * (and the cost, a weighted sum, to the unit).
 */
function limitRefusal(code: string) {
  return (context: ValidationContext | null, error: GraphQLError): void => {
    const message = error.message
      .replace(/^Syntax Error: /, '')
      .replace(/found (\d+\.\d+)\.$/, (_, found: string) => `found ${Math.ceil(Number(found))}.`);
    context?.reportError(new GraphQLError(message, { extensions: { code } }));
  };
}

/** graphql-armor's plugins enforcing `QUERY_LIMITS`, each refusal with its code. */
export function queryLimitPlugins(): Plugin[] {
  return [
    maxDepthPlugin({
      n: QUERY_LIMITS.maxDepth,
      propagateOnRejection: false,
      onReject: [limitRefusal(QUERY_LIMIT_CODES.depth)],
    }),
    // Aliases of `__typename` are not counted (graphql-armor's default allow list): they
    // cost nothing, and the token limit bounds them.
    maxAliasesPlugin({
      n: QUERY_LIMITS.maxAliases,
      propagateOnRejection: false,
      onReject: [limitRefusal(QUERY_LIMIT_CODES.aliases)],
    }),
    maxTokensPlugin({ n: QUERY_LIMITS.maxTokens }),
    {
      onValidate({ addValidationRule }) {
        addValidationRule(
          pagedCostRule({
            ...COST_WEIGHTS,
            maxCost: QUERY_LIMITS.maxCost,
            code: QUERY_LIMIT_CODES.cost,
          }),
        );
      },
    },
  ];
}

/**
 * The refusal of an operation whose parameters (`variables`, `extensions`, within the
 * parameters object, as a JSON body nests them) nest deeper than `maxDepth`, or null. The transports call it before anything else of the operation runs:
 * HTTP (GET, POST, multipart, SSE) through `onParams`, graphql-ws in its `onSubscribe`;
 * a JSON or multipart body is refused even earlier, by a byte scan before parsing
 * (`checkGraphQLBody`), with the same message and code.
 */
export function jsonDepthRefusal(
  params: { variables?: unknown; extensions?: unknown },
  maxDepth: number,
): GraphQLError | null {
  // Counted as the byte scan counts a JSON body: the parameters object is one level.
  if (
    !valueNestsDeeperThan({ variables: params.variables, extensions: params.extensions }, maxDepth)
  ) {
    return null;
  }
  return new GraphQLError(jsonTooDeepMessage(maxDepth), {
    extensions: { code: JSON_TOO_DEEP_CODE, http: { status: 400 } },
  });
}

/** `jsonDepthRefusal` on every HTTP request (GET's query string included). */
export function jsonDepthLimit(maxDepth: number): Plugin {
  return {
    onParams({ params }) {
      const refusal = jsonDepthRefusal(params, maxDepth);
      if (refusal) throw refusal;
    },
  };
}
