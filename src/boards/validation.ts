import { z } from 'zod';
import { PASSWORD_LIMITS } from '../identity/passwords.js';
import { ValidationError, type ResourceType } from './errors.js';
import { textField } from './textRules.js';

/**
 * The pieces mutation inputs are made of: zod schemas that check and normalize
 * values, shared by the command specs in `<aggregate>/commands.ts`. Lengths count
 * UTF-16 code units after trimming (descriptions are not trimmed). Ids are not
 * checked here: an id that cannot exist is reported as `NotFoundError` by the
 * command layer.
 */

/** Input limits. */
export const inputLimits = {
  /** @default 3 */
  usernameMin: 3,
  /** @default 32 */
  usernameMax: 32,
  /** @default 64 */
  displayNameMax: 64,
  /** @default 100 */
  boardNameMax: 100,
  /** @default 60 */
  columnNameMax: 60,
  /** @default 200 */
  cardTitleMax: 200,
  /** @default 10_000 */
  descriptionMax: 10_000,
  /** Distinct labels per card. @default 20 */
  labelsMax: 20,
  /** @default 30 */
  labelMax: 30,
  /** @default 1_000 */
  wipLimitMax: 1_000,
  /**
   * Characters of a mutation's `idempotencyKey`. The store keeps a digest of it, so this
   * bounds what a client sends, not what is stored. @default 200
   */
  idempotencyKeyMax: 200,
} as const;

/** Characters a username may hold (after NFKC). */
export const USERNAME_PATTERN = /^[A-Za-z0-9_.-]+$/;

/**
 * A trimmed, non-empty string of at most `max` Unicode code points, without control
 * characters, bidi formatting characters or lone surrogates (`textRules.ts`).
 */
export const text = (max: number) => textField(max);

/**
 * The id of a resource of `type`: a raw id here, a global ID of that type in the
 * GraphQL input built from the schema (which decodes it before the command sees it).
 */
export const resourceId = (type: ResourceType) => z.string().meta({ globalIdOf: type });

/** An optional resource id; null reads as omitted. */
export const optionalResourceId = (type: ResourceType) =>
  z
    .string()
    .nullish()
    .transform((v) => v ?? undefined)
    .meta({ globalIdOf: type });

/**
 * Where a card or column goes among its siblings: `after<Type>Id`, `before<Type>Id`, both
 * (the item goes right after the first; the second must come after it), or neither (at the end).
 */
export const placement = (type: 'Card' | 'Column') => {
  const sibling = type.toLowerCase();
  return {
    after: optionalResourceId(type).describe(
      `Place right after this ${sibling}; with neither this nor before${type}Id, at the end.`,
    ),
    before: optionalResourceId(type).describe(
      `Place right before this ${sibling}. With after${type}Id as well, it must come after that ${sibling}, and the place is right after after${type}Id.`,
    ),
  };
};

/** Retrying with the same key returns the first result and appends nothing new. */
export const idempotencyKey = z
  .string()
  // Empty, it would be one key for every request of its caller: a client's mistake.
  .min(1, 'must not be empty (omit it for no key)')
  .max(inputLimits.idempotencyKeyMax, `must be at most ${inputLimits.idempotencyKeyMax} characters`)
  .nullish()
  .transform((v) => v ?? undefined)
  .describe(
    `Retrying with the same key returns the first result and writes nothing new; 1 to ${inputLimits.idempotencyKeyMax} characters.`,
  );

/** The version of the resource the client based its write on. */
export const expectedVersion = z.number().int('must be an integer').min(0, 'must not be negative');

export const username = z
  .string()
  .normalize('NFKC')
  .min(inputLimits.usernameMin, `must be at least ${inputLimits.usernameMin} characters`)
  .max(inputLimits.usernameMax, `must be at most ${inputLimits.usernameMax} characters`)
  .regex(USERNAME_PATTERN, 'may only hold letters A-Z, a-z, digits and _ . -');

/**
 * A new password: `PASSWORD_LIMITS` long (UTF-16 code units), kept as typed (not
 * trimmed: spaces inside and around it are part of it), but not whitespace alone (eight
 * spaces are no secret). Only `setPassword` sets one; `signIn` compares whatever is sent.
 */
export const password = z
  .string()
  // zod's min/max count code points; the rule is UTF-16 code units (`length`).
  .refine(
    (value) => value.length >= PASSWORD_LIMITS.min,
    `must be at least ${PASSWORD_LIMITS.min} characters`,
  )
  .refine(
    (value) => value.length <= PASSWORD_LIMITS.max,
    `must be at most ${PASSWORD_LIMITS.max} characters`,
  )
  .refine((value) => /\S/u.test(value), 'must not be whitespace alone');

/** A WIP limit, or null for none; omitted reads as null. */
export const wipLimit = z
  .number()
  .int('must be an integer or null')
  .min(0, 'must not be negative')
  .max(inputLimits.wipLimitMax, `must be at most ${inputLimits.wipLimitMax}`)
  .nullable()
  .optional()
  .transform((v) => v ?? null);

export const labels = z
  .array(text(inputLimits.labelMax))
  .transform((list) => [...new Set(list)])
  .pipe(z.array(z.string()).max(inputLimits.labelsMax, `at most ${inputLimits.labelsMax} labels`));

/** Free text that may span lines (tab and line breaks allowed); not trimmed. */
export const description = textField(inputLimits.descriptionMax, { multiline: true });

/**
 * `input` checked and normalized by `schema`, or a `ValidationError` for the first
 * problem, its field named like `input.title` or `input.labels.3`.
 */
export function parseInput<S extends z.ZodType>(
  schema: S,
  input: unknown,
): { ok: true; value: z.output<S> } | { ok: false; error: ValidationError } {
  const parsed = schema.safeParse(input);
  if (parsed.success) return { ok: true, value: parsed.data };
  const issue = parsed.error.issues[0];
  const path = ['input', ...(issue?.path ?? []).map(String)].join('.');
  return { ok: false, error: new ValidationError(path, issue?.message ?? 'is invalid') };
}
