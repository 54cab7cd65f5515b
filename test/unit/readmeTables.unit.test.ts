import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { cardFieldOfChange, cardFields } from '../../src/boards/card/events.js';
import { commandSpecs } from '../../src/boards/commands.js';

const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');

/** The README's invalidation table: mutation (first word of its cell) -> what it invalidates. */
function invalidationTable(): Map<string, string[]> {
  const start = readme.search(/^\| mutation +\| `invalidated` /m);
  const rows = readme.slice(start).split('\n\n')[0]!.split('\n').slice(2);
  const table = new Map<string, string[]>();
  for (const row of rows) {
    const [, mutation, invalidated] = row.split('|').map((cell) => cell.trim());
    const name = /`(\w+)`/.exec(mutation ?? '')?.[1];
    if (name) table.set(name, [...(table.get(name) ?? []), invalidated ?? '']);
  }
  return table;
}

describe("README's invalidation table", () => {
  const table = invalidationTable();

  it('has a row for every mutation that changes a board, and none for a mutation that does not exist', () => {
    const identity = ['registerUser', 'setPassword', 'signIn', 'revokeSession'];
    const boardMutations = Object.keys(commandSpecs).filter((name) => !identity.includes(name));
    expect([...table.keys()].sort()).toEqual(boardMutations.sort());
  });

  it('names the card fields CardCreated and CardEdited touch, as the code lists them', () => {
    expect(table.get('addCard')?.[0]).toContain(`Card \`${cardFields.join(', ')}\``);
    const editable = Object.values(cardFieldOfChange).map((field) => `\`${field}\``);
    expect(table.get('editCard')?.[0]).toContain(`(${editable.join(', ')})`);
  });
});
