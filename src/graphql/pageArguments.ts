import {
  getArgumentValues,
  getDirectiveValues,
  getOperationAST,
  getVariableValues,
  GraphQLError,
  GraphQLIncludeDirective,
  GraphQLSkipDirective,
  getNamedType,
  isInterfaceType,
  isObjectType,
  Kind,
  OperationTypeNode,
  type DocumentNode,
  type ExecutionArgs,
  type FieldNode,
  type FragmentDefinitionNode,
  type FragmentSpreadNode,
  type GraphQLField,
  type GraphQLNamedType,
  type GraphQLSchema,
  type InlineFragmentNode,
  type OperationDefinitionNode,
  type SelectionSetNode,
} from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { ErrorCode } from '../boards/errors.js';

/** The arguments of a paged field, as graphql-js hands them to its resolver. */
export type PageArgs = Readonly<Record<string, unknown>>;

/**
 * A bad page argument is the caller's mistake, reported as such (a `VALIDATION` error
 * naming the argument), never silently read as "from the start".
 */
export function badPageArgument(field: string, message: string): GraphQLError {
  return new GraphQLError(`${field}: ${message}`, {
    extensions: { code: ErrorCode.Validation, field },
  });
}

/** Per field coordinate (`Column.cards`): the check of its arguments; throws when bad. */
const checks = new Map<string, (args: PageArgs) => void>();

/**
 * Declares the check of a paged field's arguments: its resolver runs it, and so does a
 * mutation before any of its fields writes ({@link usePageArgumentsBeforeWrites}).
 */
export function pageArgumentsCheck<A extends PageArgs>(
  coordinates: readonly string[],
  check: (args: A) => void,
): (args: A) => void {
  for (const coordinate of coordinates) checks.set(coordinate, check as (args: PageArgs) => void);
  return check;
}

/** A selection whose `@skip`/`@include` may leave out what it holds. */
type Guard = FieldNode | InlineFragmentNode | FragmentSpreadNode;

/** Whether `@skip`/`@include` on `node` leave it out, for these variables. */
const skipped = (node: Guard, variables: Record<string, unknown>) =>
  getDirectiveValues(GraphQLSkipDirective, node, variables)?.['if'] === true ||
  getDirectiveValues(GraphQLIncludeDirective, node, variables)?.['if'] === false;

/** Whether none of `guards` leaves out what they hold, for these variables. */
const kept = (guards: readonly Guard[], variables: Record<string, unknown>) =>
  !guards.some((guard) => skipped(guard, variables));

/** A paged field of a mutation's selection, with what checks its arguments. */
interface PagedField {
  node: FieldNode;
  definition: GraphQLField<unknown, unknown>;
  check: (args: PageArgs) => void;
  /** The field and the selections holding it (within its scope) that carry directives. */
  guards: readonly Guard[];
}

/**
 * The operation's selection, or a fragment's: its paged fields and the fragments it spreads,
 * each with the selections within it that may leave them out.
 */
interface Scope {
  fields: PagedField[];
  spreads: { name: string; guards: readonly Guard[] }[];
}

/** An operation's scope and those of the fragments it reaches, by name. */
interface PagedFields {
  operation: Scope;
  fragments: ReadonlyMap<string, Scope>;
  /** Whether any scope holds a paged field. */
  any: boolean;
}

/** The scope of `selectionSet`, a selection on `type`. */
function scopeOf(
  schema: GraphQLSchema,
  selectionSet: SelectionSetNode,
  type: GraphQLNamedType | undefined,
): Scope {
  const scope: Scope = { fields: [], spreads: [] };
  const walk = (set: SelectionSetNode, parent: GraphQLNamedType | undefined, guards: Guard[]) => {
    for (const selection of set.selections) {
      const inner = selection.directives?.length ? [...guards, selection] : guards;
      if (selection.kind === Kind.FRAGMENT_SPREAD) {
        scope.spreads.push({ name: selection.name.value, guards: inner });
      } else if (selection.kind === Kind.INLINE_FRAGMENT) {
        const condition = selection.typeCondition?.name.value;
        walk(selection.selectionSet, condition ? schema.getType(condition) : parent, inner);
      } else {
        const fields = parent && (isObjectType(parent) || isInterfaceType(parent));
        const definition = fields ? parent.getFields()[selection.name.value] : undefined;
        if (!definition) continue;
        const check = isObjectType(parent)
          ? checks.get(`${parent.name}.${selection.name.value}`)
          : undefined;
        if (check) scope.fields.push({ node: selection, definition, check, guards: inner });
        if (selection.selectionSet) {
          walk(selection.selectionSet, getNamedType(definition.type), inner);
        }
      }
    }
  };
  walk(selectionSet, type, []);
  return scope;
}

/**
 * Per schema and parsed document (yoga reuses both), per operation name: the paged fields
 * of that operation (a document and a name always give the same operation).
 */
const pagedFieldsCache = new WeakMap<
  GraphQLSchema,
  WeakMap<DocumentNode, Map<string, PagedFields>>
>();

/**
 * The paged fields of `operation`'s selection and of the fragments it reaches: found once
 * per document, as they depend on the document alone (which of them run, and their
 * arguments' values, depend on the variables too: decided per request).
 */
function pagedFieldsOf(
  schema: GraphQLSchema,
  document: DocumentNode,
  operation: OperationDefinitionNode,
): PagedFields {
  let byDocument = pagedFieldsCache.get(schema);
  if (!byDocument) {
    byDocument = new WeakMap<DocumentNode, Map<string, PagedFields>>();
    pagedFieldsCache.set(schema, byDocument);
  }
  let byName = byDocument.get(document);
  if (!byName) {
    byName = new Map<string, PagedFields>();
    byDocument.set(document, byName);
  }
  const name = operation.name?.value ?? '';
  const cached = byName.get(name);
  if (cached) return cached;
  const definitions = new Map<string, FragmentDefinitionNode>();
  for (const d of document.definitions) {
    if (d.kind === Kind.FRAGMENT_DEFINITION) definitions.set(d.name.value, d);
  }
  const root = scopeOf(
    schema,
    operation.selectionSet,
    schema.getRootType(operation.operation) ?? undefined,
  );
  const fragments = new Map<string, Scope>();
  const pending = [root];
  let any = false;
  for (let scope = pending.pop(); scope; scope = pending.pop()) {
    any ||= scope.fields.length > 0;
    for (const { name: spread } of scope.spreads) {
      const fragment = definitions.get(spread);
      if (!fragment || fragments.has(spread)) continue;
      const inner = scopeOf(
        schema,
        fragment.selectionSet,
        schema.getType(fragment.typeCondition.name.value),
      );
      fragments.set(spread, inner);
      pending.push(inner);
    }
  }
  const found: PagedFields = { operation: root, fragments, any };
  byName.set(name, found);
  return found;
}

/**
 * The paged fields that run for these variables, operation first: a field runs when no
 * selection holding it is left out by `@skip`/`@include`, within the operation or within a
 * fragment that some spread left in reaches (as graphql-js collects fields).
 */
function pagedFieldsRun(found: PagedFields, variables: Record<string, unknown>): PagedField[] {
  const run: PagedField[] = [];
  const reached = new Set<string>();
  const scopes = [found.operation];
  for (let i = 0; i < scopes.length; i += 1) {
    const scope = scopes[i]!;
    for (const field of scope.fields) if (kept(field.guards, variables)) run.push(field);
    for (const spread of scope.spreads) {
      const fragment = found.fragments.get(spread.name);
      if (!fragment || reached.has(spread.name) || !kept(spread.guards, variables)) continue;
      reached.add(spread.name);
      scopes.push(fragment);
    }
  }
  return run;
}

/**
 * The first bad page argument anywhere in a mutation's selection (its payloads' `cards`,
 * `archivedCards` and `history`) that runs, or null: a field that `@skip`/`@include` leave
 * out, on it or on a selection or fragment spread holding it, does not run, so its
 * arguments refuse nothing (as its resolver would not have). Variables that do not fit are
 * left to graphql-js, which refuses them before any field runs.
 */
export function badPageArgumentOfMutation(
  schema: GraphQLSchema,
  document: DocumentNode,
  operationName: string | null | undefined,
  rawVariables: Record<string, unknown> | null | undefined,
): GraphQLError | null {
  const operation = getOperationAST(document, operationName);
  if (operation?.operation !== OperationTypeNode.MUTATION) return null;
  const found = pagedFieldsOf(schema, document, operation);
  if (!found.any) return null;
  const coerced = getVariableValues(
    schema,
    operation.variableDefinitions ?? [],
    rawVariables ?? {},
  );
  if (coerced.errors) return null;
  const variables = coerced.coerced;
  for (const { node, definition, check } of pagedFieldsRun(found, variables)) {
    try {
      check(getArgumentValues(definition, node, variables));
    } catch (error) {
      if (!(error instanceof GraphQLError)) throw error;
      return new GraphQLError(error.message, { nodes: node, extensions: error.extensions });
    }
  }
  return null;
}

/**
 * Refuses a mutation whose selection holds a bad page argument before any of its fields
 * runs. Checked by the field's resolver alone, the error came after the write: the
 * payload's non-null fields nulled the whole answer (`data: null`), so a committed
 * write was reported as a failure, and a retry wrote it again.
 */
export function usePageArgumentsBeforeWrites(): Plugin {
  return {
    onExecute({ args, setResultAndStopExecution }) {
      const { schema, document, operationName, variableValues } = args as ExecutionArgs;
      const error = badPageArgumentOfMutation(schema, document, operationName, variableValues);
      if (error) setResultAndStopExecution({ errors: [error] });
    },
  };
}
