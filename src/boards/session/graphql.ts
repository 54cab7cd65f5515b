import { builder } from '../../graphql/builder.js';
import { commandPayload } from '../../graphql/commandMutation.js';
import type { GraphQLContext } from '../../graphql/context.js';
import { toGlobalId } from '../../graphql/globalIds.js';
import { ExternalIdentityError, UnauthenticatedError } from '../errors.js';
import type { SessionDoc } from '../readModel.js';
import { revokeSession, setPassword, signIn } from './commands.js';

/** When `session` expires: `SESSION_TTL` after it was last active. */
export const sessionExpiry = (session: SessionDoc, ttlMs: number): Date =>
  new Date(session.lastActiveAt.getTime() + ttlMs);

const SessionRef = builder.objectRef<SessionDoc>('Session').implement({
  description:
    'A bearer token of the built-in issuer. It expires `SESSION_TTL` after it was last used, and ends at once when signed out or revoked.',
  fields: (t) => ({
    id: t.id({ resolve: (s) => toGlobalId('Session', s._id) }),
    method: t.string({
      description: "How it began: 'registration' or 'password'.",
      resolve: (s) => s.method,
    }),
    startedAt: t.field({ type: 'DateTime', resolve: (s) => s.startedAt }),
    lastActiveAt: t.field({
      type: 'DateTime',
      description: 'Last use, recorded at most once per refresh interval (1/30 of `SESSION_TTL`).',
      resolve: (s) => s.lastActiveAt,
    }),
    expiresAt: t.field({
      type: 'DateTime',
      resolve: (s, _args, ctx) => sessionExpiry(s, ctx.services.sessionTtlMs),
    }),
    current: t.boolean({
      description: 'True for the session this request was made with.',
      resolve: (s, _args, ctx) => ctx.credential?.sessionId === s._id,
    }),
  }),
});

builder.queryField('mySessions', (t) =>
  t.field({
    type: [SessionRef],
    description:
      "The caller's sessions that can still be used, newest first; empty when anonymous or signed in through an identity provider.",
    resolve: async (_root, _args, ctx) => {
      if (!ctx.viewer) return [];
      const now = Date.now();
      const sessions = await ctx.reads.openSessionsOf(ctx.viewer._id);
      return sessions.filter((s) => sessionExpiry(s, ctx.services.sessionTtlMs).getTime() > now);
    },
  }),
);

commandPayload(setPassword, { resources: { user: 'user' } });

commandPayload(signIn, {
  resources: { user: 'user' },
  fields: (t) => ({
    token: t.exposeString('token', {
      description: 'Send as `Authorization: Bearer <token>`. Shown once.',
    }),
    sessionId: t.id({
      resolve: (value) => toGlobalId('Session', value.session.id),
    }),
  }),
});

commandPayload(revokeSession, {
  resources: {},
  fields: (t) => ({
    sessionId: t.id({ resolve: (value) => toGlobalId('Session', value.sessionId) }),
  }),
});

/** What `signOut` answers: the session it ended. */
interface SignedOut {
  sessionId: string;
}

const SignOutSuccess = builder.objectRef<SignedOut>('SignOutSuccess').implement({
  fields: (t) => ({
    sessionId: t.id({ resolve: (value) => toGlobalId('Session', value.sessionId) }),
  }),
});

async function signOut(ctx: GraphQLContext): Promise<SignedOut | Error> {
  const sessionId = ctx.credential?.sessionId;
  if (!ctx.viewer || !sessionId) {
    const { issuer } = ctx.services.auth;
    return ctx.viewer && issuer !== null
      ? new ExternalIdentityError(issuer)
      : new UnauthenticatedError('Sign in with a token of this server to sign out');
  }
  const result = await ctx.services.commands.revokeSession(
    ctx.viewer._id,
    { sessionId },
    { signal: ctx.signal },
  );
  // Ending one's own session fails only unexpectedly (an ended one is no failure).
  if (!result.ok) throw result.error;
  if (result.value.position !== null) await ctx.settle(result.value.position);
  return { sessionId };
}

builder.mutationField('signOut', (t) =>
  t.field({
    type: SignOutSuccess,
    description:
      'Ends the session this request was made with: its token stops working at once, on every transport.',
    errors: { types: [UnauthenticatedError, ExternalIdentityError] },
    resolve: (_root, _args, ctx) => signOut(ctx) as Promise<SignedOut>,
  }),
);
