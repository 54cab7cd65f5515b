import { decodeGlobalID, encodeGlobalID } from '@pothos/plugin-relay';
import type { ResourceType } from '../boards/errors.js';
import { NotFoundError, ValidationError } from '../boards/errors.js';

/** The global ID clients see for a resource: relay's base64 of `Type:id`. */
export function toGlobalId(type: ResourceType, id: string): string {
  return encodeGlobalID(type, id);
}

/**
 * The raw id inside a global ID of `type`. A malformed ID or one of another type is a
 * `ValidationError` naming `field`.
 */
export function fromGlobalId(globalId: string, type: ResourceType, field: string): string {
  let decoded: { typename: string; id: string };
  try {
    decoded = decodeGlobalID(globalId);
  } catch {
    throw new ValidationError(field, `not a valid ${type} ID`);
  }
  if (decoded.typename !== type) {
    throw new ValidationError(
      field,
      `expected a ${type} ID, got a ${decoded.typename || 'malformed'} ID`,
    );
  }
  if (!decoded.id) throw new NotFoundError(globalId, type);
  return decoded.id;
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
