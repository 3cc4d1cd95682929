/** A small deterministic PRNG (mulberry32): for code whose results must not depend on Math.random. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A standard normal draw (Box–Muller) from a uniform source. */
export function gaussian(r: () => number): number {
  return Math.sqrt(-2 * Math.log(r() + 1e-300)) * Math.cos(2 * Math.PI * r());
}

/**
 * The seed of one random variable or stream, derived from the run seed and a stable key (e.g. the
 * variable's checkpoint path) by hashing, never by arithmetic such as `seed * 16 + i`: tfjs treats a
 * seed of 0 (any falsy seed) as "no seed" and falls back to Math.random, so arithmetic that can reach
 * 0 (at run seed 0, block 0) silently made such runs irreproducible. The result is an integer in
 * [1, 2^31 − 1], so it is truthy and exact as a float, and distinct keys give unrelated seeds.
 */
export function deriveSeed(runSeed: number, key: string): number {
  if (!Number.isSafeInteger(runSeed) || runSeed < 0) throw new Error(`run seed must be a whole number ≥ 0, got ${runSeed}`);
  if (!key) throw new Error('deriveSeed needs a non-empty key');
  // FNV-1a (32 bit) over the UTF-16 code units of "<runSeed>|<key>", then a mulberry32 round to spread
  // the bits (FNV alone maps keys that differ only in the last character to nearby values).
  let h = 0x811c9dc5;
  const text = `${runSeed}|${key}`;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  const mixed = Math.floor(mulberry32(h)() * 4294967296);
  return (mixed % 2147483647) + 1;
}
