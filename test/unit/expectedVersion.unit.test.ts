import { describe, expect, it } from 'vitest';
import type { RecordedEvent } from '../../src/eventstore/types.js';
import { foldEvents } from '../../src/boards/aggregates.js';
import type { CardEvent } from '../../src/boards/card/events.js';
import { checkExpectedVersion } from '../../src/boards/commandHandling/expectedVersion.js';
import type { LoadedStream } from '../../src/boards/commandHandling/loadSession.js';
import { VersionConflictError } from '../../src/boards/errors.js';
import { cardCreated } from './deciderTestKit.js';

const at = new Date('2025-01-01T00:00:00Z');

/** A card stream as a command would have read it. */
function cardStream(...events: CardEvent[]): LoadedStream<'card'> {
  const recorded = events.map((event, i): RecordedEvent => ({
    type: event.type,
    data: event.data,
    schemaVersion: 1,
    stream: 'card-k1',
    version: i + 1,
    eventId: `e${i}`,
    commitId: `c${i}`,
    position: i + 1,
    actor: i === 0 ? 'u-owner' : 'u-other',
    idempotencyKey: null,
    occurredAt: at,
  }));
  return {
    kind: 'card',
    id: 'k1',
    stream: 'card-k1',
    state: foldEvents('card', recorded),
    version: recorded.length,
    eventsAfter: (after: number) => Promise.resolve(recorded.filter((e) => e.version > after)),
  };
}

const edited = (changes: Record<string, unknown>): CardEvent => ({
  type: 'CardEdited',
  data: { changes },
});

describe('checkExpectedVersion', () => {
  it('goes ahead unmerged when the client saw the current version', async () => {
    expect(
      await checkExpectedVersion(cardStream(cardCreated('k1', 'c1', 'a0')), 1, ['title']),
    ).toEqual({
      merged: false,
    });
  });

  it('merges over later changes that touched none of the fields the write sets', async () => {
    const stream = cardStream(cardCreated('k1', 'c1', 'a0'), edited({ description: 'd' }), {
      type: 'CardMoved',
      data: { fromColumnId: 'c1', toColumnId: 'c2', rank: 'a0' },
    });
    expect(await checkExpectedVersion(stream, 1, ['title', 'assignee'])).toEqual({ merged: true });
  });

  it('reports a conflict listing every later change when one touched a field the write sets', async () => {
    const stream = cardStream(
      cardCreated('k1', 'c1', 'a0'),
      edited({ description: 'd' }),
      edited({ title: 't', assigneeId: null }),
    );
    const error = await checkExpectedVersion(stream, 1, ['title']);
    expect(error).toBeInstanceOf(VersionConflictError);
    expect(error).toMatchObject({
      resourceType: 'Card',
      resourceId: 'k1',
      stream: 'card-k1',
      expectedVersion: 1,
      actualVersion: 3,
      conflicts: [
        { version: 2, eventType: 'CardEdited', fields: ['description'], actor: 'u-other', at },
        {
          version: 3,
          eventType: 'CardEdited',
          fields: ['title', 'assignee'],
          actor: 'u-other',
          at,
        },
      ],
    });
  });

  it('reports a conflict when the client claims a version the resource never had', async () => {
    expect(
      await checkExpectedVersion(cardStream(cardCreated('k1', 'c1', 'a0')), 5, ['title']),
    ).toBeInstanceOf(VersionConflictError);
  });
});
