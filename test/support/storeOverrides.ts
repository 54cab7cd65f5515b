import type { EventStore } from '../../src/eventstore/types.js';

/**
 * `store` with some of its methods replaced (a test holding or interleaving appends and
 * reads); every other member is the store's own, its methods bound to it.
 */
export function withOverrides(store: EventStore, overrides: Partial<EventStore>): EventStore {
  return new Proxy(store, {
    get(target, property, receiver) {
      if (Object.hasOwn(overrides, property)) return overrides[property as keyof EventStore];
      const value: unknown = Reflect.get(target, property, receiver);
      return typeof value === 'function'
        ? ((value as (...args: unknown[]) => unknown).bind(target) as unknown)
        : value;
    },
  });
}
