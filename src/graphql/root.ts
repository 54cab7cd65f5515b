import { builder } from './builder.js';

// The root operation types; feature files add their fields to them.
builder.queryType({ description: 'Everything a client can read.' });
