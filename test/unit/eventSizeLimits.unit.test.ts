import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { decideCard } from '../../src/boards/card/decide.js';
import { decideColumn } from '../../src/boards/column/decide.js';
import type { Decision } from '../../src/boards/decision.js';
import { editCard } from '../../src/boards/card/commands.js';
import { addCard } from '../../src/boards/column/commands.js';
import { inputLimits, parseInput } from '../../src/boards/validation.js';
import { validateAppendRequest } from '../../src/eventstore/validation.js';
import {
  boardEvents,
  cardCreated,
  columnEvents,
  contextWithIds,
  given,
  member,
} from './deciderTestKit.js';

/**
 * The accepted character with the longest stored form: lengths count code points, and
 * control characters are refused, so an astral code point (4 bytes of UTF-8) is widest.
 */
const widest = '\u{1F600}';

/** Throws `EventStoreValidationError` when any event or the commit is over a store limit. */
function appendDecision(decision: Decision): void {
  validateAppendRequest({
    streams: decision.map((change) => ({
      stream: `${change.aggregate}-${change.id}`,
      expected: 'ANY',
      events: change.events.map((e) => ({ type: e.type, data: e.data })),
    })),
  });
}

/** The input as the command's schema normalizes it; fails the test when it is refused. */
function parsed<S extends Parameters<typeof parseInput>[0]>(schema: S, input: unknown) {
  const result = parseInput(schema, input);
  if (!result.ok) throw result.error;
  return result.value;
}

const { board, membership } = given.access(boardEvents(['c1', 'a0']));

describe('input limits keep every event under the store limits', () => {
  it('takes the largest possible addCard input', () => {
    const input = parsed(addCard.input, {
      columnId: 'c1',
      title: `x${widest.repeat(inputLimits.cardTitleMax - 2)}x`,
      description: widest.repeat(inputLimits.descriptionMax),
    });
    const decision = decideColumn(
      { type: 'AddCard', data: { actorId: member, ...input } },
      { column: given.column(...columnEvents('c1', null, ['k1', 'a0'])), board, membership },
      contextWithIds(randomUUID()),
    );
    expect(() => appendDecision(decision)).not.toThrow();
  });

  it('takes the largest possible editCard input', () => {
    const labels = Array.from(
      { length: inputLimits.labelsMax },
      (_, i) => `${String.fromCharCode(65 + i)}${widest.repeat(inputLimits.labelMax - 1)}`,
    );
    const { changes } = parsed(editCard.input, {
      cardId: 'k1',
      expectedVersion: 1,
      title: `x${widest.repeat(inputLimits.cardTitleMax - 2)}x`,
      description: widest.repeat(inputLimits.descriptionMax),
      labels,
      assigneeId: member,
      done: true,
    });
    expect(changes.labels).toHaveLength(inputLimits.labelsMax);
    const decision = decideCard(
      { type: 'EditCard', data: { actorId: member, cardId: 'k1', changes } },
      { card: given.card(cardCreated('k1', 'c1', 'a0')), board, membership, columns: new Map() },
      contextWithIds(),
    );
    expect(() => appendDecision(decision)).not.toThrow();
  });
});
