import { describe, expect, it } from 'vitest';
import { describeTouchedResource } from '../../src/boards/aggregates.js';
import type { RecordedEvent } from '../../src/eventstore/types.js';

function recorded(stream: string, type: string, data: Record<string, unknown>): RecordedEvent {
  return {
    type,
    data,
    schemaVersion: 1,
    stream,
    version: 4,
    eventId: 'e',
    commitId: 'c',
    position: 9,
    actor: 'u1',
    idempotencyKey: null,
    occurredAt: new Date(0),
  };
}

describe('describeTouchedResource', () => {
  it('names the resource, its version and the GraphQL fields a stored event touched', () => {
    expect(
      describeTouchedResource(recorded('column-c1', 'CardEntered', { cardId: 'k', rank: 'a0' })),
    ).toEqual({ resourceType: 'Column', id: 'c1', fields: ['cards', 'cardCount'], version: 4 });
    expect(
      describeTouchedResource(
        recorded('card-k1', 'CardEdited', { changes: { title: 't', assigneeId: 'u2' } }),
      ),
    ).toEqual({ resourceType: 'Card', id: 'k1', fields: ['title', 'assignee'], version: 4 });
  });

  it('ignores username claims and streams of other domains', () => {
    expect(
      describeTouchedResource(recorded('username-al', 'UsernameClaimed', { userId: 'u' })),
    ).toBeNull();
    expect(describeTouchedResource(recorded('other-1', 'Whatever', {}))).toBeNull();
  });

  it('refuses an event type its stream kind does not know', () => {
    expect(() => describeTouchedResource(recorded('board-b1', 'CardEdited', {}))).toThrow(
      /unknown event type/,
    );
  });
});
