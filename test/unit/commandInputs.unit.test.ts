import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { inputFieldsOf } from '../../src/graphql/commandMutation.js';

describe('command inputs as GraphQL input fields', () => {
  it('takes nullability from the spec: .nullable() is a nullable field (null clears), absent-only fields too', () => {
    const { fields } = inputFieldsOf(
      z.object({
        title: z.string(),
        dueDate: z.string().nullable(),
        note: z.string().optional(),
        assigneeId: z.string().nullish(),
      }),
      'TestInput',
    );
    expect(Object.fromEntries(fields.map((f) => [f.name, f.required]))).toEqual({
      title: true,
      dueDate: false,
      note: false,
      assigneeId: false,
    });
  });
});
