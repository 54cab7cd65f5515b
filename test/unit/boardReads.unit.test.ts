import { executeSync, parse, type GraphQLObjectType, type GraphQLResolveInfo } from 'graphql';
import { describe, expect, it } from 'vitest';
import {
  Collections,
  type BoardDoc,
  type CardDoc,
  type ColumnDoc,
  type UserDoc,
} from '../../src/boards/readModel.js';
import { BoardRole } from '../../src/boards/board/access.js';
import { newCardDefaults } from '../../src/boards/card/events.js';
import { toCardDoc } from '../../src/boards/card/readModel.js';
import { BoardReads } from '../../src/boards/reads.js';
import type { GraphQLContext } from '../../src/graphql/context.js';
import { toGlobalId } from '../../src/graphql/globalIds.js';
import { buildSchema } from '../../src/graphql/schema.js';
import type { ReadDoc, ReadView } from '../../src/projector/types.js';

const at = new Date('2026-01-01T00:00:00Z');
const board = (id: string, members: string[]): BoardDoc => ({
  _id: id,
  name: id,
  ownerId: members[0]!,
  members,
  memberships: members.map((userId, i) => ({
    userId,
    role: i === 0 ? BoardRole.Owner : BoardRole.Editor,
    since: at,
  })),
  columns: [{ id: `${id}-col`, rank: 'a' }],
  archived: false,
  version: 1,
  createdAt: at,
  updatedAt: at,
});
const column = (id: string, boardId: string): ColumnDoc => ({
  _id: id,
  boardId,
  name: id,
  wipLimit: null,
  archived: false,
  cardCount: 1,
  version: 1,
  createdAt: at,
  updatedAt: at,
});
const card = (id: string, columnId: string, boardId: string): CardDoc =>
  toCardDoc(
    {
      status: 'live',
      cardId: id,
      boardId,
      columnId,
      title: id,
      description: '',
      rank: 'a',
      ...newCardDefaults,
    },
    { version: 1, createdAt: at, updatedAt: at },
  );
const user: UserDoc = {
  _id: 'ada',
  username: 'ada',
  usernameKey: 'ada',
  displayName: 'Ada',
  version: 1,
  createdAt: at,
};

/**
 * A read view over fixed documents that counts its reads and can hold them back
 * (`gate`), so a test decides when a read lands.
 */
function fakeView(docs: Record<string, ReadDoc[]>) {
  let reads = 0;
  let gate: Promise<void> = Promise.resolve();
  const view: ReadView = {
    generation: 'g1',
    collection<T extends ReadDoc>(name: string) {
      const byId = new Map((docs[name] ?? []).map((d) => [d._id, d as T]));
      return {
        async getMany(ids: readonly string[]) {
          reads += 1;
          await gate;
          return ids.map((id) => byId.get(id) ?? null);
        },
      } as never;
    },
  };
  return {
    view,
    reads: () => reads,
    hold() {
      let open!: () => void;
      gate = new Promise((resolve) => (open = resolve));
      return () => {
        gate = Promise.resolve();
        open();
      };
    },
  };
}

const signal = new AbortController().signal;
const isPromise = (value: unknown) => value instanceof Promise;

function setup() {
  const store = fakeView({
    [Collections.Users]: [user],
    [Collections.Boards]: [board('b1', ['ada']), board('b2', ['bob'])],
    [Collections.Columns]: [column('b1-col', 'b1'), column('b2-col', 'b2')],
    [Collections.Cards]: [card('c1', 'b1-col', 'b1'), card('c2', 'b2-col', 'b2')],
  });
  return { store, reads: new BoardReads(store.view, signal) };
}

describe('BoardReads', () => {
  it('answers at once, with the same membership checks, what the request has read already', async () => {
    const { store, reads } = setup();
    // First reads go to the store.
    expect(isPromise(reads.column('b1-col', 'ada'))).toBe(true);
    expect(await reads.column('b1-col', 'ada')).toMatchObject({ _id: 'b1-col' });
    expect(await reads.card('c2', 'ada')).toBeNull();
    expect(await reads.user('ada')).toMatchObject({ _id: 'ada' });
    const readsSoFar = store.reads();

    // Then the same questions are answered without a promise and without a store read...
    expect(reads.board('b1', 'ada')).toMatchObject({ _id: 'b1' });
    expect(reads.column('b1-col', 'ada')).toMatchObject({ _id: 'b1-col' });
    expect(reads.user('ada')).toMatchObject({ _id: 'ada' });
    // ...and what the viewer may not see still reads as absent, also at once.
    expect(reads.board('b1', 'bob')).toBeNull();
    expect(reads.board('b1', null)).toBeNull();
    expect(reads.column('b1-col', 'mallory')).toBeNull();
    expect(reads.card('c2', 'ada')).toBeNull();
    expect(reads.card('c2', 'bob')).toMatchObject({ _id: 'c2' });
    expect(store.reads()).toBe(readsSoFar);
    // A document that does not exist is remembered as absent.
    expect(await reads.card('nope', 'ada')).toBeNull();
    expect(reads.card('nope', 'ada')).toBeNull();
  });

  it('answers a column of the board the request listed the columns of at once', async () => {
    const { reads } = setup();
    const b1 = (await reads.board('b1', 'ada'))!;
    await reads.columnsOf(b1);
    // What a board query's cards ask for their `column`.
    expect(isPromise(reads.column('b1-col', 'ada'))).toBe(false);
    expect(reads.column('b1-col', 'ada')).toMatchObject({ _id: 'b1-col' });
  });

  it('serves a primed document only when nothing was read for it, so answers never change within a request', async () => {
    const { store, reads } = setup();
    const primed = { ...board('b1', ['ada', 'bob']), name: 'primed' };

    // Read before the prime: the read's document stays.
    await reads.board('b1', 'ada');
    reads.prime([{ collection: Collections.Boards, doc: primed }]);
    expect(reads.board('b1', 'ada')).toMatchObject({ name: 'b1' });
    expect(reads.board('b1', 'bob')).toBeNull();

    // Being read while primed: the read's document, both at once and through the loader.
    const second = new BoardReads(store.view, signal);
    const release = store.hold();
    const pending = second.board('b1', 'ada');
    second.prime([{ collection: Collections.Boards, doc: primed }]);
    release();
    expect(await pending).toMatchObject({ name: 'b1' });
    expect(second.board('b1', 'ada')).toMatchObject({ name: 'b1' });

    // Primed before any read: the primed document, at once, with no store read.
    const third = new BoardReads(store.view, signal);
    third.prime([{ collection: Collections.Boards, doc: primed }]);
    const before = store.reads();
    expect(third.board('b1', 'bob')).toMatchObject({ name: 'primed' });
    expect(store.reads()).toBe(before);
  });
});

describe('access within one request', () => {
  it('stays as the request first found it, so a removal landing midway leaves no card without its board', async () => {
    const { store } = setup();
    // Ada is an editor of b1 until the removal, which lands after the request's first read.
    let removed = false;
    const access = {
      roleOf: (boardId: string, userId: string) =>
        !removed && boardId === 'b1' && userId === 'ada' ? BoardRole.Editor : null,
    };
    const reads = new BoardReads(store.view, signal, { access });
    expect(await reads.card('c1', 'ada')).toMatchObject({ _id: 'c1' });
    removed = true;
    // The same request reads the card's column and board: still readable, as it found them.
    expect(await reads.column('b1-col', 'ada')).toMatchObject({ _id: 'b1-col' });
    expect(await reads.board('b1', 'ada')).toMatchObject({ _id: 'b1' });
    // The next request decides afresh: the removal holds.
    const next = new BoardReads(store.view, signal, { access });
    expect(await next.board('b1', 'ada')).toBeNull();
    expect(await next.card('c1', 'ada')).toBeNull();
  });
});

describe('fields of what a request has read', () => {
  const schema = buildSchema();
  const field = (type: string, name: string) =>
    (schema.getType(type) as GraphQLObjectType).getFields()[name]!.resolve!;
  const info = {} as GraphQLResolveInfo;
  const contextOf = (reads: BoardReads) =>
    ({ reads, viewer: user, signal }) as unknown as GraphQLContext;

  it('resolve without a promise: every node id, and the board and column of a card once read', async () => {
    const { reads } = setup();
    const ctx = contextOf(reads);
    const c1 = card('c1', 'b1-col', 'b1');
    for (const [type, doc] of [
      ['Card', c1],
      ['Column', column('b1-col', 'b1')],
      ['Board', board('b1', ['ada'])],
      ['User', user],
    ] as const) {
      expect(field(type, 'id')(doc, {}, ctx, info)).toBe(toGlobalId(type, doc._id));
    }
    await reads.column('b1-col', 'ada');
    expect(field('Card', 'column')(c1, {}, ctx, info)).toMatchObject({ _id: 'b1-col' });
    expect(field('Card', 'board')(c1, {}, ctx, info)).toMatchObject({ _id: 'b1' });
    expect(field('Column', 'board')(column('b1-col', 'b1'), {}, ctx, info)).toMatchObject({
      _id: 'b1',
    });
  });

  it('complete a whole query synchronously when its board was read', async () => {
    const { reads } = setup();
    await reads.board('b1', 'ada');
    const result = executeSync({
      schema,
      document: parse(
        `query ($id: ID!) { board(id: $id) { id version name createdAt updatedAt } }`,
      ),
      variableValues: { id: toGlobalId('Board', 'b1') },
      contextValue: contextOf(reads),
    });
    expect(result).toEqual({
      data: {
        board: {
          id: toGlobalId('Board', 'b1'),
          version: 1,
          name: 'b1',
          createdAt: at.toISOString(),
          updatedAt: at.toISOString(),
        },
      },
    });
  });
});
