import { z } from 'zod';
import type { CardChanges } from './card/events.js';
import { ValidationError } from './errors.js';
import { textField } from './textRules.js';

/**
 * Mutation inputs as the public contract declares them, and the zod schemas that
 * check and normalize them. Free text follows `textRules.ts`: lengths count Unicode code
 * points after trimming (descriptions are not trimmed); control characters, bidi
 * formatting characters and lone surrogates are refused. Ids are not checked here: an id that cannot
 * exist is reported as `NotFoundError` by the command layer.
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
} as const;

/** Characters a username may hold (after NFKC). */
export const USERNAME_PATTERN = /^[A-Za-z0-9_.-]+$/;

const text = (max: number) => textField(max);

const optionalId = z
  .string()
  .nullish()
  .transform((v) => v ?? undefined);

const idempotencyKey = z
  .string()
  .nullish()
  .transform((v) => v ?? undefined);

const expectedVersion = z.number().int('must be an integer').min(0, 'must not be negative');

const username = z
  .string()
  .normalize('NFKC')
  .min(inputLimits.usernameMin, `must be at least ${inputLimits.usernameMin} characters`)
  .max(inputLimits.usernameMax, `must be at most ${inputLimits.usernameMax} characters`)
  .regex(USERNAME_PATTERN, 'may only hold letters A-Z, a-z, digits and _ . -');

const wipLimit = z
  .number()
  .int('must be an integer or null')
  .min(0, 'must not be negative')
  .max(inputLimits.wipLimitMax, `must be at most ${inputLimits.wipLimitMax}`)
  .nullable();

const labels = z
  .array(text(inputLimits.labelMax))
  .transform((list) => [...new Set(list)])
  .pipe(z.array(z.string()).max(inputLimits.labelsMax, `at most ${inputLimits.labelsMax} labels`));

const description = textField(inputLimits.descriptionMax, { multiline: true });

export interface RegisterUserInput {
  /** 3-32 of `[A-Za-z0-9_.-]` after NFKC; unique ignoring case. */
  username: string;
  /** 1-64 characters after trimming. */
  displayName: string;
  idempotencyKey?: string | null;
}
export const registerUserInput = z.object({
  username,
  displayName: text(inputLimits.displayNameMax),
  idempotencyKey,
});

export interface CreateBoardInput {
  /** 1-100 characters after trimming. */
  name: string;
  idempotencyKey?: string | null;
}
export const createBoardInput = z.object({ name: text(inputLimits.boardNameMax), idempotencyKey });

export interface RenameBoardInput {
  boardId: string;
  name: string;
  expectedVersion: number;
  idempotencyKey?: string | null;
}
export const renameBoardInput = z.object({
  boardId: z.string(),
  name: text(inputLimits.boardNameMax),
  expectedVersion,
  idempotencyKey,
});

export interface AddMemberInput {
  boardId: string;
  username: string;
  expectedVersion: number;
  idempotencyKey?: string | null;
}
export const addMemberInput = z.object({
  boardId: z.string(),
  username,
  expectedVersion,
  idempotencyKey,
});

export interface AddColumnInput {
  boardId: string;
  /** 1-60 characters after trimming. */
  name: string;
  /** null or omitted = no limit; otherwise 0-1000. */
  wipLimit?: number | null;
  /** Insert right after this column. */
  afterColumnId?: string | null;
  /**
   * Insert right before this column (an addition to the contract, which only has
   * `afterColumnId`). Both omitted = at the end.
   */
  beforeColumnId?: string | null;
  /** The board's version. */
  expectedVersion: number;
  idempotencyKey?: string | null;
}
export const addColumnInput = z.object({
  boardId: z.string(),
  name: text(inputLimits.columnNameMax),
  wipLimit: wipLimit.optional().transform((v) => v ?? null),
  afterColumnId: optionalId,
  beforeColumnId: optionalId,
  expectedVersion,
  idempotencyKey,
});

export interface MoveColumnInput {
  columnId: string;
  /** Move right after this column. */
  afterColumnId?: string | null;
  /**
   * Move right before this column (an addition to the contract: without it, no
   * single move could make a column the first). Both omitted = to the end.
   */
  beforeColumnId?: string | null;
  /** The BOARD's version: the board owns the column order. */
  expectedVersion: number;
  idempotencyKey?: string | null;
}
export const moveColumnInput = z.object({
  columnId: z.string(),
  afterColumnId: optionalId,
  beforeColumnId: optionalId,
  expectedVersion,
  idempotencyKey,
});

export interface SetWipLimitInput {
  columnId: string;
  /** null = no limit; otherwise 0-1000. */
  wipLimit?: number | null;
  /** The column's version. */
  expectedVersion: number;
  idempotencyKey?: string | null;
}
export const setWipLimitInput = z.object({
  columnId: z.string(),
  wipLimit: wipLimit.optional().transform((v) => v ?? null),
  expectedVersion,
  idempotencyKey,
});

export interface AddCardInput {
  columnId: string;
  /** 1-200 characters after trimming. */
  title: string;
  /** At most 10,000 characters. @default '' */
  description?: string | null;
  afterCardId?: string | null;
  beforeCardId?: string | null;
  idempotencyKey?: string | null;
}
export const addCardInput = z.object({
  columnId: z.string(),
  title: text(inputLimits.cardTitleMax),
  description: description.nullish().transform((v) => v ?? ''),
  afterCardId: optionalId,
  beforeCardId: optionalId,
  idempotencyKey,
});

/**
 * Only the fields given change. null means "not given", except for `assigneeId`,
 * where null unassigns and omitted leaves it as is.
 */
export interface EditCardInput {
  cardId: string;
  expectedVersion: number;
  title?: string | null;
  description?: string | null;
  assigneeId?: string | null;
  /** At most 20 after de-duplication, each 1-30 characters after trimming. */
  labels?: readonly string[] | null;
  done?: boolean | null;
  idempotencyKey?: string | null;
}
export const editCardInput = z
  .object({
    cardId: z.string(),
    expectedVersion,
    title: text(inputLimits.cardTitleMax).nullish(),
    description: description.nullish(),
    assigneeId: z.string().nullable().optional(),
    labels: labels.nullish(),
    done: z.boolean().nullish(),
    idempotencyKey,
  })
  .transform(({ cardId, expectedVersion, idempotencyKey, ...fields }) => {
    const changes: CardChanges = {};
    if (fields.title != null) changes.title = fields.title;
    if (fields.description != null) changes.description = fields.description;
    if (fields.assigneeId !== undefined) changes.assigneeId = fields.assigneeId;
    if (fields.labels != null) changes.labels = fields.labels;
    if (fields.done != null) changes.done = fields.done;
    return { cardId, expectedVersion, idempotencyKey, changes };
  });

export interface MoveCardInput {
  cardId: string;
  toColumnId: string;
  afterCardId?: string | null;
  beforeCardId?: string | null;
  /** The card's version as the client saw it. */
  expectedVersion: number;
  idempotencyKey?: string | null;
}
export const moveCardInput = z.object({
  cardId: z.string(),
  toColumnId: z.string(),
  afterCardId: optionalId,
  beforeCardId: optionalId,
  expectedVersion,
  idempotencyKey,
});

export interface ArchiveCardInput {
  cardId: string;
  expectedVersion: number;
  idempotencyKey?: string | null;
}
export const archiveCardInput = z.object({ cardId: z.string(), expectedVersion, idempotencyKey });

export interface ArchiveDoneCardsInput {
  columnId: string;
  idempotencyKey?: string | null;
}
export const archiveDoneCardsInput = z.object({ columnId: z.string(), idempotencyKey });

/**
 * `input` checked and normalized by `schema`. Throws `ValidationError` for the first
 * problem, its field named like `input.title` or `input.labels.3`.
 */
export function parseInput<S extends z.ZodType>(schema: S, input: unknown): z.output<S> {
  const parsed = schema.safeParse(input);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const path = ['input', ...(issue?.path ?? []).map(String)].join('.');
  throw new ValidationError(path, issue?.message ?? 'is invalid');
}
