import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { allowedRoles, BoardAction, boardRoles } from '../../src/boards/board/access.js';

const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');

/** The README's roles table: action (the word before `:` in its first cell) -> role -> allowed. */
function rolesTable(): { roles: string[]; rows: Map<string, boolean[]> } {
  const start = readme.search(/^\| action +\| `OWNER` /m);
  expect(start).toBeGreaterThan(0);
  const [header, , ...lines] = readme.slice(start).split('\n\n')[0]!.split('\n');
  const cells = (line: string) =>
    line
      .split('|')
      .slice(1, -1)
      .map((cell) => cell.trim());
  const roles = cells(header!)
    .slice(1)
    .map((cell) => cell.replaceAll('`', ''));
  const rows = new Map<string, boolean[]>();
  for (const line of lines) {
    const [action, ...allowed] = cells(line);
    rows.set(
      /^(\w+):/.exec(action ?? '')?.[1] ?? '',
      allowed.map((cell) => cell === 'yes'),
    );
  }
  return { roles, rows };
}

describe("README's roles table", () => {
  it('says for every action and role exactly what the access policy allows', () => {
    const { roles, rows } = rolesTable();
    expect(roles).toEqual([...boardRoles]);
    expect([...rows.keys()].sort()).toEqual(Object.values(BoardAction).sort());
    for (const action of Object.values(BoardAction)) {
      const expected = boardRoles.map((role) => allowedRoles[action].includes(role));
      expect({ action, allowed: rows.get(action) }).toEqual({ action, allowed: expected });
    }
  });
});
