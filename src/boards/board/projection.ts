import type { Projection } from '../../projector/types.js';
import { invalidationOf } from '../aggregates.js';
import { stampsAfter } from '../docStamps.js';
import { ReadCollection } from '../readModel.js';
import { boardEventSchemaVersions, parseBoardEvent } from './events.js';
import { boardStateOf, toBoardDoc, type BoardDoc } from './readModel.js';
import { evolveBoard } from './state.js';

/** Boards: name, members and column order. */
export const boardProjection: Projection = {
  name: 'boards',
  handles: Object.keys(boardEventSchemaVersions),
  // Members of the board may read all of it: subscribers get it with the change.
  carriesDocuments: true,
  async apply({ commit, update, invalidate }) {
    for (const stored of commit.events) {
      if (!Object.hasOwn(boardEventSchemaVersions, stored.type)) continue;
      const event = parseBoardEvent(stored);
      const invalidation = invalidationOf(stored);
      const boardId = invalidation.id;
      await update<BoardDoc>(ReadCollection.Boards, boardId, stored, (doc) => {
        const board = evolveBoard(boardStateOf(doc), event);
        if (board.status === 'absent') {
          throw new Error(`board ${boardId}: ${event.type} before BoardCreated`);
        }
        return toBoardDoc(board, stampsAfter(doc, stored.version, commit.occurredAt));
      });
      invalidate(boardId, invalidation);
    }
  },
};
