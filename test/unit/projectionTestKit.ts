import { readModels as boardReadModels } from '../../src/boards/readModel.js';
import type { Commit, RecordedEvent } from '../../src/eventstore/types.js';
import { applyCommit, type AppliedCommit } from '../../src/projector/applyCommit.js';
import { createMemoryProjectorStorage } from '../../src/projector/memory/MemoryProjectorStorage.js';
import { projectionsOf, type ReadModel } from '../../src/projector/readModel.js';
import type { ReadDoc, ReadView } from '../../src/projector/types.js';

/** One event as a test gives it: its stream, type and data (version and position are counted). */
export interface GivenEvent {
  stream: string;
  type: string;
  data: object;
}

/** What a commit left: its change log entry's parts, and the documents as they now stand. */
export interface Then extends AppliedCommit {
  /** The commit as applied. */
  commit: Commit;
  /** The generation written. */
  view: ReadView;
  /** A read model's document (without `_applied`), null when absent. */
  doc<D extends ReadDoc>(model: ReadModel<D>, id: string): Promise<Omit<D, '_applied'> | null>;
  /** Applies the next commit on top of this one. */
  when(...events: GivenEvent[]): Promise<Then>;
  /** Applies this same commit again (a replay after a crash). */
  replay(): Promise<AppliedCommit>;
}

/** The time of the commit at `position` (one minute apart, from 2025-01-01). */
export const commitTime = (position: number) =>
  new Date(Date.UTC(2025, 0, 1) + (position - 1) * 60_000);

/**
 * Given/when/then for projections, as `deciderTestKit` is for deciders: commits of
 * events (versions per stream and positions counted from 1, times from {@link commitTime})
 * applied by the runtime's own `applyCommit` to `models`' projections, in their declared
 * order, on the memory store.
 *
 * @example
 * const { when } = await given([cardCreated('c1')]);
 * const then = await when({ stream: 'card-c1', type: 'CardArchived', data: {} });
 * expect(await then.doc(cardReadModel, 'c1')).toMatchObject({ archived: true });
 * expect(then.invalidated).toEqual([...]);
 */
export async function given(
  commits: readonly (readonly GivenEvent[])[],
  models: readonly ReadModel[] = boardReadModels,
): Promise<{ view: ReadView; when: (...events: GivenEvent[]) => Promise<Then> }> {
  const projections = projectionsOf(models);
  const view = await createMemoryProjectorStorage().readModels.active();
  const versions = new Map<string, number>();
  let position = 0;
  const commitOf = (events: readonly GivenEvent[]): Commit => {
    position += 1;
    const at = commitTime(position);
    const commitId = `commit-${position}`;
    return {
      commitId,
      position,
      occurredAt: at,
      actor: 'u-actor',
      operation: 'test',
      metadata: {},
      idempotencyKey: null,
      events: events.map((e, i): RecordedEvent => {
        const version = (versions.get(e.stream) ?? 0) + 1;
        versions.set(e.stream, version);
        return {
          ...e,
          data: e.data as Record<string, unknown>,
          schemaVersion: 1,
          version,
          eventId: `${commitId}-${i}`,
          commitId,
          position,
          actor: 'u-actor',
          idempotencyKey: null,
          occurredAt: at,
        };
      }),
    };
  };
  const when = async (...events: GivenEvent[]): Promise<Then> => {
    const commit = commitOf(events);
    const applied = await applyCommit(commit, view, projections);
    return {
      ...applied,
      commit,
      view,
      doc: async <D extends ReadDoc>(model: ReadModel<D>, id: string) => {
        const found = await model.documents(view).get(id);
        if (!found) return null;
        const { _applied: _, ...rest } = found;
        return rest;
      },
      when,
      replay: () => applyCommit(commit, view, projections),
    };
  };
  for (const events of commits) await when(...events);
  return { view, when };
}
