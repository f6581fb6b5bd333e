/**
 * vLLM's automatic prefix caching, by block hash: a prompt is cut into full blocks of BLOCK_SIZE tokens, each block's
 * hash chains its predecessor's (so a block only matches after the same prefix), and a request whose leading blocks
 * were computed before skips their prefill. Only full blocks are cached, and at least one prompt token is always
 * computed (vLLM needs it to produce the first output token). Bounded LRU: the least recently used block goes first.
 *
 * Simplification: cached blocks do not count against KV capacity while idle (vLLM keeps them in free blocks and evicts
 * them on demand), and two running requests sharing a prefix are each charged for it.
 */

/** vLLM's default block size (tokens per KV block). */
export const BLOCK_SIZE = 16;

export interface PrefixLookup {
  /** Prompt tokens served from the cache (a multiple of BLOCK_SIZE, below the prompt length). */
  cachedTokens: number;
}

export class PrefixCache {
  // Map iteration order is insertion order: re-inserting on use makes the first key the least recently used.
  private readonly blocks = new Map<number, true>();

  constructor(private readonly capacityBlocks: number) {}

  get size(): number {
    return this.blocks.size;
  }

  /** How much of a prompt of `promptTokens` tokens with these block hashes is already cached; refreshes their LRU age. */
  lookup(blockHashes: readonly number[], promptTokens: number): PrefixLookup {
    let hits = 0;
    for (const hash of blockHashes) {
      if (!this.blocks.has(hash)) break;
      this.blocks.delete(hash);
      this.blocks.set(hash, true);
      hits++;
    }
    // The last prompt token is always recomputed, so a fully cached prompt gives back its last block.
    const maxCached = Math.floor((promptTokens - 1) / BLOCK_SIZE) * BLOCK_SIZE;
    return { cachedTokens: Math.min(hits * BLOCK_SIZE, maxCached) };
  }

  /** Remember a computed prompt's full blocks, evicting the least recently used beyond capacity. */
  insert(blockHashes: readonly number[]): void {
    if (this.capacityBlocks <= 0) return;
    for (const hash of blockHashes) {
      this.blocks.delete(hash);
      this.blocks.set(hash, true);
    }
    for (const oldest of this.blocks.keys()) {
      if (this.blocks.size <= this.capacityBlocks) break;
      this.blocks.delete(oldest);
    }
  }
}
