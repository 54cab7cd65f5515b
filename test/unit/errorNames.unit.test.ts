import { describe, expect, it } from 'vitest';
import * as boardErrors from '../../src/boards/errors.js';
import * as storeErrors from '../../src/eventstore/errors.js';

/** Every class a module exports that extends `base` (itself left out). */
const subclassesOf = (
  module: Record<string, unknown>,
  base: abstract new (...args: never[]) => Error,
) =>
  Object.values(module).filter(
    (value): value is new (...args: unknown[]) => Error =>
      typeof value === 'function' && value.prototype instanceof base,
  );

// Logs, the append span's outcome attribute and the GraphQL error types read `name`.
describe('error names', () => {
  it.each([
    ['DomainError', subclassesOf(boardErrors, boardErrors.DomainError)],
    ['EventStoreError', subclassesOf(storeErrors, storeErrors.EventStoreError)],
  ])('every %s is named after its own class, subclasses of subclasses too', (_base, classes) => {
    expect(classes.length).toBeGreaterThan(3);
    for (const cls of classes) {
      const error = new cls('x', 'y');
      expect(error.name).toBe(cls.name);
      expect(String(error)).toMatch(new RegExp(`^${cls.name}: `));
    }
  });

  it('names an event store error that subclasses another by its own class', () => {
    expect(new storeErrors.EventStoreBusy('busy').name).toBe('EventStoreBusy');
    expect(new storeErrors.CommitOutcomeUnknown('unknown').name).toBe('CommitOutcomeUnknown');
  });
});
