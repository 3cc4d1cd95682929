import { distance } from 'fastest-levenshtein';

/**
 * " (did you mean "protonet"?)" for a mistyped name, or "" when no known name is close: the known names within
 * an edit distance of a third of the longer name (at least 1, at most 3), closest first, ties all named.
 */
export function didYouMean(word: string, known: readonly string[]): string {
  let best = Infinity;
  let close: string[] = [];
  for (const name of new Set(known)) {
    const d = distance(word.toLowerCase(), name.toLowerCase());
    const limit = Math.min(3, Math.max(1, Math.floor(Math.max(word.length, name.length) / 3)));
    if (d > limit || d > best) continue;
    if (d < best) [best, close] = [d, []];
    close.push(name);
  }
  return close.length ? ` (did you mean ${close.map((n) => `"${n}"`).join(' or ')}?)` : '';
}
