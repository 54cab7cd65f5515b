import { LiveErrorCode } from './liveErrorCodes.js';
import { accessEndedOf, type BoardAccessEndedError } from './accessEnded.js';
import type { BoardChange, BoardChangesOptions } from './boardChanges.js';
import { mergeInvalidation } from './invalidations.js';

/** One resource a change made stale: `BoardChange.invalidated[number]`. */
export type Invalidation = BoardChange['invalidated'][number];

/**
 * Where a live binding reads a board's changes from: a `CorkboardClient`
 * (`createCorkboardClient`) fits. `me` is asked once, to tell the viewer's own
 * changes from others' (see `LiveBoardOptions.ownChangeGraceMs`).
 */
export interface LiveBoardSource {
  boardChanges(
    boardId: string,
    options?: BoardChangesOptions,
  ): AsyncIterable<BoardChange, void, undefined>;
  me?: () => Promise<{ id: string } | null>;
}

/**
 * What a live binding does with a change:
 * - `data`: writes the resources the change carries (`BoardChange.changed`, as the
 *   commit left them) into the cache and splices cards into and out of cached
 *   `Column.cards` pages by rank and `Column.archivedCards` lists; refetches only what
 *   it cannot update that way;
 * - `refetch`: invalidates what the change names and refetches the active queries
 *   that read it (one request per query per change), ignoring the carried data.
 */
export type LiveMode = 'data' | 'refetch';

/** How a live binding follows a board. */
export interface LiveBoardOptions {
  /** @default 'data' */
  mode?: LiveMode;
  /** Resume after this cursor (one `LiveBoard.cursor` gave earlier). Absent: from now on. */
  after?: string | null;
  /** Aborting it stops the binding, like `LiveBoard.stop()`. */
  signal?: AbortSignal;
  /**
   * `refetch` mode only. The viewer's user ID. Absent: asked with `source.me()` when
   * the source has it, once per source; `null`: no change counts as the viewer's own.
   */
  viewerId?: string | null;
  /**
   * `refetch` mode only: how long a change made by the viewer waits before it is
   * applied, so that the result of the viewer's own mutation (sent over HTTP, and
   * racing the change over the websocket) is in the cache first and the change finds
   * nothing stale. Changes by others are applied at once. In `data` mode every change
   * applies at once: the mutation's result and the change carry the same versions, and
   * a write never replaces a newer version with an older one. @default 250
   */
  ownChangeGraceMs?: number;
  /** Told about each applied batch of changes: how many queries it refetched. */
  onApplied?: (applied: AppliedChanges) => void;
  /**
   * Told when applying a change failed (e.g. a refetch failed): the binding goes on
   * with the next one. @default console.error
   */
  onError?: (error: unknown) => void;
  /**
   * Told first when the viewer loses access to the board (an owner removed them, they
   * left): before the binding clears the board from the cache and `done` rejects with
   * the same error. A page can leave the board here, before its queries read null.
   */
  onAccessEnded?: (error: BoardAccessEndedError) => void;
}

/** What one batch of changes did to the cache. */
export interface AppliedChanges {
  changes: readonly BoardChange[];
  /** Invalidations whose resource the cache held at an older version (or without one). */
  stale: readonly Invalidation[];
  /**
   * Active queries refetched for this batch (one request each); undefined where the
   * cache refetches by itself and does not say (urql's Graphcache).
   */
  refetched: number | undefined;
  /** True when a `resyncRequired` change made the binding refetch everything of the board. */
  resynced: boolean;
}

/** A running live binding. */
export interface LiveBoard {
  /**
   * Resolves once the subscription is started from a known cursor: a query sent after
   * it misses no change (the subscription replays every change after that cursor; a
   * change the query already shows is written again, harmlessly). Rejects like `done`
   * when the binding ends first.
   */
  readonly ready: Promise<void>;
  /** The cursor of the last change applied; keep it to resume with `after`. */
  readonly cursor: string | null;
  /**
   * Resolves when every change received so far has been applied and its refetches
   * have settled.
   */
  idle(): Promise<void>;
  /** Stops following the board; resolves once the socket is closed. */
  stop(): Promise<void>;
  /**
   * Settles when the binding ends: resolves after `stop()` or an abort, rejects with
   * the `CorkboardRequestError` that ended the subscription. When the viewer lost access
   * to the board (removed, left), it rejects with a `BoardAccessEndedError` saying why,
   * once the board, its columns and its cards are cleared from the cache.
   */
  readonly done: Promise<void>;
}

/**
 * The invalidations of several changes as one list: one entry per resource, with
 * the union of the fields and the highest version.
 */
export function mergeInvalidations(changes: readonly BoardChange[]): Invalidation[] {
  const merged = new Map<string, Invalidation>();
  for (const change of changes) {
    for (const invalidation of change.invalidated) mergeInvalidation(merged, invalidation);
  }
  return [...merged.values()];
}

/**
 * Whether a cached resource is older than an invalidation: true when the cache has
 * no version for it (a resource it does not hold makes no query stale, and
 * invalidating it is a no-op), false when it already holds that version or a later
 * one, as after the viewer's own mutation or a refetch that already saw the change.
 */
export const isStale = (cachedVersion: unknown, invalidation: Invalidation): boolean =>
  typeof cachedVersion !== 'number' || cachedVersion < invalidation.version;

/** The viewer of each source, asked once per source (`refetch` mode). */
const viewers = new WeakMap<object, Promise<string | null>>();

function viewerOf(source: LiveBoardSource, onError: (error: unknown) => void) {
  let viewer = viewers.get(source);
  if (!viewer) {
    viewer = source.me
      ? source.me().then(
          (me) => me?.id ?? null,
          (error: unknown) => {
            onError(error);
            viewers.delete(source);
            return null;
          },
        )
      : Promise.resolve(null);
    viewers.set(source, viewer);
  }
  return viewer;
}

/**
 * Whether `error` is the server's refusal of a replay while too many run: a
 * `CorkboardRequestError`, Apollo's `CombinedGraphQLErrors`, urql's `CombinedError`
 * or a plain list of GraphQL errors, every one of them `TOO_MANY_REPLAYS`.
 */
export function isReplayLimit(error: unknown): boolean {
  const holder = error as { errors?: unknown; graphQLErrors?: unknown } | null | undefined;
  const errors = Array.isArray(error) ? error : (holder?.graphQLErrors ?? holder?.errors);
  return (
    Array.isArray(errors) &&
    errors.length > 0 &&
    errors.every(
      (e) =>
        (e as { extensions?: { code?: unknown } } | null)?.extensions?.code ===
        LiveErrorCode.TooManyReplays,
    )
  );
}

/**
 * The pause before subscribing again after the `n`th refused replay in a row:
 * exponential from 100 ms to 5 s, with jitter, so that clients refused together
 * (e.g. all reconnecting after a restart) do not come back together.
 */
export const replayRetryDelayMs = (n: number) =>
  Math.min(5_000, 100 * 2 ** (n - 1)) * (0.5 + Math.random() / 2);

/**
 * Whether `cursor` is at or before `last`: a change the binding already applied, sent
 * again by a transport that resubscribed with the cursor it started from (graphql-ws's
 * own retry does).
 */
const seenAlready = (cursor: string, last: string | null) =>
  last !== null && /^\d+$/.test(cursor) && /^\d+$/.test(last) && BigInt(cursor) <= BigInt(last);

/** Resolves after `ms`, or at once when `signal` aborts. */
const pause = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (ms <= 0 || signal.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });

/**
 * Follows a board's changes and hands them to `apply` in commit order, one batch
 * at a time: changes that arrive while a batch is being applied (its refetches in
 * flight) are applied together next, so a burst costs one refetch per query, and a
 * refetch never races an older one. The viewer's own changes wait
 * `ownChangeGraceMs` after their arrival first.
 *
 * Shared by the Apollo and urql bindings; `apply` is what differs.
 */
export function startLiveBoard(
  source: LiveBoardSource,
  boardId: string,
  options: LiveBoardOptions,
  apply: (changes: BoardChange[]) => Promise<Omit<AppliedChanges, 'changes'>>,
  /** Where to start when `options.after` is absent (e.g. the server's `changeHead`). */
  startCursor?: () => Promise<string | null>,
  /**
   * Clears the board from the cache: run when the subscription ends because the viewer
   * lost access, after the last batch was applied and before `done` rejects.
   */
  forgetBoard?: () => void | Promise<void>,
): LiveBoard {
  const controller = new AbortController();
  const { signal } = controller;
  const stopOnAbort = () => controller.abort();
  options.signal?.addEventListener('abort', stopOnAbort, { once: true });
  if (options.signal?.aborted) controller.abort();
  const refetchMode = options.mode === 'refetch';
  const graceMs = refetchMode ? (options.ownChangeGraceMs ?? 250) : 0;
  const onError = options.onError ?? ((error: unknown) => console.error(error));

  const viewerId: Promise<string | null> = !refetchMode
    ? Promise.resolve(null)
    : options.viewerId !== undefined
      ? Promise.resolve(options.viewerId)
      : viewerOf(source, onError);
  let markReady!: () => void;
  let failReady!: (error: unknown) => void;
  const ready = new Promise<void>((resolve, reject) => {
    markReady = resolve;
    failReady = reject;
  });
  ready.catch(() => {});

  let cursor = options.after ?? null;
  const queue: { change: BoardChange; receivedAt: number }[] = [];
  /** The drain in progress, if any (an object, so closures and the `finally` below agree on its type). */
  const state: { applying: Promise<void> | null } = { applying: null };
  const waiters: (() => void)[] = [];

  async function drain(): Promise<void> {
    const viewer = await viewerId;
    const releasedAt = (entry: { change: BoardChange; receivedAt: number }) =>
      viewer !== null && entry.change.actor?.id === viewer ? entry.receivedAt + graceMs : 0;
    while (queue.length > 0 && !signal.aborted) {
      await pause(releasedAt(queue[0]!) - Date.now(), signal);
      if (signal.aborted) break;
      // The changes whose time has come, in order: a later own change whose mutation
      // may still be in flight waits for the next batch.
      const now = Date.now();
      let count = 1;
      while (count < queue.length && releasedAt(queue[count]!) <= now) count++;
      const changes = queue.splice(0, count).map((entry) => entry.change);
      try {
        const outcome = await apply(changes);
        options.onApplied?.({ changes, ...outcome });
      } catch (error) {
        onError(error);
      }
      cursor = changes.at(-1)!.cursor;
    }
  }

  function kick() {
    state.applying ??= drain().finally(() => {
      state.applying = null;
      if (queue.length > 0 && !signal.aborted) kick();
      else waiters.splice(0).forEach((wake) => wake());
    });
  }

  /** The cursor of the last change received (applied or queued). */
  let received = cursor;
  const done = (async () => {
    try {
      if (cursor === null && startCursor) cursor = received = await startCursor();
      for (let refused = 0; !signal.aborted;) {
        const changes = source.boardChanges(boardId, { after: received, signal });
        markReady();
        try {
          for await (const change of changes) {
            refused = 0;
            if (!change.resyncRequired && seenAlready(change.cursor, received)) continue;
            received = change.cursor;
            queue.push({ change, receivedAt: Date.now() });
            kick();
          }
          break;
        } catch (error) {
          // Too many replays run at once on the server: subscribe again shortly, from
          // the last change received (nothing is lost meanwhile: the log keeps it).
          if (signal.aborted || !isReplayLimit(error)) throw error;
          await pause(replayRetryDelayMs(++refused), signal);
        }
      }
    } catch (error) {
      const ended = accessEndedOf(error, boardId);
      if (ended) {
        // Nothing more is applied once the board is forgotten.
        controller.abort();
        await state.applying;
        try {
          options.onAccessEnded?.(ended);
        } catch (callbackError) {
          onError(callbackError);
        }
        if (forgetBoard) await Promise.resolve().then(forgetBoard).catch(onError);
      }
      failReady(ended ?? error);
      throw ended ?? error;
    } finally {
      markReady();
      controller.abort();
      options.signal?.removeEventListener('abort', stopOnAbort);
      await state.applying;
    }
  })();
  // `done` is observed through the returned object; an unobserved failure is still reported.
  done.catch(onError);

  return {
    get cursor() {
      return cursor;
    },
    ready,
    idle: () =>
      state.applying === null && queue.length === 0
        ? Promise.resolve()
        : new Promise<void>((resolve) => waiters.push(resolve)),
    async stop() {
      controller.abort();
      await done.catch(() => {});
    },
    done,
  };
}
