import { builder } from '../../graphql/builder.js';
import { commandPayload } from '../../graphql/commandMutation.js';
import { CardRef, UserRef, boardResourceNode, holderField } from '../../graphql/refs.js';
import type { CardDoc } from '../readModel.js';
import { editCard, moveCard } from './commands.js';

builder.node(CardRef, {
  description: 'A card on a board, in exactly one column.',
  ...boardResourceNode('Card'),
  fields: (t) => ({
    board: t.field(holderField('Board', (card: CardDoc) => card.boardId)),
    column: t.field(holderField('Column', (card: CardDoc) => card.columnId)),
    title: t.exposeString('title'),
    description: t.exposeString('description'),
    assignee: t.field({
      type: UserRef,
      nullable: true,
      resolve: (card, _args, ctx) => (card.assigneeId ? ctx.reads.user(card.assigneeId) : null),
    }),
    labels: t.exposeStringList('labels'),
    done: t.exposeBoolean('done'),
    archived: t.exposeBoolean('archived'),
    rank: t.exposeString('rank', {
      description: 'Sort key among siblings; compares as a plain string.',
    }),
  }),
});

commandPayload(moveCard, { resources: { card: 'card', from: 'column', to: 'column' } });
commandPayload(editCard, { resources: { card: 'card' } });
