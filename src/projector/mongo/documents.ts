/**
 * The documents the mongo projector storage keeps, their collection names and their
 * mapping to the ports' types. Nothing here talks to the server.
 */
import type { TraceContext } from '../../eventstore/types.js';
import type { CarriedDoc, ChangeLogEntry } from '../types.js';

/** Collection names, one database per deployment (shared with the event store). */
export const ProjectorCollection = {
  /** The pointer to the active read model generation (`_id: 'active'`). */
  ReadModelMeta: 'readmodel_meta',
  /** One document per read model generation that exists (`_id`: the generation). */
  ReadModelGenerations: 'readmodel_generations',
  Checkpoints: 'projector_checkpoints',
  Leases: 'leases',
  ChangeLog: 'changelog',
} as const;
export type ProjectorCollection = (typeof ProjectorCollection)[keyof typeof ProjectorCollection];

/** `_id` of the one pointer document in `readmodel_meta`. */
export const ACTIVE_POINTER_ID = 'active';

/** Prefix of every read model collection: `rm_<generation>_<name>`. */
export const READ_MODEL_PREFIX = 'rm_';

/** `{ _id: 'active', generation, fence? }` in `readmodel_meta`. */
export interface ActivePointerDoc {
  _id: typeof ACTIVE_POINTER_ID;
  generation: string;
  /** The newest lease epoch that claimed the pointer or switched it (see `ReadModelStore.active`). */
  fence?: { lease: string; epoch: number };
}

/** A generation that exists, in `readmodel_generations`; `_id` is the generation. */
export interface GenerationDoc {
  _id: string;
  createdAt: Date;
  /** Set by `dropGeneration`: when the generation's collections are to be dropped. */
  dropAfter?: Date;
}

/** A generation's checkpoint in `projector_checkpoints`; `_id` is the generation. */
export interface CheckpointDoc {
  _id: string;
  position: number;
  /** The lease epoch of the last fenced save; absent when none was fenced. */
  epoch?: number;
  /** The change stream resume token, stored as the server gave it; null when there is none. */
  token: unknown;
  updatedAt: Date;
}

/**
 * A lease in `leases`; `_id` is the lease name. Times are the server's (`$$NOW`). The
 * handover request is two flat fields rather than one sub-document so that no update
 * ever touches both a path and its parent (see `leaseOperations`).
 */
export interface LeaseDoc {
  _id: string;
  owner: string;
  /** The fencing epoch: grows by one each time the lease changes owner. */
  epoch: number;
  expiresAt: Date;
  /** Who asked the holder to hand over, or null. */
  handoverTo: string | null;
  /** When they asked, or null. */
  handoverAt: Date | null;
}

/** One change log entry in `changelog`: the entry, with its cursor as `_id`. */
export type ChangeLogDoc = Omit<ChangeLogEntry, 'cursor'> & { _id: number };

/** The optional fields of an entry, left out when empty. */
function optionals(changed: CarriedDoc[] | undefined, traceContext: TraceContext | undefined) {
  return { ...(changed?.length ? { changed } : {}), ...(traceContext && { traceContext }) };
}

export function toChangeLogDoc(entry: ChangeLogEntry): ChangeLogDoc {
  const { cursor, changed, traceContext, ...required } = entry;
  return { _id: cursor, ...required, ...optionals(changed, traceContext) };
}

export function fromChangeLogDoc(doc: ChangeLogDoc): ChangeLogEntry {
  const { _id, changed, traceContext, ...required } = doc;
  return { cursor: _id, ...required, ...optionals(changed, traceContext) };
}
