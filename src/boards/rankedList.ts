import { createRequire } from 'node:module';
import type SortedBTree from 'sorted-btree';

// sorted-btree is CommonJS with its class on `exports.default`; loading it through
// `require` gives the same object under Node and under the test runner's transform.
const require = createRequire(import.meta.url);
const { default: BTree } = require('sorted-btree') as typeof SortedBTree;
type BTreeType<K, V> = SortedBTree.default<K, V>;
/** Builds a tree from keys in strictly ascending order in O(n) (sorted-btree's own). */
const { bulkLoad } = require('sorted-btree/extended/bulkLoad') as {
  bulkLoad: <K, V>(
    keys: K[],
    values: V[],
    maxNodeSize: number,
    compare: (a: K, b: K) => number,
  ) => BTreeType<K, V>;
};

/**
 * Plain string order (UTF-16 code units), as `<` compares. The library's default
 * comparator gives strings the same order but first tests for numbers and mixed
 * types, which costs about twice as much per comparison.
 */
const compareStrings = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
/** sorted-btree's default branching factor. */
const NODE_SIZE = 32;
const emptyTree = () => new BTree<string, string>(undefined, compareStrings, NODE_SIZE);

/** One ordered sibling: a card in a column or a column on a board. */
export interface Ranked {
  id: string;
  rank: string;
}

/**
 * `rank` and `id` as one key whose plain string order is (rank, id) order: ranks
 * never contain U+0000, which sorts before every character they do contain.
 */
const keyOf = (rank: string, id: string): string => `${rank}\u0000${id}`;
const rankOfKey = (key: string): string => key.slice(0, key.indexOf('\u0000'));
const idOfKey = (key: string): string => key.slice(key.indexOf('\u0000') + 1);

/**
 * An immutable list of items ordered by rank, for columns of any size: lookups by id
 * and by rank, inserts, moves and removals cost O(log n), and every "changed" list
 * shares all but O(log n) of its nodes with the one it came from (two copy-on-write
 * B+ trees from `sorted-btree`, whose `clone()` is O(1)). So folding a stream of n
 * card events costs O(n log n), never a sort per event.
 */
export class RankedList implements Iterable<Ranked> {
  static readonly empty = new RankedList(emptyTree(), emptyTree());

  /** (rank, id) key -> id. */
  readonly #byRank: BTreeType<string, string>;
  /** id -> rank. */
  readonly #byId: BTreeType<string, string>;

  private constructor(byRank: BTreeType<string, string>, byId: BTreeType<string, string>) {
    this.#byRank = byRank;
    this.#byId = byId;
  }

  /**
   * A list of `items` (in any order; an id given twice keeps its last rank). Built in
   * bulk, O(n log n): two sorts (the one by rank is cheap on items in rank order, as a
   * snapshot gives them) and two bulk loads, no insert one by one.
   */
  static from(items: Iterable<Ranked>): RankedList {
    const ranks = new Map<string, string>();
    for (const { id, rank } of items) ranks.set(id, rank);
    // `sort()` without a comparator orders strings by UTF-16 code units, as
    // `compareStrings` does, several times faster than with one.
    const keys = [...ranks].map(([id, rank]) => keyOf(rank, id)).sort();
    const ids = [...ranks.keys()].sort();
    return new RankedList(
      bulkLoad(keys, keys.map(idOfKey), NODE_SIZE, compareStrings),
      bulkLoad(
        ids,
        ids.map((id) => ranks.get(id)!),
        NODE_SIZE,
        compareStrings,
      ),
    );
  }

  get size(): number {
    return this.#byId.size;
  }

  has(id: string): boolean {
    return this.#byId.has(id);
  }

  /** The rank of `id`, undefined when it is not in the list. */
  rankOf(id: string): string | undefined {
    return this.#byId.get(id);
  }

  /** Whether an item holds exactly `rank`. */
  hasRank(rank: string): boolean {
    // `keyOf(rank, '')` sorts right before every key of that rank (ids are never empty).
    const next = this.#byRank.nextHigherKey(keyOf(rank, ''));
    return next !== undefined && rankOfKey(next) === rank;
  }

  /** This list with `id` at `rank` (added, or moved from its old rank). */
  with(id: string, rank: string): RankedList {
    const byRank = this.#byRank.clone();
    const byId = this.#byId.clone();
    const old = byId.get(id);
    if (old !== undefined) byRank.delete(keyOf(old, id));
    byRank.set(keyOf(rank, id), id);
    byId.set(id, rank);
    return new RankedList(byRank, byId);
  }

  /** This list without `ids` (ids not in it are ignored). */
  without(ids: Iterable<string>): RankedList {
    const byRank = this.#byRank.clone();
    const byId = this.#byId.clone();
    for (const id of ids) {
      const old = byId.get(id);
      if (old === undefined) continue;
      byRank.delete(keyOf(old, id));
      byId.delete(id);
    }
    return new RankedList(byRank, byId);
  }

  /** This list with new ranks for the items named in `ranks` (others are ignored). */
  withRanks(ranks: Readonly<Record<string, string>>): RankedList {
    const byRank = this.#byRank.clone();
    const byId = this.#byId.clone();
    for (const [id, rank] of Object.entries(ranks)) {
      const old = byId.get(id);
      if (old === undefined) continue;
      byRank.delete(keyOf(old, id));
      byRank.set(keyOf(rank, id), id);
      byId.set(id, rank);
    }
    return new RankedList(byRank, byId);
  }

  /** The first item, in rank order. */
  first(): Ranked | undefined {
    return this.after(undefined);
  }

  /** The last item, in rank order. */
  last(): Ranked | undefined {
    return this.before(undefined);
  }

  /** The item right after `id` (undefined: the first item). */
  after(id: string | undefined): Ranked | undefined {
    const pair = this.#byRank.nextHigherPair(this.#keyOfId(id));
    return pair && { id: pair[1], rank: rankOfKey(pair[0]) };
  }

  /** The item right before `id` (undefined: the last item). */
  before(id: string | undefined): Ranked | undefined {
    const pair = this.#byRank.nextLowerPair(this.#keyOfId(id));
    return pair && { id: pair[1], rank: rankOfKey(pair[0]) };
  }

  /** Items in rank order, from `fromId` (included; undefined: the first). */
  *ascending(fromId?: string): IterableIterator<Ranked> {
    for (const [key, id] of this.#byRank.entries(this.#keyOfId(fromId))) {
      yield { id, rank: rankOfKey(key) };
    }
  }

  /** Items in reverse rank order, from `fromId` (included; undefined: the last). */
  *descending(fromId?: string): IterableIterator<Ranked> {
    for (const [key, id] of this.#byRank.entriesReversed(this.#keyOfId(fromId))) {
      yield { id, rank: rankOfKey(key) };
    }
  }

  [Symbol.iterator](): IterableIterator<Ranked> {
    return this.ascending();
  }

  /** Every item in rank order, as a new array. */
  toArray(): Ranked[] {
    return [...this];
  }

  #keyOfId(id: string | undefined): string | undefined {
    if (id === undefined) return undefined;
    const rank = this.#byId.get(id);
    if (rank === undefined) throw new Error(`RankedList: ${id} is not in the list`);
    return keyOf(rank, id);
  }
}
