import type { Projection } from '../../projector/types.js';
import { invalidationOf } from '../aggregates.js';
import { unreachable } from '../unreachable.js';
import { ReadCollection, type ColumnDoc } from '../readModel.js';
import { columnEventSchemaVersions, parseColumnEvent } from './events.js';

/** Columns: name, WIP limit and live card count. Card order is read from the cards. */
export const columnProjection: Projection = {
  name: 'columns',
  handles: Object.keys(columnEventSchemaVersions),
  // Members of the board may read all of it: subscribers get it with the change.
  carriesDocuments: true,
  async apply({ commit, update, invalidate, view }) {
    for (const stored of commit.events) {
      if (!Object.hasOwn(columnEventSchemaVersions, stored.type)) continue;
      const event = parseColumnEvent(stored);
      const invalidation = invalidationOf(stored);
      const columnId = invalidation.id;
      let boardId = event.type === 'ColumnCreated' ? event.data.boardId : null;
      await update<ColumnDoc>(ReadCollection.Columns, columnId, stored, (doc) => {
        const touched = { version: stored.version, updatedAt: commit.occurredAt };
        if (event.type === 'ColumnCreated') {
          const { name, wipLimit } = event.data;
          return {
            _id: columnId,
            boardId: event.data.boardId,
            name,
            wipLimit,
            cardCount: 0,
            createdAt: commit.occurredAt,
            ...touched,
          };
        }
        if (!doc) throw new Error(`column ${columnId}: ${event.type} before ColumnCreated`);
        switch (event.type) {
          case 'WipLimitSet':
            return { ...doc, wipLimit: event.data.wipLimit, ...touched };
          case 'CardEntered':
            return { ...doc, cardCount: doc.cardCount + 1, ...touched };
          case 'CardLeft':
            return { ...doc, cardCount: doc.cardCount - 1, ...touched };
          case 'CardsArchived':
            return { ...doc, cardCount: doc.cardCount - event.data.cardIds.length, ...touched };
          case 'CardRepositioned':
          case 'CardsRebalanced':
            return { ...doc, ...touched };
          default:
            return unreachable(event);
        }
      });
      // A column never changes boards, so its stored boardId is the one of this event.
      boardId ??=
        (await view.collection<ColumnDoc>(ReadCollection.Columns).get(columnId))?.boardId ?? null;
      invalidate(boardId, invalidation);
    }
  },
};
