import {
  createSourceEventStream,
  execute,
  subscribe,
  getOperationAST,
  Kind,
  OperationTypeNode,
  print,
  TypeInfo,
  visit,
  visitWithTypeInfo,
  type ASTNode,
  type DocumentNode,
  type ExecutionArgs,
  type FragmentDefinitionNode,
  type OperationDefinitionNode,
  type ExecutionResult,
  type GraphQLError,
  type GraphQLSchema,
} from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { BoardReads } from '../boards/reads.js';
import type { UserDoc } from '../boards/readModel.js';
import type {
  BoardChangeMessage,
  BoardChangeStream,
  DirectDelivery,
  LiveConnection,
} from '../live/BoardChangeHub.js';
import { nextFrame } from '../live/frames.js';
import {
  SERIALIZED_BYTES,
  type GroupMembership,
  type SharedResult,
} from '../live/SubscriptionGroups.js';
import type { GraphQLContext, Services } from './context.js';

/**
 * Field extension marking a field whose value depends on who asks (it reads
 * `ctx.viewer`). A subscription whose selection touches one is executed for its
 * subscriber alone; every other subscription shares its group's execution, which
 * runs without a viewer.
 */
export const VIEWER_DEPENDENT = 'viewerDependent';

/** The argument that says where a subscriber starts, not what it receives. */
const REPLAY_ARGUMENT = 'after';

/** What of an operation decides its group, worked out once per parsed document. */
interface Plan {
  /**
   * The executable document as executed, printed (normalised: no comments, canonical
   * spacing): the operation, then every fragment it uses, directly or through another
   * fragment, by name. Two documents whose operation reads the same but whose fragments
   * differ select different fields, so they must not share a group.
   */
  printed: string;
  viewerDependent: boolean;
  /** Variables used only as the root field's `after`: they do not change the output. */
  replayVariables: ReadonlySet<string>;
}

const plans = new WeakMap<DocumentNode, Map<string, Plan | null>>();

function planOf(
  schema: GraphQLSchema,
  document: DocumentNode,
  operationName: string | null | undefined,
): Plan | null {
  let byName = plans.get(document);
  if (!byName) plans.set(document, (byName = new Map<string, Plan | null>()));
  const name = operationName ?? '';
  let plan = byName.get(name);
  if (plan === undefined) {
    plan = makePlan(schema, document, operationName);
    byName.set(name, plan);
  }
  return plan;
}

function makePlan(
  schema: GraphQLSchema,
  document: DocumentNode,
  operationName: string | null | undefined,
): Plan | null {
  const operation = getOperationAST(document, operationName);
  if (!operation || operation.operation !== OperationTypeNode.SUBSCRIPTION) return null;
  // A subscription has one root field; its events are BoardChangeMessages only for this one.
  const [root] = operation.selectionSet.selections;
  if (root?.kind !== Kind.FIELD || root.name.value !== SHARED_ROOT_FIELD) return null;
  let viewerDependent = false;
  const typeInfo = new TypeInfo(schema);
  // Every definition (fragments too, used or not): erring towards executing alone.
  visit(
    document,
    visitWithTypeInfo(typeInfo, {
      Field() {
        if (typeInfo.getFieldDef()?.extensions[VIEWER_DEPENDENT] === true) viewerDependent = true;
      },
    }),
  );
  const uses = new Map<string, number>();
  visit(operation, {
    Variable(node, _key, parent) {
      // A declaration (`$after: Cursor`) is not a use.
      if ((parent as { kind?: string } | undefined)?.kind === Kind.VARIABLE_DEFINITION) return;
      uses.set(node.name.value, (uses.get(node.name.value) ?? 0) + 1);
    },
  });
  const replayVariables = new Set<string>();
  for (const selection of operation.selectionSet.selections) {
    if (selection.kind !== Kind.FIELD) continue;
    for (const argument of selection.arguments ?? []) {
      if (argument.name.value !== REPLAY_ARGUMENT || argument.value.kind !== Kind.VARIABLE)
        continue;
      const variable = argument.value.name.value;
      if (uses.get(variable) === 1) replayVariables.add(variable);
    }
  }
  return { printed: printExecuted(document, operation), viewerDependent, replayVariables };
}

/**
 * `operation` and the fragments it uses (transitively), printed: what graphql-js executes
 * of `document` for it. Fragments come in name order, so their order in the source does
 * not matter; fragments only other operations use are left out.
 */
function printExecuted(document: DocumentNode, operation: OperationDefinitionNode): string {
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const definition of document.definitions) {
    if (definition.kind === Kind.FRAGMENT_DEFINITION) {
      fragments.set(definition.name.value, definition);
    }
  }
  const used = new Map<string, FragmentDefinitionNode>();
  const pending: ASTNode[] = [operation];
  for (let node = pending.pop(); node; node = pending.pop()) {
    visit(node, {
      FragmentSpread(spread) {
        const name = spread.name.value;
        const fragment = fragments.get(name);
        if (!fragment || used.has(name)) return;
        used.set(name, fragment);
        pending.push(fragment);
      },
    });
  }
  const names = [...used.keys()].sort();
  return [operation, ...names.map((name) => used.get(name)!)].map((d) => print(d)).join('\n');
}

/** The variables that matter, in a canonical order. */
function variablesKey(variables: ExecutionArgs['variableValues'], skip: ReadonlySet<string>) {
  if (!variables) return '';
  const kept = Object.keys(variables)
    .filter((name) => !skip.has(name))
    .sort()
    .map((name) => [name, variables[name]]);
  return JSON.stringify(kept);
}

/** Equal keys for equal events: the same change (or the same resync) of a board. */
const eventKeyOf = (event: unknown): string => {
  const change = event as BoardChangeMessage;
  return `${change.resyncRequired ? 'resync' : 'change'}:${change.cursor}`;
};

const isBoardChangeStream = (stream: AsyncIterator<unknown>): stream is BoardChangeStream =>
  typeof (stream as Partial<BoardChangeStream>).deliverDirectly === 'function';

/**
 * A context for one shared execution: fresh reads, the given viewer (null when shared).
 * Its reads are scoped to the change's board (every member of the group may read it)
 * and hold the commit's own documents, so the change's data is as the commit left it.
 */
async function executionContext(
  services: Services,
  viewer: UserDoc | null,
  signal: AbortSignal,
  event: BoardChangeMessage,
): Promise<GraphQLContext> {
  const reads = new BoardReads(await services.readModels.active({ signal }), signal, {
    boardScope: event.boardId,
    access: services.access,
  });
  reads.prime(event.changed);
  return {
    services,
    viewer,
    // Per-change executions outlive nothing: the subscription itself watches the credential.
    credential: null,
    // Admin-only fields are never part of a shared selection's output.
    isAdmin: false,
    signal,
    reads,
    readModelBehind: null,
    wrote: false,
    settle: () => Promise.reject(new Error('a subscription does not write')),
  };
}

/** A subscription's results, shared with its group; it leaves the group when it ends. */
class SharedStream implements AsyncIterableIterator<ExecutionResult> {
  constructor(
    private readonly source: AsyncIterator<unknown>,
    private readonly membership: GroupMembership,
  ) {}

  // Not an async function: a parked one would keep its frame (a generator) alive; and
  // one reaction, not a chain, waits on the source.
  next(): Promise<IteratorResult<ExecutionResult, undefined>> {
    return this.source.next().then(
      (next) => this.#resultOf(next),
      (error: unknown) => this.#failed(error),
    );
  }

  #resultOf(
    next: IteratorResult<unknown, unknown>,
  ):
    | IteratorResult<ExecutionResult, undefined>
    | Promise<IteratorResult<ExecutionResult, undefined>> {
    if (next.done) {
      this.membership.leave();
      return { done: true, value: undefined };
    }
    return this.membership.resultFor(next.value, eventKeyOf).then(
      (value): IteratorResult<ExecutionResult, undefined> => ({ done: false, value }),
      (error: unknown) => this.#failed(error),
    );
  }

  async #failed(error: unknown): Promise<never> {
    await this.#end();
    throw error;
  }

  async return(): Promise<IteratorResult<ExecutionResult, undefined>> {
    await this.#end();
    return { done: true, value: undefined };
  }

  async throw(error?: unknown): Promise<IteratorResult<ExecutionResult, undefined>> {
    await this.#end();
    throw error;
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  async #end() {
    this.membership.leave();
    await this.source.return?.();
  }
}

/**
 * A websocket subscription's frames: its id spliced around each shared result's bytes.
 * It keeps the id graphql-ws keeps anyway, nothing built per subscription.
 */
class DirectFrames implements DirectDelivery<SharedResult> {
  constructor(
    private readonly membership: GroupMembership,
    private readonly connection: LiveConnection,
    private readonly operationId: string,
  ) {}

  resultFor(message: BoardChangeMessage): Promise<SharedResult> {
    return this.membership.resultFor(message, eventKeyOf);
  }

  send(result: SharedResult): boolean {
    return this.connection.send(nextFrame(this.operationId, result[SERIALIZED_BYTES]));
  }
}

/** The subscription field whose events (board changes) groups share. */
const SHARED_ROOT_FIELD = 'boardChanges';

/** Options of `useSharedSubscriptions`. */
export interface SharedSubscriptionsOptions {
  services: Services;
  /** Masks (and logs) unexpected errors of a shared execution, as yoga does for others. */
  maskError: (error: GraphQLError) => GraphQLError;
}

/**
 * An envelop plugin: subscriptions of one board whose results cannot differ share one
 * execution and one serialisation per change (`SubscriptionGroups`).
 *
 * The subscribe itself (the field's `subscribe`: authentication, the access check,
 * the hub subscription) runs per subscriber as before. Then, instead of graphql-js
 * executing the selection once per event per subscriber, each subscriber joins the
 * group keyed by its operation and the fragments it uses (printed), its variables other
 * than `after`, and, when the selection touches a field marked `VIEWER_DEPENDENT`, a key
 * of its own (it executes alone, with its own viewer). Per change, the group executes
 * once (a fresh read model view and loaders, created for that execution) and every
 * member gets the same `SharedResult`: over SSE yoga writes its JSON as is, over a websocket
 * `websocket.ts` splices each member's id around it. Authorization stays per
 * subscriber: the hub asks each one's `authorize` before a members change.
 */
export function useSharedSubscriptions(options: SharedSubscriptionsOptions): Plugin {
  const { services, maskError } = options;
  let lone = 0;

  const subscribeShared = async (args: ExecutionArgs) => {
    const { schema, document, operationName, variableValues } = args;
    const plan = planOf(schema, document, operationName);
    // Only board change streams are shared; any other subscription executes as usual.
    if (!plan) return subscribe(args);
    const source = await createSourceEventStream(args);
    if (!(Symbol.asyncIterator in source)) return source;
    const viewer = plan.viewerDependent ? (args.contextValue as GraphQLContext).viewer : null;
    const key =
      `${plan.printed}\n${operationName ?? ''}\n${variablesKey(variableValues, plan.replayVariables)}` +
      (plan.viewerDependent ? `\nalone:${++lone}` : '');
    const membership =
      services.live.groups.join(key) ??
      services.live.groups.create(key, async (event, signal) => {
        const contextValue = await executionContext(
          services,
          viewer,
          signal,
          event as BoardChangeMessage,
        );
        const result = await execute({
          schema,
          document,
          operationName,
          variableValues,
          rootValue: event,
          contextValue,
        });
        return result.errors ? { ...result, errors: result.errors.map(maskError) } : result;
      });
    const stream = source[Symbol.asyncIterator]();
    const member = args.contextValue as Partial<GraphQLContext>;
    const { connection, operationId } = member;
    // Nothing reads the subscriber's context again (graphql-ws and yoga keep it for as
    // long as the subscription lives): let its reads and viewer go.
    // (Emptied, not deleted: deleting turns the object into a larger dictionary.)
    Object.assign(member, { reads: undefined, viewer: undefined, settle: undefined });
    if (connection && operationId !== undefined && isBoardChangeStream(stream)) {
      // Caught up, it writes each change's frame itself: its id around the shared JSON.
      stream.deliverDirectly(new DirectFrames(membership, connection, operationId));
    }
    return new SharedStream(stream, membership);
  };

  return {
    onSubscribe({ setSubscribeFn }) {
      setSubscribeFn(subscribeShared);
    },
  };
}
