import type { BoardRole } from '@corkboard/client';

/** The roles, most rights first, as the role pickers list them. */
export const ROLES: readonly BoardRole[] = ['OWNER', 'EDITOR', 'VIEWER'];

/** A role as a person reads it. */
export function roleName(role: BoardRole): string {
  switch (role) {
    case 'OWNER':
      return 'owner';
    case 'EDITOR':
      return 'editor';
    case 'VIEWER':
      return 'viewer';
    default: {
      const unexpected: never = role;
      return String(unexpected);
    }
  }
}
