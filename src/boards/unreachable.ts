/**
 * Ends a `switch` over a union: compiles only when every member was handled, and
 * fails loudly if a value outside the union shows up at run time anyway.
 */
export function unreachable(value: never): never {
  throw new Error(`unexpected value ${JSON.stringify(value)}`);
}
