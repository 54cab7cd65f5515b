import { boardCommands } from './board/commands.js';
import { cardCommands } from './card/commands.js';
import { columnCommands } from './column/commands.js';
import { refreshSession, sessionCommands } from './session/commands.js';
import { provisionUser, userCommands } from './user/commands.js';

/**
 * Every mutation of the public contract, by name: each aggregate's list, beside its
 * specs (`<aggregate>/commands.ts`). Each spec is the one place its input, errors,
 * loading, decision and result are declared; the GraphQL fields and
 * {@link BoardCommands} are built from these.
 */
export const commandSpecs = {
  ...userCommands,
  ...sessionCommands,
  ...boardCommands,
  ...columnCommands,
  ...cardCommands,
} as const;
export type CommandSpecs = typeof commandSpecs;
export type CommandName = keyof CommandSpecs;

/** Commands the server runs itself, not mutations: identity provisioning. */
export const internalCommandSpecs = { provisionUser, refreshSession } as const;
export type AllCommandSpecs = CommandSpecs & typeof internalCommandSpecs;
