import type { RecordedEvent } from './types.js';

/** Lifts `data` of one event type from schema version `from` to `from + 1`. */
export type Upcaster = (data: Record<string, unknown>) => Record<string, unknown>;

/**
 * Upcasters per event type, keyed by the version they lift from. Every read path
 * of the store (stream reads, readAll, the feed) passes events through `upcast`,
 * so command handlers and projections only ever see current shapes.
 */
export class UpcasterRegistry {
  readonly #byType = new Map<string, Map<number, Upcaster>>();

  /** Registers the step `from -> from + 1` for `type`. Registering a step twice is a bug. */
  register(type: string, from: number, upcaster: Upcaster): this {
    const steps = this.#byType.get(type) ?? new Map<number, Upcaster>();
    if (steps.has(from)) throw new Error(`upcaster ${type} v${from} registered twice`);
    steps.set(from, upcaster);
    this.#byType.set(type, steps);
    return this;
  }

  /** The event with its data lifted through every registered step. */
  upcast(event: RecordedEvent): RecordedEvent {
    const steps = this.#byType.get(event.type);
    if (!steps) return event;
    let { data, schemaVersion } = event;
    for (let step = steps.get(schemaVersion); step; step = steps.get(schemaVersion)) {
      data = step(data);
      schemaVersion += 1;
    }
    return schemaVersion === event.schemaVersion ? event : { ...event, data, schemaVersion };
  }
}
