import DataLoader from 'dataloader';
import type { CarriedDoc, ReadDoc, ReadView } from '../projector/types.js';
import {
  ReadCollection,
  type BoardDoc,
  type CardDoc,
  type ColumnDoc,
  type SessionDoc,
  type UserDoc,
} from './readModel.js';
import { normalizeUsername } from './streams.js';

const byId = <T extends ReadDoc>(view: ReadView, name: string, signal: AbortSignal) =>
  new DataLoader<string, T | null>((ids) => view.collection<T>(name).getMany(ids, { signal }));

/**
 * The read side of one request: every read goes to one read model generation
 * (pinned when the request starts) and is batched per collection, so a board
 * with any number of columns and cards costs a constant number of store reads.
 * Membership is enforced here: what a viewer may not see reads as absent.
 */
export class BoardReads {
  // Loaders are made on first use: a subscription's context keeps its BoardReads for
  // as long as the socket lives, mostly without reading anything.
  #users: DataLoader<string, UserDoc | null> | undefined;
  #boardsById: DataLoader<string, BoardDoc | null> | undefined;
  #columnsById: DataLoader<string, ColumnDoc | null> | undefined;
  #cardsById: DataLoader<string, CardDoc | null> | undefined;
  #liveCardsOfBoard: DataLoader<string, CardDoc[]> | undefined;

  readonly #boardScope: string | null;

  /**
   * @param options.boardScope A board every reader of these reads is a member of (a
   * shared subscription execution runs without a viewer, for members of one board
   * only): that board and what is in it read as visible whatever `viewerId` is given.
   */
  constructor(
    private readonly view: ReadView,
    private readonly signal: AbortSignal,
    options: { boardScope?: string } = {},
  ) {
    this.#boardScope = options.boardScope ?? null;
  }

  /**
   * Serves these documents instead of reading them: a commit's documents as it left
   * them, so that one execution for that commit sees them, not a later state. Only
   * Board, Column and Card documents are taken; documents already loaded stay.
   */
  prime(docs: readonly CarriedDoc[]): void {
    for (const { collection, doc } of docs) {
      switch (collection) {
        case ReadCollection.Boards:
          this.#boards.prime(doc._id, doc as BoardDoc);
          break;
        case ReadCollection.Columns:
          this.#columns.prime(doc._id, doc as ColumnDoc);
          break;
        case ReadCollection.Cards:
          this.#cards.prime(doc._id, doc as CardDoc);
          break;
        default:
          break;
      }
    }
  }

  /** Users by id, batched. */
  get users(): DataLoader<string, UserDoc | null> {
    return (this.#users ??= byId<UserDoc>(this.view, ReadCollection.Users, this.signal));
  }

  get #boards() {
    return (this.#boardsById ??= byId<BoardDoc>(this.view, ReadCollection.Boards, this.signal));
  }

  get #columns() {
    return (this.#columnsById ??= byId<ColumnDoc>(this.view, ReadCollection.Columns, this.signal));
  }

  get #cards() {
    return (this.#cardsById ??= byId<CardDoc>(this.view, ReadCollection.Cards, this.signal));
  }

  /** Live cards of a board, in rank order: one query per board for all its columns. */
  get #cardsOfBoard() {
    const { view, signal } = this;
    return (this.#liveCardsOfBoard ??= new DataLoader<string, CardDoc[]>(
      (boardIds) =>
        Promise.all(
          boardIds.map((boardId) =>
            view
              .collection<CardDoc>(ReadCollection.Cards)
              .find({ boardId, archived: false }, { sort: ['rank', 1], signal }),
          ),
        ),
      { batch: false },
    ));
  }

  /** The generation this request reads. */
  get generation(): string {
    return this.view.generation;
  }

  /** The user holding the token with this hash, if any. */
  async userByTokenHash(tokenHash: string): Promise<UserDoc | null> {
    const [user] = await this.view
      .collection<UserDoc>(ReadCollection.Users)
      .find({ tokenHash }, { limit: 1, signal: this.signal });
    return user ?? null;
  }

  /** The session of the token with this hash, if any (ended or not). */
  async sessionByTokenHash(tokenHash: string): Promise<SessionDoc | null> {
    const [session] = await this.view
      .collection<SessionDoc>(ReadCollection.Sessions)
      .find({ tokenHash }, { limit: 1, signal: this.signal });
    return session ?? null;
  }

  /** `userId`'s sessions that have not ended (some may have expired), newest first. */
  async openSessionsOf(userId: string): Promise<SessionDoc[]> {
    return this.view
      .collection<SessionDoc>(ReadCollection.Sessions)
      .find({ userId, endedAt: null }, { sort: ['startedAt', -1], signal: this.signal });
  }

  async userByUsername(username: string): Promise<UserDoc | null> {
    const [user] = await this.view
      .collection<UserDoc>(ReadCollection.Users)
      .find({ usernameKey: normalizeUsername(username) }, { limit: 1, signal: this.signal });
    return user ?? null;
  }

  /** The board if `viewerId` is a member, else null (whether or not it exists). */
  async board(boardId: string, viewerId: string | null): Promise<BoardDoc | null> {
    const board = await this.#boards.load(boardId);
    if (!board) return null;
    if (board._id === this.#boardScope) return board;
    return viewerId !== null && board.members.includes(viewerId) ? board : null;
  }

  /** Boards `userId` is a member of, newest first. */
  async boardsOf(userId: string): Promise<BoardDoc[]> {
    const boards = await this.view
      .collection<BoardDoc>(ReadCollection.Boards)
      .find({ members: userId }, { sort: ['createdAt', -1], signal: this.signal });
    for (const board of boards) this.#boards.prime(board._id, board);
    return boards;
  }

  async column(columnId: string, viewerId: string | null): Promise<ColumnDoc | null> {
    const column = await this.#columns.load(columnId);
    return column && (await this.board(column.boardId, viewerId)) ? column : null;
  }

  /** Columns of a board the viewer may see, in board order. */
  async columnsOf(board: BoardDoc): Promise<ColumnDoc[]> {
    const columns = await this.#columns.loadMany(board.columns.map((c) => c.id));
    return columns.filter((c): c is ColumnDoc => c !== null && !(c instanceof Error));
  }

  async card(cardId: string, viewerId: string | null): Promise<CardDoc | null> {
    const card = await this.#cards.load(cardId);
    return card && (await this.board(card.boardId, viewerId)) ? card : null;
  }

  /** Live cards of a column in rank order. */
  async cardsOf(column: ColumnDoc): Promise<CardDoc[]> {
    const cards = await this.#cardsOfBoard.load(column.boardId);
    return cards.filter((c) => c.columnId === column._id);
  }
}
