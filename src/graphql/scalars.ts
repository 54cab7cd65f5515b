import { GraphQLError, Kind } from 'graphql';
import { builder } from './builder.js';

const toDate = (value: unknown): Date => {
  const date = new Date(typeof value === 'string' || typeof value === 'number' ? value : NaN);
  if (Number.isNaN(date.getTime())) throw new GraphQLError('DateTime must be an ISO-8601 string');
  return date;
};

builder.scalarType('DateTime', {
  description: 'An instant, as an ISO-8601 string in UTC, e.g. `2026-11-22T05:34:11.000Z`.',
  serialize: (value) => (value instanceof Date ? value : toDate(value)).toISOString(),
  parseValue: toDate,
  parseLiteral: (ast) => {
    if (ast.kind !== Kind.STRING) throw new GraphQLError('DateTime must be a string');
    return toDate(ast.value);
  },
});

builder.scalarType('Cursor', {
  description: 'Opaque position in the change feed. Clients store it and hand it back.',
  serialize: (value) => String(value),
  parseValue: (value) => {
    if (typeof value !== 'string' || !/^\d{1,15}$/.test(value)) {
      throw new GraphQLError('Cursor must be a value received from boardChanges');
    }
    return value;
  },
  parseLiteral: (ast) => {
    if (ast.kind !== Kind.STRING || !/^\d{1,15}$/.test(ast.value)) {
      throw new GraphQLError('Cursor must be a value received from boardChanges');
    }
    return ast.value;
  },
});
