/**
 * What every read document of an aggregate carries besides the aggregate's state: the
 * stream version it reflects and when it was created and last changed (commit times).
 */
export interface DocStamps {
  version: number;
  createdAt: Date;
  updatedAt: Date;
}

/**
 * The stamps of a document after one more event of its stream at `at`: created then when
 * it is new, else when it was.
 */
export function stampsAfter(
  current: { createdAt: Date } | null,
  version: number,
  at: Date,
): DocStamps {
  return { version, createdAt: current?.createdAt ?? at, updatedAt: at };
}

/** The stamps of a document folded from a whole stream (its first and last events). */
export function stampsOfStream(
  first: { occurredAt: Date },
  last: { version: number; occurredAt: Date },
): DocStamps {
  return { version: last.version, createdAt: first.occurredAt, updatedAt: last.occurredAt };
}
