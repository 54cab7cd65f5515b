import { ValidationError } from '../../src/boards/errors.js';

/** The `field` of the ValidationError `run` throws; fails the test when it throws nothing. */
export function validationField(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    if (error instanceof ValidationError) return error.field;
    throw error;
  }
  throw new Error('expected a ValidationError');
}
