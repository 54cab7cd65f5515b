import { eventParser, type SchemaVersions } from '../domainEvent.js';
import type { BoardRole } from '../board/access.js';
import { unreachable } from '../unreachable.js';

/**
 * Events of one member's membership stream (`membership-<boardId>~<userId>`): every change
 * to that member's access to that board, in the same commit as the board's own member
 * event, and the board's archiving and restoring. A command a member makes on the board asserts this
 * stream's version in its commit (see `loadBoardAccess`), so a removal, a demotion or an
 * archive that commits first makes it fail.
 */
export type MembershipEvent =
  /** The member joins the board with `role`, or their role becomes `role`. */
  | { type: 'MembershipGranted'; data: { boardId: string; userId: string; role: BoardRole } }
  /** The member left or was removed: no access from here on. */
  | { type: 'MembershipEnded'; data: { boardId: string; userId: string } }
  /**
   * The board was archived (the same commit's `BoardArchived`), written for each member by
   * `archiveBoard`. The member keeps their role; their writes are refused from here on
   * (`MembershipState.boardArchived`), and one decided on the live board, whose commit
   * asserts the version of this stream it read, fails and is decided again (refused).
   */
  | { type: 'BoardArchivedForMember'; data: { boardId: string; userId: string } }
  /** The board was restored (the same commit's `BoardRestored`), written by `restoreBoard`. */
  | { type: 'BoardRestoredForMember'; data: { boardId: string; userId: string } };

export const membershipEventSchemaVersions: SchemaVersions<MembershipEvent> = {
  MembershipGranted: 1,
  MembershipEnded: 1,
  BoardArchivedForMember: 1,
  BoardRestoredForMember: 1,
};

/** A membership stream is not a GraphQL resource: its events touch no field of one. */
export function membershipEventFields(event: MembershipEvent): readonly string[] {
  switch (event.type) {
    case 'MembershipGranted':
    case 'MembershipEnded':
    case 'BoardArchivedForMember':
    case 'BoardRestoredForMember':
      return [];
    default:
      return unreachable(event);
  }
}

/** A stored event of a membership stream as a `MembershipEvent`; throws on an unknown type. */
export const parseMembershipEvent = eventParser<MembershipEvent>(membershipEventSchemaVersions);
