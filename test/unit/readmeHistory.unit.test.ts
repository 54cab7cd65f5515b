import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { historyOperations } from '../../src/boards/history/changes.js';

const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');

/** The operations the README's History section lists `on a <resource>:`, in its order. */
function listedOperations(resource: string): string[] {
  const section = readme.slice(readme.indexOf('\n### History\n'));
  const item = new RegExp(`^  - on a ${resource}: ((?:.|\\n    )*)`, 'm').exec(section);
  expect(item, `README: no "on a ${resource}:" list under ### History`).not.toBeNull();
  return [...item![1]!.matchAll(/`(\w+)`/g)].map((match) => match[1]!);
}

describe("README's list of history operations", () => {
  it('names every operation each resource history can show, and nothing else', () => {
    const resources = { card: 'Card', column: 'Column', board: 'Board' } as const;
    for (const [resource, kind] of Object.entries(resources)) {
      expect({ resource, operations: listedOperations(resource) }).toEqual({
        resource,
        operations: [...historyOperations[kind]],
      });
    }
  });
});
