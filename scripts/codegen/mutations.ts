/**
 * Writes the SDK's mutation documents, src/sdk/generated/mutations.graphql, from the
 * schema and the fragments of src/sdk/operations: one document per mutation of the
 * schema (but the admin API's), selecting its whole result union, so that a new
 * mutation is in the SDK with no document written by hand. With --check, writes
 * nothing and exits 1 when the committed file is stale. `npm run codegen` runs it
 * before graphql-codegen, which then reads the file with the hand-written operations.
 *
 * What a mutation selects:
 * - `__typename`, then its success type's fields: every scalar and enum, and each
 *   object through the fragment named after its type (`...BoardFields` for a
 *   `Board`); a type without one fails the generation.
 * - Columns returned by a mutation on cards (its name ends in `Card` or `Cards`) also
 *   select `...ColumnCardPage` with the Board query's `$cardsPerColumn` default: the
 *   mutation changed which cards they hold, and a normalized cache gets their first
 *   cards as the Board query shows them.
 * - `...ErrorFields`, and before it, for an error type of the union that ErrorFields
 *   does not cover, its own scalar fields.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import {
  buildSchema,
  getNamedType,
  isEnumType,
  isScalarType,
  isUnionType,
  Kind,
  parse,
  print,
  type FragmentDefinitionNode,
  type GraphQLField,
  type GraphQLObjectType,
  type GraphQLSchema,
  type OperationDefinitionNode,
} from 'graphql';

/** The admin API's mutations (src/ops): sent with the admin token, not by the SDK. */
const ADMIN_MUTATIONS: ReadonlySet<string> = new Set(['rebuildReadModels', 'cancelRebuild']);
const ERROR_INTERFACE = 'Error';
const ERROR_FRAGMENT = 'ErrorFields';
const CARD_PAGE = { fragment: 'ColumnCardPage', type: 'Column', variable: 'cardsPerColumn' };

/** The hand-written operations and fragments the generated documents build on. */
export interface HandWritten {
  fragments: ReadonlyMap<string, FragmentDefinitionNode>;
  /** `$cardsPerColumn`'s default in the Board query, printed (`100`). */
  cardsPerColumn: string;
}

/** Reads the fragments and the Board query's card page size from `dir`'s documents. */
export function readHandWritten(dir: string): HandWritten {
  const definitions = readdirSync(dir)
    .filter((file) => file.endsWith('.graphql'))
    .sort()
    .flatMap((file) => parse(readFileSync(join(dir, file), 'utf8')).definitions);
  const fragments = new Map(
    definitions
      .filter((d): d is FragmentDefinitionNode => d.kind === Kind.FRAGMENT_DEFINITION)
      .map((d) => [d.name.value, d]),
  );
  const board = definitions.find(
    (d): d is OperationDefinitionNode =>
      d.kind === Kind.OPERATION_DEFINITION && d.name?.value === 'Board',
  );
  const page = board?.variableDefinitions?.find(
    (v) => v.variable.name.value === CARD_PAGE.variable,
  )?.defaultValue;
  if (!page) throw new Error(`the Board query gives no default to $${CARD_PAGE.variable}`);
  return { fragments, cardsPerColumn: print(page) };
}

const scalarOrEnum = (field: GraphQLField<unknown, unknown>) => {
  const type = getNamedType(field.type);
  return isScalarType(type) || isEnumType(type);
};

/** The types `... on T` names inside `fragment`. */
const typesCoveredBy = (fragment: FragmentDefinitionNode) =>
  new Set(
    fragment.selectionSet.selections.flatMap((s) =>
      s.kind === Kind.INLINE_FRAGMENT && s.typeCondition ? [s.typeCondition.name.value] : [],
    ),
  );

function successSelection(
  mutation: string,
  success: GraphQLObjectType,
  { fragments }: HandWritten,
): { lines: string[]; cardPage: boolean } {
  let cardPage = false;
  const lines = Object.values(success.getFields()).map((field) => {
    if (scalarOrEnum(field)) return field.name;
    const type = getNamedType(field.type);
    const fragment = `${type.name}Fields`;
    if (!fragments.has(fragment)) {
      throw new Error(`${mutation}: no fragment ${fragment} for ${success.name}.${field.name}`);
    }
    const spreads = [`...${fragment}`];
    if (type.name === CARD_PAGE.type && /Cards?$/.test(mutation)) {
      spreads.push(`...${CARD_PAGE.fragment}`);
      cardPage = true;
    }
    return `${field.name} { ${spreads.join(' ')} }`;
  });
  return { lines, cardPage };
}

/** One mutation's document, printed. */
function mutationDocument(field: GraphQLField<unknown, unknown>, handWritten: HandWritten): string {
  const name = field.name.charAt(0).toUpperCase() + field.name.slice(1);
  const result = getNamedType(field.type);
  if (!isUnionType(result)) throw new Error(`${field.name}: its result is not a union`);
  const isError = (t: GraphQLObjectType) =>
    t.getInterfaces().some((i) => i.name === ERROR_INTERFACE);
  const [success, ...more] = result.getTypes().filter((t) => !isError(t));
  if (!success || more.length > 0) throw new Error(`${field.name}: not exactly one success type`);
  const errorFields = handWritten.fragments.get(ERROR_FRAGMENT);
  if (!errorFields) throw new Error(`no fragment ${ERROR_FRAGMENT}`);
  const covered = typesCoveredBy(errorFields);
  const errorLines = result
    .getTypes()
    .filter((t) => isError(t) && !covered.has(t.name))
    .flatMap((t) => {
      const inherited = new Set(t.getInterfaces().flatMap((i) => Object.keys(i.getFields())));
      const own = Object.values(t.getFields()).filter((f) => !inherited.has(f.name));
      if (own.some((f) => !scalarOrEnum(f))) {
        throw new Error(`${field.name}: ${t.name} has object fields; add it to ${ERROR_FRAGMENT}`);
      }
      return own.length > 0 ? [`... on ${t.name} { ${own.map((f) => f.name).join(' ')} }`] : [];
    });
  const { lines, cardPage } = successSelection(field.name, success, handWritten);
  const variables = field.args.map((a) => `$${a.name}: ${a.type.toString()}`);
  if (cardPage) variables.push(`$${CARD_PAGE.variable}: Int = ${handWritten.cardsPerColumn}`);
  const args = field.args.map((a) => `${a.name}: $${a.name}`);
  const source = [
    `mutation ${name}${variables.length > 0 ? `(${variables.join(', ')})` : ''} {`,
    `${field.name}${args.length > 0 ? `(${args.join(', ')})` : ''} {`,
    '__typename',
    `... on ${success.name} { ${lines.join(' ')} }`,
    ...errorLines,
    `...${ERROR_FRAGMENT}`,
    '} }',
  ].join('\n');
  const comment = (field.description ?? '')
    .split('\n')
    .filter((line) => line.length > 0)
    .map((line) => `# ${line}\n`)
    .join('');
  return comment + print(parse(source));
}

/** Every SDK mutation document of `schema`, in the schema's order of mutations. */
export function mutationDocuments(schema: GraphQLSchema, handWritten: HandWritten): string {
  const fields = Object.values(schema.getMutationType()?.getFields() ?? {}).filter(
    (f) => !ADMIN_MUTATIONS.has(f.name),
  );
  return [
    '# Generated by `npm run codegen` from the schema and src/sdk/operations/fragments.graphql.',
    '# Do not edit: see scripts/codegen/mutations.ts.',
    '',
    fields.map((f) => mutationDocument(f, handWritten)).join('\n\n'),
    '',
  ].join('\n');
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const root = new URL('../../', import.meta.url);
  const target = new URL('src/sdk/generated/mutations.graphql', root);
  const schema = buildSchema(await readFile(new URL('schema/schema.graphql', root), 'utf8'));
  const text = mutationDocuments(
    schema,
    readHandWritten(fileURLToPath(new URL('src/sdk/operations', root))),
  );
  if (process.argv.includes('--check')) {
    const committed = await readFile(target, 'utf8').catch(() => '');
    if (committed !== text) {
      console.error('src/sdk/generated/mutations.graphql is stale: run `npm run codegen`.');
      process.exit(1);
    }
  } else {
    await writeFile(target, text);
  }
}
