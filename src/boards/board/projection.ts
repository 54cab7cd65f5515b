import type { Projection } from '../../projector/types.js';
import { invalidationOf } from '../aggregates.js';
import { unreachable } from '../unreachable.js';
import { sortByRank } from '../ranks.js';
import { ReadCollection, type BoardDoc } from '../readModel.js';
import { boardEventSchemaVersions, parseBoardEvent } from './events.js';

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
        const touched = { version: stored.version, updatedAt: commit.occurredAt };
        if (event.type === 'BoardCreated') {
          const { name, ownerId } = event.data;
          return {
            _id: boardId,
            name,
            ownerId,
            members: [ownerId],
            columns: [],
            createdAt: commit.occurredAt,
            ...touched,
          };
        }
        if (!doc) throw new Error(`board ${boardId}: ${event.type} before BoardCreated`);
        switch (event.type) {
          case 'BoardRenamed':
            return { ...doc, name: event.data.name, ...touched };
          case 'MemberAdded':
            return {
              ...doc,
              members: doc.members.includes(event.data.userId)
                ? doc.members
                : [...doc.members, event.data.userId],
              ...touched,
            };
          case 'ColumnPlaced': {
            const { columnId, rank } = event.data;
            const others = doc.columns.filter((c) => c.id !== columnId);
            return { ...doc, columns: sortByRank([...others, { id: columnId, rank }]), ...touched };
          }
          case 'ColumnsRebalanced': {
            const { ranks } = event.data;
            const columns = doc.columns.map((c) => ({ id: c.id, rank: ranks[c.id] ?? c.rank }));
            return { ...doc, columns: sortByRank(columns), ...touched };
          }
          default:
            return unreachable(event);
        }
      });
      invalidate(boardId, invalidation);
    }
  },
};
