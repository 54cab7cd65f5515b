import { builder } from './builder.js';

// The root operation types; feature files add their fields to them.
builder.queryType({ description: 'Everything a client can read.' });
builder.mutationType({
  description:
    'Every input may carry an idempotencyKey: retrying with the same key returns the first result and appends nothing new.',
});
