/**
 * `Board.viewerRole` in a live cache. The `BoardChanges` push leaves it out (it is the
 * caller's own, and a subscription that selects it is executed once per subscriber
 * instead of once per change for all of them); the bindings derive it from the pushed
 * `memberships` and the viewer's id.
 */
import type { BoardRole } from './generated/graphql.js';

/** A pushed board's `memberships`, as far as the viewer's role needs them. */
interface Membership {
  role: BoardRole;
  user: { id: string };
}

/**
 * The viewer's role on a pushed board: `undefined` when the node carries no
 * `memberships` (nothing to derive from), `null` when the viewer is not a member.
 */
export function viewerRoleOf(node: object, viewerId: string): BoardRole | null | undefined {
  const memberships = (node as { memberships?: unknown }).memberships;
  if (!Array.isArray(memberships)) return undefined;
  return (memberships as Membership[]).find((m) => m.user?.id === viewerId)?.role ?? null;
}
