/**
 * Prints the Markdown results table of docs/results.md from the committed result directories and comparisons
 * (links relative to docs/), so its numbers are generated from results/, never typed by hand:
 *   npx tsx scripts/results-table.ts
 */
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';

const root = path.join('results', 'mini-imagenet');
// The single runs: folders holding a result.json (not the tables' cells/ and table folders).
const entries = (await fs.readdir(root, { withFileTypes: true }))
  .filter((e) => e.isDirectory() && existsSync(path.join(root, e.name, 'result.json')))
  .map((e) => e.name)
  .sort();
const rows = ['| method | setting | test accuracy % (95% CI, n episodes) | train / eval wall | result |', '|---|---|---|---|---|'];
for (const name of entries) {
  const r = JSON.parse(await fs.readFile(path.join(root, name, 'result.json'), 'utf8'));
  const c = r.config;
  const setting = `${c.backbone}, ${c.imageSize} px, train ${c.train.way}w${c.train.shot}s${c.train.query}q × ${c.episodes} episodes (${c.optimizer.type} ${c.optimizer.lr}), test ${r.episodes.way}w${r.episodes.shot}s`;
  const acc = r.inferenceModes.map((m: string) => `${r.inferenceModes.length > 1 ? `${m.toUpperCase()} ` : ''}${r.summary[m].text}`).join('; ');
  const wall = `${Math.round(r.wallSeconds.train ?? 0)} s / ${Math.round(r.wallSeconds.eval)} s`;
  rows.push(`| \`${r.method}\` | ${setting} | ${acc} (n=${r.episodes.evaluated}) | ${wall} | [${name}](../${root}/${name}/result.json) |`);
}
/** "method [mode] (budget, run-name suffix)", so repeated runs of a method stay distinguishable. */
function side(s: { method: string; mode: string; result: string }): string {
  const m = /_(\d+)ep_seed\d+(?:_(.+))?$/.exec(path.basename(s.result));
  const tags = m ? [`${m[1]} ep`, ...(m[2] ? [m[2]] : [])] : [];
  return `${s.method} [${s.mode}]${tags.length ? ` (${tags.join(', ')})` : ''}`;
}

const comparisons = (await fs.readdir(root)).filter((f) => f.startsWith('compare_') && f.endsWith('.json')).sort();
const cmp = ['| comparison (paired over identical test episodes) | A − B, points (95% CI) | n |', '|---|---|---|'];
for (const f of comparisons) {
  const c = JSON.parse(await fs.readFile(path.join(root, f), 'utf8'));
  cmp.push(`| ${side(c.a)} − ${side(c.b)} | ${c.pairedDifference.text} | ${c.pairedDifference.n} |`);
}
process.stdout.write(rows.join('\n') + '\n\n' + (comparisons.length ? cmp.join('\n') + '\n' : ''));
