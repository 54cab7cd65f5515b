/**
 * The cost of a document: graphql-armor's weights (an object 2, a scalar 1, a child's cost
 * times a depth factor), with a page priced at what the field may answer. graphql-armor's
 * own rule multiplies a selection by its literal `first`/`last` as written, uncapped, and by
 * 1 when it comes from a variable; so `history(first: 501)` was refused where the same
 * through a variable was served (cut to 500). Here a paginated field declares its page sizes
 * (`PAGE_EXTENSION`, from the code's own constants) and its selection is multiplied by:
 * - a literal `first`/`last`: min(value, the page's max), at least 1;
 * - a variable: the page's max, whatever its value or default (the most it can ask); the
 *   cost is the document's own, so a document is refused or served whatever its variables
 *   (and yoga may cache validation by document);
 * - neither: the page's default size.
 */
import {
  GraphQLError,
  Kind,
  getNamedType,
  isInterfaceType,
  isObjectType,
  type ASTVisitor,
  type FieldNode,
  type GraphQLNamedType,
  type OperationDefinitionNode,
  type SelectionSetNode,
  type ValidationContext,
  type ValidationRule,
} from 'graphql';

/** The field extension a paginated field declares its page sizes in. */
export const PAGE_EXTENSION = 'corkboardPage';

/** A paginated field's page sizes: without `first`/`last`, and at most. */
export interface PageSizes {
  readonly default: number;
  readonly max: number;
}

/** The field options' `extensions` declaring `page` (spread into a Pothos field). */
export function pageExtensions(page: PageSizes): { extensions: Record<string, PageSizes> } {
  return { extensions: { [PAGE_EXTENSION]: page } };
}

/** Weights of the cost (graphql-armor's defaults but the depth factor; see `queryLimits.ts`). */
export interface CostWeights {
  objectCost: number;
  scalarCost: number;
  depthCostFactor: number;
}

/** The page sizes a field declares, or undefined. */
export function pageSizesOf(extensions: unknown): PageSizes | undefined {
  const page = (extensions as Record<string, unknown> | null | undefined)?.[PAGE_EXTENSION];
  return page as PageSizes | undefined;
}

function pageMultiplier(node: FieldNode, page: PageSizes): number {
  let multiplier: number | undefined;
  for (const arg of node.arguments ?? []) {
    if (arg.name.value !== 'first' && arg.name.value !== 'last') continue;
    const asked =
      arg.value.kind === Kind.INT ? Math.min(Number(arg.value.value), page.max) : page.max;
    multiplier = Math.max(multiplier ?? 1, asked, 1);
  }
  return multiplier ?? page.default;
}

/** The cost of a selection set under `root`, as graphql-armor weighs it with pages capped. */
function costOf(context: ValidationContext, selectionSet: SelectionSetNode, weights: CostWeights) {
  const schema = context.getSchema();
  // A fragment's cost is counted once fully; spreads after the first reuse it (as armor).
  const fragments = new Map<string, number>();
  const visit = (set: SelectionSetNode, parent: GraphQLNamedType | undefined): number => {
    let total = 0;
    for (const selection of set.selections) {
      total += weights.depthCostFactor * selectionCost(selection, parent);
    }
    return total;
  };
  const selectionCost = (
    selection: SelectionSetNode['selections'][number],
    parent: GraphQLNamedType | undefined,
  ): number => {
    if (selection.kind === Kind.FIELD) {
      if (selection.name.value === '__schema') return 0;
      const field =
        parent && (isObjectType(parent) || isInterfaceType(parent))
          ? parent.getFields()[selection.name.value]
          : undefined;
      if (!selection.selectionSet) return weights.scalarCost;
      const page = pageSizesOf(field?.extensions);
      const child = field ? getNamedType(field.type) : undefined;
      const cost = weights.objectCost + visit(selection.selectionSet, child);
      return page ? cost * pageMultiplier(selection, page) : cost;
    }
    if (selection.kind === Kind.INLINE_FRAGMENT) {
      const type = selection.typeCondition
        ? schema.getType(selection.typeCondition.name.value)
        : parent;
      return weights.objectCost + visit(selection.selectionSet, type);
    }
    const name = selection.name.value;
    const known = fragments.get(name);
    if (known !== undefined) return weights.scalarCost + weights.depthCostFactor * known;
    fragments.set(name, 0);
    const fragment = context.getFragment(name);
    if (!fragment) return weights.scalarCost;
    const type = schema.getType(fragment.typeCondition.name.value);
    const cost = weights.objectCost + visit(fragment.selectionSet, type);
    fragments.set(name, cost);
    return weights.scalarCost + weights.depthCostFactor * cost;
  };
  return (root: GraphQLNamedType | undefined) => {
    let total = 0;
    for (const selection of selectionSet.selections) total += selectionCost(selection, root);
    return total;
  };
}

/**
 * The cost of each operation of the document `context` validates (ignoring introspection's
 * `__schema`), as `pagedCostRule` prices it.
 */
export function operationCost(
  context: ValidationContext,
  operation: OperationDefinitionNode,
  weights: CostWeights,
): number {
  const root = context.getSchema().getRootType(operation.operation) ?? undefined;
  return costOf(context, operation.selectionSet, weights)(root);
}

/**
 * A validation rule refusing an operation that costs more than `maxCost`, with graphql-armor's
 * message ("Query Cost limit of N exceeded, found C.", C to the unit) and `code`.
 */
export function pagedCostRule(
  options: CostWeights & { maxCost: number; code: string },
): ValidationRule {
  return (context: ValidationContext): ASTVisitor => ({
    OperationDefinition(operation) {
      const cost = Math.ceil(operationCost(context, operation, options));
      if (cost > options.maxCost) {
        context.reportError(
          new GraphQLError(`Query Cost limit of ${options.maxCost} exceeded, found ${cost}.`, {
            extensions: { code: options.code },
          }),
        );
      }
    },
  });
}
