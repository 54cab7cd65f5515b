import {
  getArgumentValues,
  getDirectiveValues,
  getOperationAST,
  getVariableValues,
  GraphQLError,
  GraphQLIncludeDirective,
  GraphQLSkipDirective,
  isObjectType,
  Kind,
  OperationTypeNode,
  TypeInfo,
  visit,
  visitWithTypeInfo,
  type DocumentNode,
  type ExecutionArgs,
  type FieldNode,
  type FragmentDefinitionNode,
  type GraphQLField,
  type GraphQLSchema,
  type OperationDefinitionNode,
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

/** The fragments `operation`'s selection reaches, directly or through another fragment. */
function fragmentsUsed(document: DocumentNode, root: DocumentNode['definitions'][number]) {
  const all = new Map<string, FragmentDefinitionNode>();
  for (const d of document.definitions) {
    if (d.kind === Kind.FRAGMENT_DEFINITION) all.set(d.name.value, d);
  }
  const used = new Map<string, FragmentDefinitionNode>();
  const pending = [root];
  while (pending.length > 0) {
    visit(pending.pop()!, {
      FragmentSpread(node) {
        const fragment = all.get(node.name.value);
        if (fragment && !used.has(node.name.value)) {
          used.set(node.name.value, fragment);
          pending.push(fragment);
        }
      },
    });
  }
  return [...used.values()];
}

const skipped = (node: FieldNode, variables: Record<string, unknown>) =>
  getDirectiveValues(GraphQLSkipDirective, node, variables)?.['if'] === true ||
  getDirectiveValues(GraphQLIncludeDirective, node, variables)?.['if'] === false;

/** A paged field of a mutation's selection, with what checks its arguments. */
interface PagedField {
  node: FieldNode;
  definition: GraphQLField<unknown, unknown>;
  check: (args: PageArgs) => void;
}

/**
 * Per schema and parsed document (yoga reuses both), per operation name: the paged fields
 * of that operation (a document and a name always give the same operation).
 */
const pagedFieldsCache = new WeakMap<
  GraphQLSchema,
  WeakMap<DocumentNode, Map<string, PagedField[]>>
>();

/**
 * The paged fields anywhere in `operation`'s selection, fragments included, in document
 * order: found once per document, as they depend on the document alone (their arguments'
 * values, on the variables too, are checked per request).
 */
function pagedFieldsOf(
  schema: GraphQLSchema,
  document: DocumentNode,
  operation: OperationDefinitionNode,
): PagedField[] {
  let byDocument = pagedFieldsCache.get(schema);
  if (!byDocument) {
    byDocument = new WeakMap<DocumentNode, Map<string, PagedField[]>>();
    pagedFieldsCache.set(schema, byDocument);
  }
  let byName = byDocument.get(document);
  if (!byName) {
    byName = new Map<string, PagedField[]>();
    byDocument.set(document, byName);
  }
  const name = operation.name?.value ?? '';
  const cached = byName.get(name);
  if (cached) return cached;
  const typeInfo = new TypeInfo(schema);
  const fields: PagedField[] = [];
  for (const root of [operation, ...fragmentsUsed(document, operation)]) {
    visit(
      root,
      visitWithTypeInfo(typeInfo, {
        Field(node) {
          const parent = typeInfo.getParentType();
          const definition = typeInfo.getFieldDef();
          if (!parent || !definition || !isObjectType(parent)) return undefined;
          const check = checks.get(`${parent.name}.${node.name.value}`);
          if (check) fields.push({ node, definition, check });
          return undefined;
        },
      }),
    );
  }
  byName.set(name, fields);
  return fields;
}

/**
 * The first bad page argument anywhere in a mutation's selection (its payloads' `cards`,
 * `archivedCards` and `history`), or null. Variables that do not fit are left to
 * graphql-js, which refuses them before any field runs.
 */
export function badPageArgumentOfMutation(
  schema: GraphQLSchema,
  document: DocumentNode,
  operationName: string | null | undefined,
  rawVariables: Record<string, unknown> | null | undefined,
): GraphQLError | null {
  const operation = getOperationAST(document, operationName);
  if (operation?.operation !== OperationTypeNode.MUTATION) return null;
  const fields = pagedFieldsOf(schema, document, operation);
  if (fields.length === 0) return null;
  const coerced = getVariableValues(
    schema,
    operation.variableDefinitions ?? [],
    rawVariables ?? {},
  );
  if (coerced.errors) return null;
  const variables = coerced.coerced;
  for (const { node, definition, check } of fields) {
    if (skipped(node, variables)) continue;
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
