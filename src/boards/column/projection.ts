import type { Projection } from '../../projector/types.js';
import { invalidationOf } from '../aggregates.js';
import { stampsAfter } from '../docStamps.js';
import { ReadCollection } from '../readModel.js';
import { columnEventSchemaVersions, parseColumnEvent } from './events.js';
import { columnStateOf, liveCardsDelta, toColumnDoc, type ColumnDoc } from './readModel.js';
import { evolveColumn } from './state.js';

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
        const column = evolveColumn(columnStateOf(doc), event);
        if (column.status === 'absent') {
          throw new Error(`column ${columnId}: ${event.type} before ColumnCreated`);
        }
        const cardCount = (doc?.cardCount ?? 0) + liveCardsDelta(event);
        return toColumnDoc(column, stampsAfter(doc, stored.version, commit.occurredAt), cardCount);
      });
      // A column never changes boards, so its stored boardId is the one of this event.
      boardId ??=
        (await view.collection<ColumnDoc>(ReadCollection.Columns).get(columnId))?.boardId ?? null;
      invalidate(boardId, invalidation);
    }
  },
};
