import { builder } from '../../graphql/builder.js';
import { commandPayload } from '../../graphql/commandMutation.js';
import { UserRef, brandable } from '../../graphql/refs.js';
import { registerUser } from './commands.js';

builder.node(UserRef, {
  description: 'A person who can be a board member and a card assignee.',
  id: { resolve: (user) => user._id },
  // Users are public within the service: any signed-in caller may resolve one by ID.
  loadMany: (ids, ctx) =>
    brandable(Promise.all(ids.map(async (id) => (ctx.viewer ? ctx.reads.user(id) : null)))),
  fields: (t) => ({
    username: t.exposeString('username'),
    displayName: t.exposeString('displayName'),
  }),
});

builder.queryField('me', (t) =>
  t.field({
    type: UserRef,
    nullable: true,
    description: 'The caller, from the bearer token; null when anonymous.',
    resolve: (_root, _args, ctx) => ctx.viewer,
  }),
);

commandPayload(registerUser, {
  resources: { user: 'user' },
  fields: (t) => ({
    token: t.exposeString('token', {
      description: 'Send as `Authorization: Bearer <token>`. Shown once.',
    }),
  }),
});
