import type { BoardDoc, CardDoc, ColumnDoc, UserDoc } from '../boards/readModel.js';
import { builder } from './builder.js';

/**
 * References to the node types, declared apart from their implementations (in
 * src/boards/<aggregate>/graphql.ts) so that types can point at each other
 * without import cycles.
 */
export const UserRef = builder.objectRef<UserDoc>('User');
export const BoardRef = builder.objectRef<BoardDoc>('Board');
export const ColumnRef = builder.objectRef<ColumnDoc>('Column');
export const CardRef = builder.objectRef<CardDoc>('Card');

/**
 * What a node type's `loadMany` hands Pothos: a shallow copy of each read document,
 * because Pothos brands what `node(id:)` loads with its type (a property it adds) and
 * the memory store hands out frozen documents.
 */
export async function brandable<T extends object>(docs: Promise<(T | null)[]>) {
  return (await docs).map((doc) => (doc ? { ...doc } : null));
}
