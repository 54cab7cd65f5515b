import type { ReadCollection, ReadDoc, ReadView } from '../../src/projector/types.js';

/** `view`, telling `onRead` the collection and ids of every `get` and `getMany` it serves. */
export function readCountingView(
  view: ReadView,
  onRead: (collection: string, ids: string[]) => void,
): ReadView {
  return {
    generation: view.generation,
    collection: <T extends ReadDoc>(name: string): ReadCollection<T> => {
      const c = view.collection<T>(name);
      return {
        get: (id, o) => (onRead(name, [id]), c.get(id, o)),
        getMany: (ids, o) => (onRead(name, [...ids]), c.getMany(ids, o)),
        find: (filter, o) => c.find(filter, o),
        count: (filter, o) => c.count(filter, o),
        put: (doc) => c.put(doc),
        putEach: (docs) => c.putEach(docs),
        putMany: (docs) => c.putMany(docs),
        delete: (id) => c.delete(id),
      };
    },
  };
}
