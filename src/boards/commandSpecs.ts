import {
  addColumn,
  addMember,
  archiveBoard,
  createBoard,
  moveColumn,
  removeMember,
  renameBoard,
  restoreBoard,
  setMemberRole,
} from './board/commands.js';
import { archiveCard, editCard, moveCard, restoreCard } from './card/commands.js';
import {
  addCard,
  archiveColumn,
  archiveDoneCards,
  renameColumn,
  setWipLimit,
} from './column/commands.js';
import { refreshSession, revokeSession, setPassword, signIn } from './session/commands.js';
import { provisionUser, registerUser } from './user/commands.js';

/**
 * Every mutation of the public contract, by name. Each spec (in its aggregate's
 * `commands.ts`) is the one place its input, errors, loading, decision and result
 * are declared; the GraphQL fields and {@link BoardCommands} are built from these.
 */
export const commandSpecs = {
  registerUser,
  setPassword,
  signIn,
  revokeSession,
  createBoard,
  renameBoard,
  addMember,
  setMemberRole,
  removeMember,
  addColumn,
  moveColumn,
  setWipLimit,
  addCard,
  editCard,
  moveCard,
  archiveCard,
  archiveDoneCards,
  archiveBoard,
  restoreBoard,
  renameColumn,
  archiveColumn,
  restoreCard,
} as const;
export type CommandSpecs = typeof commandSpecs;
export type CommandName = keyof CommandSpecs;

/** Commands the server runs itself, not mutations: identity provisioning. */
export const internalCommandSpecs = { provisionUser, refreshSession } as const;
export type AllCommandSpecs = CommandSpecs & typeof internalCommandSpecs;
