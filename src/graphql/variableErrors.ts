/**
 * graphql-js reports a variable that does not fit its type as `Variable "$input" got
 * invalid value <the value, printed>[ at "input.path"]; <why>`, quoting what the client
 * sent (a password, a whole document) back in the message. These say where and why
 * without the value: the path, and the reason when it names only types and fields.
 */

const VARIABLE_ERROR = /^Variable "\$(\w+)" got invalid value /;

/** Reasons that name no value, as graphql-js words them (they end the message). */
const VALUE_FREE_REASONS = [
  /Field "\w+" of required type "[^"]+" was not provided\.$/,
  /Field "\w+" is not defined by type "\w+"\./,
  /Expected type "\w+" to be an object\.$/,
  /Expected value of type "[^"]+", found null\.$/,
];

/**
 * A scalar or enum refusing the value: its type is named, the value left out. A custom
 * scalar's refusal is `Expected type "<name>". ` and the scalar's own words, which may
 * quote the value.
 */
const TYPE_REFUSAL =
  /; (?:(\w+) cannot represent|Value .* does not exist in "(\w+)" enum|Expected type "(\w+)"\.)/;

/** `message` without the variable value it quotes; any other message as it is. */
export function withoutVariableValue(message: string): string {
  const variable = VARIABLE_ERROR.exec(message);
  if (!variable) return message;
  const name = variable[1]!;
  // A printed string value escapes its quotes, so the first ` at "<name>` is the path.
  const at = new RegExp(` at "(${name}[\\w.[\\]]*)"; `).exec(message);
  const where = `Variable "$${name}" got an invalid value${at ? ` at "${at[1]}"` : ''}`;
  for (const reason of VALUE_FREE_REASONS) {
    const found = reason.exec(message);
    if (found) return `${where}; ${found[0]}`;
  }
  const refusal = TYPE_REFUSAL.exec(message);
  if (refusal) return `${where}; not a value of type "${refusal[1] ?? refusal[2] ?? refusal[3]}".`;
  return `${where}.`;
}
