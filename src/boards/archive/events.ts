import type { MoveDirection } from '../../eventstore/archiveSweeper.js';
import { eventParser, type SchemaVersions } from '../domainEvent.js';

/**
 * Events of a board's archive record (`archive-<boardId>`, see `archiveRecordStream`): where
 * the commits of the board's streams are. Only the archive sweeper writes them, each
 * conditional on the record's version it read, so two moves of one board cannot both be
 * recorded from the same state.
 */
export type ArchiveRecordEvent =
  /** A move starts: from here on the board's commits may be in both places. */
  | { type: 'ArchiveMoveStarted'; data: { boardId: string; direction: MoveDirection } }
  /** The move is done: every commit of the board's streams is where `direction` says. */
  | { type: 'ArchiveMoveEnded'; data: { boardId: string; direction: MoveDirection } };

export const archiveRecordSchemaVersions: SchemaVersions<ArchiveRecordEvent> = {
  ArchiveMoveStarted: 1,
  ArchiveMoveEnded: 1,
};

/** A stored event of an archive record; throws on an unknown type. */
export const parseArchiveRecordEvent = eventParser<ArchiveRecordEvent>(archiveRecordSchemaVersions);
