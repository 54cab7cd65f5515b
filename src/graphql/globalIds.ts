import { decodeGlobalID, encodeGlobalID } from '@pothos/plugin-relay';
import type { ResourceType } from '../boards/errors.js';
import { NotFoundError, ValidationError } from '../boards/errors.js';

/** The global ID clients see for a resource: relay's base64 of `Type:id`. */
export function toGlobalId(type: ResourceType, id: string): string {
  return encodeGlobalID(type, id);
}

/**
 * The raw id inside a global ID of `type`, or the error to answer with: a malformed
 * ID or one of another type is a `ValidationError` naming `field`; one with an
 * empty id names nothing (`NotFoundError`).
 */
export function decodeGlobalId(
  globalId: string,
  type: ResourceType,
  field: string,
): { ok: true; value: string } | { ok: false; error: ValidationError | NotFoundError } {
  let decoded: { typename: string; id: string };
  try {
    decoded = decodeGlobalID(globalId);
  } catch {
    return { ok: false, error: new ValidationError(field, `not a valid ${type} ID`) };
  }
  if (decoded.typename !== type) {
    const got = decoded.typename || 'malformed';
    return {
      ok: false,
      error: new ValidationError(field, `expected a ${type} ID, got a ${got} ID`),
    };
  }
  if (!decoded.id) return { ok: false, error: new NotFoundError(decoded.id, type) };
  return { ok: true, value: decoded.id };
}

/** The raw id inside a global ID of `type`, or null for anything else (reads as absent). */
export function rawIdOf(globalId: string, type: ResourceType): string | null {
  try {
    const decoded = decodeGlobalID(globalId);
    return decoded.typename === type && decoded.id ? decoded.id : null;
  } catch {
    return null;
  }
}
