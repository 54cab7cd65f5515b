import DataLoader from 'dataloader';
import type { CarriedDoc, ReadDoc, ReadView } from '../projector/types.js';
import { runQuery, type ReadModel, type ReadQuery } from '../projector/readModel.js';
import { BoardAction, mayTake, type BoardRole } from './board/access.js';
import {
  boardReadModel,
  cardReadModel,
  Collections,
  sessionReadModel,
  userReadModel,
  type BoardDoc,
  type CardDoc,
  type ColumnDoc,
  type SessionDoc,
  type UserDoc,
} from './readModel.js';

/** A value at once, or a promise of it when it had to be read first. */
export type MaybePromise<T> = T | Promise<T>;

/** `next(value)`, at once when `value` is not a promise. */
export const andThen = <T, R>(
  value: MaybePromise<T>,
  next: (value: T) => MaybePromise<R>,
): MaybePromise<R> => (value instanceof Promise ? value.then(next) : next(value));

/**
 * Documents of one collection by id, batched (a DataLoader), that answers at once, without
 * a promise, for the ids it has already read: a board's 200 cards all asking for one of
 * its 5 columns cost 200 promise chains otherwise. What it answers at once is exactly
 * what its loader would resolve with (read by the loader's own batch, or primed while
 * the loader had not asked for the id yet).
 */
class DocsById<T extends ReadDoc> {
  readonly #read = new Map<string, T | null>();
  /** The loader's cache: ids it has read or is reading. */
  readonly #asked = new Map<string, Promise<T | null>>();
  readonly loader: DataLoader<string, T | null>;

  constructor(view: ReadView, name: string, signal: AbortSignal) {
    this.loader = new DataLoader<string, T | null>(
      async (ids) => {
        const docs = await view.collection<T>(name).getMany(ids, { signal });
        ids.forEach((id, i) => this.#read.set(id, docs[i] ?? null));
        return docs;
      },
      { cacheMap: this.#asked },
    );
  }

  load(id: string): MaybePromise<T | null> {
    const doc = this.#read.get(id);
    return doc !== undefined ? doc : this.loader.load(id);
  }

  /** Serves `doc` for `id` unless the loader has read (or is reading) it already. */
  prime(id: string, doc: T): void {
    if (this.#asked.has(id)) return;
    this.loader.prime(id, doc);
    this.#read.set(id, doc);
  }
}

/** Who may read a board: `BoardAccessView`, which decides on the event store. */
export interface BoardAccessSource {
  /** `userId`'s role on `boardId`, null for a non-member. */
  roleOf(boardId: string, userId: string, signal?: AbortSignal): MaybePromise<BoardRole | null>;
}

/** Roles as the read model's board document lists them: for reads without an event store. */
const rolesOfDocs = (docs: DocsById<BoardDoc>): BoardAccessSource => ({
  roleOf: (boardId, userId) =>
    andThen(
      docs.load(boardId),
      (board) => board?.memberships.find((m) => m.userId === userId)?.role ?? null,
    ),
});

/**
 * The read side of one request: every read goes to one read model generation
 * (pinned when the request starts) and is batched per collection, so a board
 * with any number of columns and cards costs a constant number of store reads.
 * Membership is enforced here, decided by the `access` source (the app's
 * `BoardAccessView`, on the event store): what a viewer may not see reads as absent.
 */
export class BoardReads {
  // Loaders are made on first use: a subscription's context keeps its BoardReads for
  // as long as the socket lives, mostly without reading anything.
  #usersById: DocsById<UserDoc> | undefined;
  #boardsById: DocsById<BoardDoc> | undefined;
  #columnsById: DocsById<ColumnDoc> | undefined;
  #cardsById: DocsById<CardDoc> | undefined;
  #liveCardsOfBoard: DataLoader<string, CardDoc[]> | undefined;

  readonly #boardScope: string | null;
  readonly #access: BoardAccessSource | null;
  /** Access decided by this request, by board and viewer: an answer, or its promise. */
  readonly #roles = new Map<string, MaybePromise<BoardRole | null>>();

  /**
   * @param options.boardScope A board every reader of these reads is a member of (a
   * shared subscription execution runs without a viewer, for members of one board
   * only): that board and what is in it read as visible whatever `viewerId` is given.
   * @param options.access Who may read a board. @default the read model's member lists
   * (only for tools and tests without an event store: they lag behind removals)
   */
  constructor(
    private readonly view: ReadView,
    private readonly signal: AbortSignal,
    options: { boardScope?: string; access?: BoardAccessSource } = {},
  ) {
    this.#boardScope = options.boardScope ?? null;
    this.#access = options.access ?? null;
  }

  /**
   * `viewerId`'s role on the board (null for a non-member or nobody), as reads decide it:
   * decided once per request, so that a removal landing midway cannot make a request
   * that found the board readable find its card's column or board unreadable.
   */
  roleOf(boardId: string, viewerId: string | null): MaybePromise<BoardRole | null> {
    if (viewerId === null) return null;
    const key = `${boardId} ${viewerId}`;
    const decided = this.#roles.get(key);
    if (decided !== undefined) return decided;
    const access = this.#access ?? rolesOfDocs(this.#boards);
    const role = access.roleOf(boardId, viewerId, this.signal);
    this.#roles.set(key, role);
    if (role instanceof Promise) {
      role.then(
        (answer) => this.#roles.set(key, answer),
        () => this.#roles.delete(key),
      );
    }
    return role;
  }

  /**
   * Serves these documents instead of reading them: a commit's documents as it left
   * them, so that one execution for that commit sees them, not a later state. Only
   * Board, Column and Card documents are taken; documents already loaded stay.
   */
  prime(docs: readonly CarriedDoc[]): void {
    for (const { collection, doc } of docs) {
      switch (collection) {
        case Collections.Boards:
          this.#boards.prime(doc._id, doc as BoardDoc);
          break;
        case Collections.Columns:
          this.#columns.prime(doc._id, doc as ColumnDoc);
          break;
        case Collections.Cards:
          this.#cards.prime(doc._id, doc as CardDoc);
          break;
        default:
          break;
      }
    }
  }

  get #users() {
    return (this.#usersById ??= new DocsById(this.view, Collections.Users, this.signal));
  }

  get #boards() {
    return (this.#boardsById ??= new DocsById(this.view, Collections.Boards, this.signal));
  }

  get #columns() {
    return (this.#columnsById ??= new DocsById(this.view, Collections.Columns, this.signal));
  }

  get #cards() {
    return (this.#cardsById ??= new DocsById(this.view, Collections.Cards, this.signal));
  }

  /** Users by id, batched. */
  get users(): DataLoader<string, UserDoc | null> {
    return this.#users.loader;
  }

  /** A user by id: at once when already read by this request. */
  user(userId: string): MaybePromise<UserDoc | null> {
    return this.#users.load(userId);
  }

  /** Live cards of a board, in rank order: one query per board for all its columns. */
  get #cardsOfBoard() {
    const { view, signal } = this;
    return (this.#liveCardsOfBoard ??= new DataLoader<string, CardDoc[]>(
      (boardIds) =>
        Promise.all(
          boardIds.map((boardId) =>
            runQuery(view, cardReadModel, cardReadModel.queries.liveOfBoard, boardId, signal),
          ),
        ),
      { batch: false },
    ));
  }

  /**
   * Runs one of a read model's named queries on this request's generation, so a resolver
   * reads any read model (`ctx.reads.query(model, model.queries.x, arg)`) without a method here.
   */
  query<D extends ReadDoc, A>(model: ReadModel<D>, query: ReadQuery<A>, arg: A): Promise<D[]> {
    return runQuery(this.view, model, query, arg, this.signal);
  }

  /** The generation this request reads. */
  get generation(): string {
    return this.view.generation;
  }

  /** The user holding the token with this hash, if any. */
  async userByTokenHash(tokenHash: string): Promise<UserDoc | null> {
    const { byTokenHash } = userReadModel.queries;
    const [user] = await runQuery(this.view, userReadModel, byTokenHash, tokenHash, this.signal);
    return user ?? null;
  }

  /** The session of the token with this hash, if any (ended or not). */
  async sessionByTokenHash(tokenHash: string): Promise<SessionDoc | null> {
    const { byTokenHash } = sessionReadModel.queries;
    const [session] = await runQuery(
      this.view,
      sessionReadModel,
      byTokenHash,
      tokenHash,
      this.signal,
    );
    return session ?? null;
  }

  /** `userId`'s sessions that have not ended (some may have expired), newest first. */
  async openSessionsOf(userId: string): Promise<SessionDoc[]> {
    const { openOf } = sessionReadModel.queries;
    return runQuery(this.view, sessionReadModel, openOf, userId, this.signal);
  }

  async userByUsername(username: string): Promise<UserDoc | null> {
    const { byUsername } = userReadModel.queries;
    const [user] = await runQuery(this.view, userReadModel, byUsername, username, this.signal);
    return user ?? null;
  }

  /**
   * The board if `viewerId` is a member, else null (whether or not it exists); at once
   * when this request has read it already (so are `column` and `card`).
   */
  board(boardId: string, viewerId: string | null): MaybePromise<BoardDoc | null> {
    if (boardId === this.#boardScope) return this.#boards.load(boardId);
    // Access first: nothing of a board is read for whom may not read it.
    return andThen(this.roleOf(boardId, viewerId), (role) =>
      role !== null && mayTake(role, BoardAction.Read) ? this.#boards.load(boardId) : null,
    );
  }

  /**
   * Boards `userId` is a member of, newest first: those the read model lists, each
   * checked like {@link board} (a board whose member list lags behind a removal is left out).
   */
  async boardsOf(userId: string): Promise<BoardDoc[]> {
    const { ofMember } = boardReadModel.queries;
    const listed = await runQuery(this.view, boardReadModel, ofMember, userId, this.signal);
    for (const board of listed) this.#boards.prime(board._id, board);
    const roles = await Promise.all(listed.map(async (board) => this.roleOf(board._id, userId)));
    return listed.filter((_, i) => {
      const role = roles[i];
      return role != null && mayTake(role, BoardAction.Read);
    });
  }

  column(columnId: string, viewerId: string | null): MaybePromise<ColumnDoc | null> {
    return andThen(this.#columns.load(columnId), (column) =>
      column
        ? andThen(this.board(column.boardId, viewerId), (board) => (board ? column : null))
        : null,
    );
  }

  /** Columns of a board the viewer may see, in board order. */
  async columnsOf(board: BoardDoc): Promise<ColumnDoc[]> {
    const columns = await this.#columns.loader.loadMany(board.columns.map((c) => c.id));
    return columns.filter((c): c is ColumnDoc => c !== null && !(c instanceof Error));
  }

  card(cardId: string, viewerId: string | null): MaybePromise<CardDoc | null> {
    return andThen(this.#cards.load(cardId), (card) =>
      card ? andThen(this.board(card.boardId, viewerId), (board) => (board ? card : null)) : null,
    );
  }

  /** Live cards of a column in rank order. */
  async cardsOf(column: ColumnDoc): Promise<CardDoc[]> {
    const cards = await this.#cardsOfBoard.load(column.boardId);
    return cards.filter((c) => c.columnId === column._id);
  }
}
