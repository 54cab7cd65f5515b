/** Unwraps a mutation result's success member, throwing with the whole result otherwise. */
export function expectSuccess<R extends { __typename: string }, T extends R['__typename']>(
  result: R,
  typename: T,
): Extract<R, { __typename: T }> {
  if (result.__typename !== typename)
    throw new Error(`expected ${typename}: ${JSON.stringify(result)}`);
  return result as Extract<R, { __typename: T }>;
}
