/** Longest error message sent to a client; longer ones are cut (they may quote input). */
export const MAX_ERROR_MESSAGE_LENGTH = 300;

/** `text` as a client may see it in an error: at most {@link MAX_ERROR_MESSAGE_LENGTH}, then cut. */
export function boundedMessage(text: string): string {
  return text.length > MAX_ERROR_MESSAGE_LENGTH
    ? `${text.slice(0, MAX_ERROR_MESSAGE_LENGTH)}… (cut)`
    : text;
}
