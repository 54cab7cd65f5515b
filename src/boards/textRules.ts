import { z } from 'zod';

/**
 * What free text (names, titles, display names, labels, descriptions) may hold. One
 * zod schema factory, so every input field applies the same rules with the same words.
 *
 * Rejected anywhere: C0 and C1 control characters (one-line text: all of them;
 * multi-line text: all but tab, line feed and carriage return), Unicode bidirectional
 * formatting characters (embeddings, overrides, isolates and marks: they reorder what
 * people read, "Trojan Source"), and lone UTF-16 surrogates (not text at all; they
 * break JSON encoders and databases downstream).
 *
 * Lengths count Unicode code points ("characters" in every message), after trimming for
 * one-line text; an emoji built of several code points counts as several.
 */

// Matching control characters is the point of these two patterns.
/* eslint-disable no-control-regex */
const CONTROL_ONE_LINE = /[\u0000-\u001f\u007f-\u009f]/u;
const CONTROL_MULTI_LINE = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]/u;
/* eslint-enable no-control-regex */
const BIDI_FORMATTING = /[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/u;
/** A high surrogate not followed by a low one, or a low one not preceded by a high one. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** What is wrong with `value` as text, or null when nothing is. */
export function textProblem(value: string, options: { multiline?: boolean } = {}): string | null {
  if (LONE_SURROGATE.test(value)) {
    return 'must not contain lone UTF-16 surrogates';
  }
  if ((options.multiline ? CONTROL_MULTI_LINE : CONTROL_ONE_LINE).test(value)) {
    return options.multiline
      ? 'must not contain control characters other than tab and line breaks'
      : 'must not contain control characters (line breaks and tabs included)';
  }
  if (BIDI_FORMATTING.test(value)) {
    return 'must not contain bidirectional formatting characters (U+202A-U+202E, U+2066-U+2069, U+200E, U+200F, U+061C)';
  }
  return null;
}

/** Length in Unicode code points. */
export function codePointLength(value: string): number {
  let n = 0;
  for (const _ of value) n += 1;
  return n;
}

/**
 * A zod schema of text: one line (trimmed, 1 to `max` characters) by default; with
 * `multiline`, kept as typed and possibly empty (0 to `max` characters).
 */
export function textField(max: number, options: { multiline?: boolean } = {}) {
  const base = options.multiline ? z.string() : z.string().trim().min(1, 'must not be empty');
  return base.superRefine((value, ctx) => {
    const problem = textProblem(value, options);
    if (problem) {
      ctx.addIssue({ code: 'custom', message: problem });
    } else if (codePointLength(value) > max) {
      ctx.addIssue({
        code: 'custom',
        message: `must be at most ${max} characters (Unicode code points${options.multiline ? '' : ', after trimming'})`,
      });
    }
  });
}
