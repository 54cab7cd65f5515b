import {
  BREAK,
  execute,
  getOperationAST,
  GraphQLError,
  Kind,
  OperationTypeNode,
  visit,
  type DocumentNode,
  type ExecutionArgs,
  type ExecutionResult,
  type GraphQLSchema,
  type Source,
} from 'graphql';
import { compileQuery, isCompiledQuery, type CompiledQuery } from 'graphql-jit';
import type { Plugin } from 'graphql-yoga';
import type { Logger } from '../logger.js';

/** The run of a query document on which it is compiled (the runs before use graphql-js). */
export const COMPILE_ON_RUN = 2;

/**
 * Whether `document` may run compiled: one operation (a compiled function is kept per
 * document), a query (mutations run their fields one after the other, subscriptions
 * through their own path: both stay on graphql-js), and no `@skip`/`@include` anywhere
 * (graphql-jit's handling of them in fragment spreads is still being reworked upstream).
 */
function compilable(document: DocumentNode): boolean {
  const operations = document.definitions.filter((d) => d.kind === Kind.OPERATION_DEFINITION);
  if (operations.length !== 1) return false;
  if (getOperationAST(document)?.operation !== OperationTypeNode.QUERY) return false;
  let conditional = false;
  visit(document, {
    Directive(node) {
      if (node.name.value !== 'skip' && node.name.value !== 'include') return undefined;
      conditional = true;
      return BREAK;
    },
  });
  return !conditional;
}

/**
 * graphql-jit's errors are its own `GraphQLError` (a subclass whose `extensions` is
 * undefined when the error had none, with locations but no source positions); the
 * masking and bounding of errors expect graphql-js's, so each becomes one, with the
 * same message, path, cause and locations (as positions in `source`, as graphql-js
 * gives them, so that a copy of the error keeps them).
 */
function asGraphQLError(error: GraphQLError, source: Source | undefined): GraphQLError {
  if (error.constructor === GraphQLError) return error;
  const lineStarts = source
    ? [0, ...[...source.body.matchAll(/\r\n|[\n\r]/g)].map((m) => m.index + m[0].length)]
    : [];
  const positions = (error.locations ?? []).flatMap(({ line, column }) => {
    const start = lineStarts[line - 1];
    return start === undefined ? [] : [start + column - 1];
  });
  return new GraphQLError(error.message, {
    source: source ?? null,
    positions: positions.length > 0 ? positions : null,
    path: error.path ?? null,
    originalError: error.originalError ?? null,
    extensions: error.extensions ?? null,
  });
}

/**
 * Runs repeated queries compiled by graphql-jit: on its {@link COMPILE_ON_RUN}th run, a
 * query document is compiled into one JavaScript function for its shape, and runs as
 * that function from then on: about three times faster than graphql-js for a whole
 * board, with the same answer (fields in selection order, errors located, masked and
 * logged the same way). Documents come from yoga's parse cache, so a client repeating a
 * query sends the same document object; a one-off document is never compiled.
 * A request error (variables that do not fit: no `data` at all) is answered by
 * graphql-js, whose messages the rest of the API's errors follow; no resolver ran, so
 * running it again changes nothing.
 */
export function useCompiledQueries(logger: Logger): Plugin {
  /** Per document: runs so far, its compiled function, or false (never compiled). */
  const state = new WeakMap<GraphQLSchema, WeakMap<DocumentNode, number | CompiledQuery | false>>();

  function compiledFor(schema: GraphQLSchema, document: DocumentNode): CompiledQuery | null {
    let ofSchema = state.get(schema);
    if (!ofSchema) state.set(schema, (ofSchema = new WeakMap()));
    const known = ofSchema.get(document) ?? 0;
    if (known === false) return null;
    if (typeof known !== 'number') return known;
    if (known + 1 < COMPILE_ON_RUN) {
      ofSchema.set(document, known + 1);
      return null;
    }
    let compiled: CompiledQuery | false = false;
    if (compilable(document)) {
      const result = compileQuery(schema, document);
      if (isCompiledQuery(result)) {
        compiled = result;
        logger.debug({ operationName: getOperationAST(document)?.name?.value }, 'query compiled');
      } else {
        logger.warn({ errors: result.errors?.map((e) => e.message) }, 'a query did not compile');
      }
    }
    ofSchema.set(document, compiled);
    return compiled || null;
  }

  const runCompiled =
    (compiled: CompiledQuery) =>
    async (args: ExecutionArgs): Promise<ExecutionResult> => {
      const result = await compiled.query(args.rootValue, args.contextValue, args.variableValues);
      if (result.data === undefined) return execute(args);
      if (!result.errors) return result;
      // graphql-js's order: errors first.
      const source = args.document.loc?.source;
      return { errors: result.errors.map((e) => asGraphQLError(e, source)), data: result.data };
    };

  return {
    onExecute({ args, setExecuteFn }) {
      const { schema, document } = args as ExecutionArgs;
      const compiled = compiledFor(schema, document);
      if (compiled) setExecuteFn(runCompiled(compiled) as typeof execute);
    },
  };
}
