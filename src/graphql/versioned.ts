import { builder } from './builder.js';

/** Anything guarded by optimistic concurrency. */
export const VersionedInterface = builder.interfaceRef<{ version: number }>('Versioned').implement({
  description:
    'Anything guarded by optimistic concurrency. Pass `version` back as `expectedVersion`.',
  fields: (t) => ({ version: t.exposeInt('version') }),
});
