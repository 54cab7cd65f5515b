import type { Projection } from '../projector/types.js';
import { boardProjection } from './board/projection.js';
import { cardProjection } from './card/projection.js';
import { columnProjection } from './column/projection.js';
import { sessionProjection } from './session/projection.js';
import { userProjection } from './user/projection.js';

/** Every projection of the board domain, in the order the runtime applies them. */
export const boardProjections: readonly Projection[] = [
  userProjection,
  boardProjection,
  columnProjection,
  cardProjection,
  sessionProjection,
];
