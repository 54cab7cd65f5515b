import { builder } from '../../graphql/builder.js';
import { commandMutation } from '../../graphql/commandMutation.js';
import { rawIdOf } from '../../graphql/globalIds.js';
import { ColumnRef, UserRef, BoardRef, brandable } from '../../graphql/refs.js';
import { VersionedInterface } from '../../graphql/versioned.js';
import type { UserDoc } from '../readModel.js';
import {
  addColumn,
  addMember,
  archiveBoard,
  createBoard,
  moveColumn,
  renameBoard,
  restoreBoard,
} from './commands.js';

builder.node(BoardRef, {
  description: 'A planning board: ordered columns of ordered cards, shared by its members.',
  interfaces: [VersionedInterface],
  id: { resolve: (board) => board._id },
  loadMany: (ids, ctx) =>
    brandable(Promise.all(ids.map(async (id) => ctx.reads.board(id, ctx.viewer?._id ?? null)))),
  fields: (t) => ({
    version: t.exposeInt('version'),
    name: t.exposeString('name'),
    members: t.field({
      type: [UserRef],
      resolve: async (board, _args, ctx) =>
        (await ctx.reads.users.loadMany(board.members)).filter(
          (u): u is UserDoc => u !== null && !(u instanceof Error),
        ),
    }),
    columns: t.field({
      type: [ColumnRef],
      description: 'In board order.',
      resolve: (board, _args, ctx) => ctx.reads.columnsOf(board),
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
      return raw ? ctx.reads.board(raw, ctx.viewer?._id ?? null) : null;
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

commandMutation(createBoard, { resources: { board: BoardRef } });
commandMutation(renameBoard, { resources: { board: BoardRef } });
commandMutation(addMember, { resources: { board: BoardRef } });
commandMutation(addColumn, { resources: { column: ColumnRef, board: BoardRef } });
commandMutation(moveColumn, { resources: { board: BoardRef } });
commandMutation(archiveBoard, { resources: { board: BoardRef } });
commandMutation(restoreBoard, { resources: { board: BoardRef } });
