import { describe, expect, it } from 'vitest';
import type { z } from 'zod';
import { addColumn } from '../../src/boards/board/commands.js';
import { editCard } from '../../src/boards/card/commands.js';
import { addCard, setWipLimit } from '../../src/boards/column/commands.js';
import { registerUser } from '../../src/boards/user/commands.js';
import { setPassword } from '../../src/boards/session/commands.js';
import { PASSWORD_LIMITS } from '../../src/identity/passwords.js';
import { parseInput as parseResult } from '../../src/boards/validation.js';
import { validationField } from '../support/validationField.js';

const registerUserInput = registerUser.input;
const addCardInput = addCard.input;
const addColumnInput = addColumn.input;
const setWipLimitInput = setWipLimit.input;
const editCardInput = editCard.input;

/** The parsed input; throws the ValidationError for `validationField` to read. */
function parseInput<S extends z.ZodType>(schema: S, input: unknown): z.output<S> {
  const parsed = parseResult(schema, input);
  if (!parsed.ok) throw parsed.error;
  return parsed.value;
}

describe('input validation', () => {
  it('accepts usernames of 3 to 32 letters, digits, _ . and -', () => {
    for (const username of ['abc', 'a.b-c_9', 'x'.repeat(32)]) {
      expect(parseInput(registerUserInput, { username, displayName: 'A' }).username).toBe(username);
    }
  });

  it('rejects usernames that are too short, too long or hold other characters', () => {
    for (const username of ['ab', 'x'.repeat(33), 'a b', 'émile', 'a/b']) {
      expect(
        validationField(() => parseInput(registerUserInput, { username, displayName: 'A' })),
      ).toBe('input.username');
    }
  });

  it('folds compatibility forms of a username before checking it', () => {
    expect(
      parseInput(registerUserInput, { username: 'ａｌｉｃｅ', displayName: 'A' }).username,
    ).toBe('alice');
  });

  it('trims a card title and requires 1 to 200 characters of it', () => {
    expect(parseInput(addCardInput, { columnId: 'c', title: '  Ship  ' }).title).toBe('Ship');
    expect(validationField(() => parseInput(addCardInput, { columnId: 'c', title: '   ' }))).toBe(
      'input.title',
    );
    expect(
      validationField(() => parseInput(addCardInput, { columnId: 'c', title: 'x'.repeat(201) })),
    ).toBe('input.title');
  });

  it('caps a description at 10,000 characters and defaults it to empty', () => {
    expect(parseInput(addCardInput, { columnId: 'c', title: 't' }).description).toBe('');
    expect(
      validationField(() =>
        parseInput(addCardInput, { columnId: 'c', title: 't', description: 'x'.repeat(10_001) }),
      ),
    ).toBe('input.description');
  });

  it('de-duplicates labels and allows at most 20, each 1 to 30 characters', () => {
    const base = { cardId: 'k', expectedVersion: 1 };
    expect(
      parseInput(editCardInput, { ...base, labels: ['a', ' a ', 'b'] }).changes.labels,
    ).toEqual(['a', 'b']);
    const many = Array.from({ length: 21 }, (_, i) => `l${i}`);
    expect(validationField(() => parseInput(editCardInput, { ...base, labels: many }))).toBe(
      'input.labels',
    );
    expect(
      validationField(() => parseInput(editCardInput, { ...base, labels: ['ok', 'x'.repeat(31)] })),
    ).toBe('input.labels.1');
  });

  it('accepts a null WIP limit or an integer from 0 to 1000, and nothing else', () => {
    const base = { columnId: 'c', expectedVersion: 1 };
    expect(parseInput(setWipLimitInput, { ...base, wipLimit: null }).wipLimit).toBeNull();
    expect(parseInput(setWipLimitInput, { ...base, wipLimit: 0 }).wipLimit).toBe(0);
    expect(
      parseInput(addColumnInput, { boardId: 'b', name: 'n', expectedVersion: 1 }).wipLimit,
    ).toBeNull();
    for (const wipLimit of [-1, 1001, 1.5]) {
      expect(validationField(() => parseInput(setWipLimitInput, { ...base, wipLimit }))).toBe(
        'input.wipLimit',
      );
    }
  });

  it('treats null edit fields as not given, except a null assignee, which unassigns', () => {
    const { changes } = parseInput(editCardInput, {
      cardId: 'k',
      expectedVersion: 1,
      title: null,
      description: null,
      assigneeId: null,
      labels: null,
      done: null,
    });
    expect(changes).toEqual({ assigneeId: null });
    expect(
      parseInput(editCardInput, { cardId: 'k', expectedVersion: 1, done: false }).changes,
    ).toEqual({
      done: false,
    });
  });

  it('counts a password in UTF-16 code units, as the README says', () => {
    const emoji = '\u{1F600}'; // two code units, one code point
    const half = (n: number) => emoji.repeat(n / 2);
    for (const password of [half(PASSWORD_LIMITS.min), half(PASSWORD_LIMITS.max)]) {
      expect(parseInput(setPassword.input, { password }).password).toBe(password);
    }
    for (const password of [half(PASSWORD_LIMITS.min - 2), half(PASSWORD_LIMITS.max + 2)]) {
      expect(validationField(() => parseInput(setPassword.input, { password }))).toBe(
        'input.password',
      );
    }
  });

  it('rejects a negative or fractional expected version', () => {
    for (const expectedVersion of [-1, 1.5]) {
      expect(
        validationField(() => parseInput(editCardInput, { cardId: 'k', expectedVersion })),
      ).toBe('input.expectedVersion');
    }
  });
});
