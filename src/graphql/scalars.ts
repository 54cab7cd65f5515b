import { GraphQLError, GraphQLScalarType, Kind } from 'graphql';
import { GraphQLDate, GraphQLDateTime } from 'graphql-scalars';
import { builder } from './builder.js';

/**
 * An instant. Parsing and validation are graphql-scalars' RFC 3339 `DateTime` (an offset
 * is required; `Z` or `+02:00`); answers are always `toISOString()`, UTC with
 * milliseconds, where graphql-scalars would hand the transport a `Date` to stringify.
 */
export const DateTimeScalar = new GraphQLScalarType<Date, string>({
  ...GraphQLDateTime.toConfig(),
  description:
    'An instant, as an ISO-8601 string in UTC, e.g. `2026-11-22T05:34:11.000Z`. As input, any RFC 3339 date-time with an offset.',
  serialize: (value) => GraphQLDateTime.serialize(value).toISOString(),
});

/**
 * A calendar date with no time or zone: graphql-scalars' RFC 3339 `full-date`. Answered
 * as `YYYY-MM-DD`; parsed to a `Date` at UTC midnight (impossible dates such as
 * `2026-02-30` are refused).
 */
export const DateScalar = new GraphQLScalarType<Date, string>({
  ...GraphQLDate.toConfig(),
  description: 'A calendar date, `YYYY-MM-DD` (RFC 3339 full-date), e.g. `2026-11-22`.',
});

builder.addScalarType('DateTime', DateTimeScalar);
builder.addScalarType('Date', DateScalar);

builder.scalarType('Cursor', {
  description: 'Opaque position in the change feed. Clients store it and hand it back.',
  serialize: (value) => String(value),
  parseValue: (value) => {
    if (typeof value !== 'string' || !/^\d{1,15}$/.test(value)) {
      // Not a GraphQLError: graphql-js then names the type ('Expected type "Cursor".'),
      // which is what a variable's error keeps once the value it quotes is dropped.
      throw new TypeError('Cursor must be a value received from boardChanges');
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
