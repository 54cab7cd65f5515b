/**
 * The board domain's read models, in the order the projector applies them, and what is
 * derived from them: the storage indexes, the projections, the collection names. A read
 * model itself (document, collection, indexes, queries, projection) is declared in one
 * module beside its aggregate (`card/readModel.ts`...).
 */
import { projectionsOf, readModelIndexesOf, type ReadModel } from '../projector/readModel.js';
import type { Projection, ReadIndexes } from '../projector/types.js';
import { boardPlacementReadModel } from './archive/readModel.js';
import { boardReadModel } from './board/readModel.js';
import { cardReadModel } from './card/readModel.js';
import { columnReadModel } from './column/readModel.js';
import { sessionReadModel } from './session/readModel.js';
import { userReadModel } from './user/readModel.js';

export type { BoardDoc } from './board/readModel.js';
export type { CardDoc } from './card/readModel.js';
export type { ColumnDoc } from './column/readModel.js';
export type { SessionDoc } from './session/readModel.js';
export type { UserDoc } from './user/readModel.js';
export { boardReadModel, cardReadModel, columnReadModel, sessionReadModel, userReadModel };

/**
 * Every read model of the domain, in projection order (a projection that reads another's
 * documents or scopes declares it in `after`, checked by {@link projections}).
 */
export const readModels: readonly ReadModel[] = [
  userReadModel,
  boardReadModel,
  columnReadModel,
  cardReadModel,
  sessionReadModel,
  boardPlacementReadModel,
];

/** Every projection of the domain, in the order the runtime applies them. */
export const projections: readonly Projection[] = projectionsOf(readModels);

/**
 * Secondary indexes of the read models, by collection (MongoDB builds them; the memory
 * store keeps a hash index on each one's first key).
 */
export const readModelIndexes: ReadIndexes = readModelIndexesOf(readModels);

/** The collection of each read model, by its resource's name. */
export const Collections = {
  Users: userReadModel.collection,
  Boards: boardReadModel.collection,
  Columns: columnReadModel.collection,
  Cards: cardReadModel.collection,
  Sessions: sessionReadModel.collection,
} as const;
