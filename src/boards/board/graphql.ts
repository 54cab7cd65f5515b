import { builder } from '../../graphql/builder.js';
import { commandPayload } from '../../graphql/commandMutation.js';
import { inputEnum } from '../../graphql/commandInputs.js';
import { rawIdOf, toGlobalId } from '../../graphql/globalIds.js';
import {
  ColumnRef,
  UserRef,
  BoardRef,
  boardResourceNode,
  detachedFromBoard,
  viewerIdOf,
} from '../../graphql/refs.js';
import { VIEWER_DEPENDENT } from '../../graphql/sharedSubscriptions.js';
import type { UserDoc } from '../readModel.js';
import { boardRoles } from './access.js';
import { removeMember } from './commands.js';
import type { MembershipDoc } from './readModel.js';

const BoardRoleRef = inputEnum(
  'BoardRole',
  boardRoles,
  'What a member may do on a board. OWNER: everything, also rename the board, manage its members and archive it. EDITOR: read, subscribe and change columns and cards. VIEWER: read and subscribe only (every write answers ForbiddenError).',
);

const BoardMembershipRef = builder
  .objectRef<MembershipDoc & { user: UserDoc }>('BoardMembership')
  .implement({
    description: 'A member of a board, with their role.',
    fields: (t) => ({
      user: t.field({ type: UserRef, resolve: (m) => m.user }),
      role: t.field({ type: BoardRoleRef, resolve: (m) => m.role }),
      since: t.field({
        type: 'DateTime',
        description: 'When they became a member.',
        resolve: (m) => m.since,
      }),
    }),
  });

builder.node(BoardRef, {
  description: 'A planning board: ordered columns of ordered cards, shared by its members.',
  ...boardResourceNode('Board'),
  fields: (t) => ({
    name: t.exposeString('name'),
    members: t.field({
      type: [UserRef],
      resolve: async (board, _args, ctx) =>
        (await ctx.reads.users.loadMany(board.members)).filter(
          (u): u is UserDoc => u !== null && !(u instanceof Error),
        ),
    }),
    memberships: t.field({
      type: [BoardMembershipRef],
      description: 'The members with their roles, in the order they joined.',
      resolve: async (board, _args, ctx) => {
        const users = await ctx.reads.users.loadMany(board.memberships.map((m) => m.userId));
        return board.memberships.flatMap((m, i) => {
          const user = users[i];
          return user && !(user instanceof Error) ? [{ ...m, user }] : [];
        });
      },
    }),
    viewerRole: t.field({
      type: BoardRoleRef,
      nullable: true,
      description: "The caller's role on the board; null when they are not a member.",
      // Resolved per subscriber: a selection with it is executed for its subscriber alone.
      extensions: { [VIEWER_DEPENDENT]: true },
      // As access is decided (on the event store), not as the read model lists it.
      resolve: (board, _args, ctx) => ctx.reads.roleOf(board._id, viewerIdOf(ctx)),
    }),
    columns: t.field({
      type: [ColumnRef],
      description: 'In board order.',
      resolve: async (board, _args, ctx) =>
        (await detachedFromBoard(ctx, board, board._id)) ? [] : ctx.reads.columnsOf(board),
    }),
    archived: t.boolean({
      description:
        'An archived board is read-only (every write answers BoardArchivedError) and left out of `boards` unless `includeArchived: true`.',
      resolve: (board) => board.archived === true,
    }),
    createdAt: t.field({ type: 'DateTime', resolve: (board) => board.createdAt }),
    updatedAt: t.field({ type: 'DateTime', resolve: (board) => board.updatedAt }),
  }),
});

builder.queryFields((t) => ({
  board: t.field({
    type: BoardRef,
    nullable: true,
    description: 'A board the caller is a member of; null otherwise (whether or not it exists).',
    args: { id: t.arg.id({ required: true }) },
    resolve: (_root, { id }, ctx) => {
      const raw = rawIdOf(id, 'Board');
      return raw ? ctx.reads.board(raw, viewerIdOf(ctx)) : null;
    },
  }),
  boards: t.field({
    type: [BoardRef],
    description:
      'Boards the caller is a member of, newest first. Empty when anonymous. Archived boards only with `includeArchived: true`.',
    args: { includeArchived: t.arg.boolean({ required: true, defaultValue: false }) },
    resolve: async (_root, { includeArchived }, ctx) => {
      if (!ctx.viewer) return [];
      const boards = await ctx.reads.boardsOf(ctx.viewer._id);
      return includeArchived ? boards : boards.filter((board) => board.archived !== true);
    },
  }),
}));

commandPayload(removeMember, {
  resources: {},
  fields: (t) => ({
    boardId: t.id({ resolve: (value) => toGlobalId('Board', value.board.id) }),
    version: t.int({
      description: "The board's version after the removal.",
      resolve: (value) => value.board.version,
    }),
    board: t.field({
      type: BoardRef,
      nullable: true,
      description: 'The board as the caller now sees it: null when the caller left it.',
      resolve: (value, _args, ctx) => ctx.reads.board(value.board.id, viewerIdOf(ctx)),
    }),
  }),
});
