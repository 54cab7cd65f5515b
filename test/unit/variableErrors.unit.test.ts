import { describe, expect, it } from 'vitest';
import { getVariableValues, parse, type OperationDefinitionNode } from 'graphql';
import { buildSchema } from '../../src/graphql/schema.js';
import { withoutVariableValue } from '../../src/graphql/variableErrors.js';

const secret = 'Hunter3-SECRET; at "input.x"; PW';
/** As graphql-js prints a string value (`inspect`): JSON, its quotes escaped. */
const printed = JSON.stringify(secret);

describe('withoutVariableValue', () => {
  it.each([
    [
      `Variable "$input" got invalid value { password: ${printed}, extra: 1 }; Field "extra" is not defined by type "SignInInput". Did you mean "username"?`,
      'Variable "$input" got an invalid value; Field "extra" is not defined by type "SignInInput".',
    ],
    [
      `Variable "$input" got invalid value 5 at "input.username"; String cannot represent a non string value: 5`,
      'Variable "$input" got an invalid value at "input.username"; not a value of type "String".',
    ],
    [
      `Variable "$n" got invalid value ${printed}; Int cannot represent non-integer value: ${printed}`,
      'Variable "$n" got an invalid value; not a value of type "Int".',
    ],
    [
      `Variable "$role" got invalid value ${printed}; Value ${printed} does not exist in "BoardRole" enum.`,
      'Variable "$role" got an invalid value; not a value of type "BoardRole".',
    ],
    [
      `Variable "$input" got invalid value { password: ${printed} }; Field "username" of required type "String!" was not provided.`,
      'Variable "$input" got an invalid value; Field "username" of required type "String!" was not provided.',
    ],
    [
      `Variable "$input" got invalid value ${printed}; Expected type "SignInInput" to be an object.`,
      'Variable "$input" got an invalid value; Expected type "SignInInput" to be an object.',
    ],
    [
      `Variable "$after" got invalid value ${printed}; something a custom scalar said about ${printed}`,
      'Variable "$after" got an invalid value.',
    ],
    [
      // graphql-js's words for a custom scalar that throws: the type, then the scalar's.
      `Variable "$after" got invalid value ${printed}; Expected type "Cursor". Not ${printed}`,
      'Variable "$after" got an invalid value; not a value of type "Cursor".',
    ],
  ])('drops the value from %s', (message, expected) => {
    expect(withoutVariableValue(message)).toBe(expected);
    expect(withoutVariableValue(message)).not.toContain('SECRET');
  });

  it('names the custom scalar that refused a value, as graphql-js reports it', () => {
    const { errors } = getVariableValues(
      buildSchema(),
      (
        parse(
          'subscription ($b: ID!, $after: Cursor) { boardChanges(boardId: $b, after: $after) { cursor } }',
        ).definitions[0] as OperationDefinitionNode
      ).variableDefinitions!,
      { b: 'x', after: secret },
    );
    expect(errors?.map((e) => withoutVariableValue(e.message))).toEqual([
      'Variable "$after" got an invalid value; not a value of type "Cursor".',
    ]);
  });

  it('leaves other messages as they are', () => {
    const message = 'Variable "$n" of required type "Int!" was not provided.';
    expect(withoutVariableValue(message)).toBe(message);
  });
});
