import test from 'ava';
import { promises as fs } from 'node:fs';
import { createHash } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import {
  SAMPLER_VERSION,
  STANDARD_EPISODE_SETS,
  registerStandardEpisodeSets,
  standardEpisodeSets,
  checkEpisodesMatchSplit,
  episodeFileName,
  episodeFileSha256,
  episodesRegenerate,
  makeEpisodes,
  readEpisodeFile,
  sampleEpisode,
  sampleEpisodes,
  serializeEpisodeSet,
  writeEpisodeFile,
  type EpisodeSet,
  type SampledEpisode,
  type SplitDescriptor,
} from '../src/episodes/index.ts';
import { UserError } from '../src/util/errors.ts';

/** Unequal class sizes, so offsets matter: 12 classes of 20..31 items. */
function layout(): SplitDescriptor {
  const itemsPerClass = Array.from({ length: 12 }, (_, c) => 20 + c);
  const classOffsets: number[] = [];
  itemsPerClass.reduce((acc, n) => (classOffsets.push(acc), acc + n), 0);
  return {
    dataset: 'toy',
    split: 'test',
    classes: itemsPerClass.map((_, c) => `class${c}`),
    itemsPerClass,
    classOffsets,
    splitFingerprint: 'f'.repeat(64),
  };
}

const spec = { way: 5, shot: 3, query: 4 };

function same(a: SampledEpisode, b: SampledEpisode): boolean {
  return JSON.stringify([a.classes, [...a.support], [...a.query]]) === JSON.stringify([b.classes, [...b.support], [...b.query]]);
}

test('episode i is the same drawn alone, in a sequence, or in a sequence starting elsewhere', (t) => {
  const split = layout();
  const seq = sampleEpisodes(split, spec, { seed: 7, splitName: 'test', count: 30 });
  const tail = sampleEpisodes(split, spec, { seed: 7, splitName: 'test', count: 10, first: 20 });
  for (const i of [0, 13, 29]) t.true(same(seq[i], sampleEpisode(split, spec, { seed: 7, splitName: 'test', index: i })), `episode ${i}`);
  for (let i = 0; i < 10; i++) t.true(same(seq[20 + i], tail[i]));
  // Seed, split name and spec are all part of the key.
  t.false(same(seq[3], sampleEpisode(split, spec, { seed: 8, splitName: 'test', index: 3 })));
  t.false(same(seq[3], sampleEpisode(split, spec, { seed: 7, splitName: 'val', index: 3 })));
  t.false(same(seq[3], seq[4]));
});

test('episodes: distinct classes, support/query disjoint and inside their class, label-major layout, right counts', (t) => {
  const split = layout();
  const episodes = sampleEpisodes(split, spec, { seed: 1, splitName: 'test', count: 300 });
  for (const ep of episodes) {
    t.is(ep.classes.length, 5);
    t.is(new Set(ep.classes).size, 5);
    t.is(ep.support.length, 15);
    t.is(ep.query.length, 20);
    const all = new Set([...ep.support, ...ep.query]);
    t.is(all.size, 35, 'no item used twice');
    ep.classes.forEach((c, label) => {
      const inClass = (item: number) => item >= split.classOffsets[c] && item < split.classOffsets[c] + split.itemsPerClass[c];
      t.true(ep.support.subarray(label * 3, label * 3 + 3).every(inClass));
      t.true(ep.query.subarray(label * 4, label * 4 + 4).every(inClass));
    });
  }
});

test('label order is shuffled and classes/items are drawn roughly uniformly', (t) => {
  const split = layout();
  const episodes = sampleEpisodes(split, { way: 5, shot: 1, query: 1 }, { seed: 3, splitName: 'test', count: 2400 });
  const sorted = episodes.filter((ep) => ep.classes.every((c, i) => i === 0 || ep.classes[i - 1] < c)).length;
  t.true(sorted < 60, `only ~1/120 of episodes should list classes in sorted order, got ${sorted}`); // expected 20
  const atLabel0 = new Set(episodes.map((ep) => ep.classes[0]));
  t.is(atLabel0.size, 12, 'every class shows up as label 0');
  // Each class is picked with probability 5/12: 1000 of 2400 expected; binomial sd ≈ 24.
  const counts = new Array(12).fill(0);
  for (const ep of episodes) for (const c of ep.classes) counts[c]++;
  for (const n of counts) t.true(Math.abs(n - 1000) < 120, `class count ${n}`);
  // Within class 0 (20 items), the support item is uniform: 1000·(1/20) = 50 expected per item.
  const perItem = new Array(20).fill(0);
  for (const ep of episodes) {
    const label = ep.classes.indexOf(0);
    if (label >= 0) perItem[ep.support[label]]++;
  }
  for (const n of perItem) t.true(n > 20 && n < 90, `item count ${n}`);
});

test('impossible specs are UserErrors with the numbers and the fix', (t) => {
  const split = layout();
  const key = { seed: 0, splitName: 'test', index: 0 };
  t.throws(() => sampleEpisode(split, { way: 13, shot: 1, query: 1 }, key), {
    instanceOf: UserError,
    message: /13 distinct classes.*only 12[\s\S]*--way 12 or less/,
  });
  t.throws(() => sampleEpisode(split, { way: 5, shot: 5, query: 16 }, key), {
    instanceOf: UserError,
    message: /21 distinct images per class.*class #0.*only 20[\s\S]*at most 20/,
  });
  t.notThrows(() => sampleEpisode(split, { way: 12, shot: 5, query: 15 }, key));
  t.throws(() => sampleEpisode(split, { way: 5, shot: 0, query: 15 }, key), { instanceOf: UserError, message: /--shot must be/ });
  t.throws(() => sampleEpisode(split, { way: 2.5, shot: 1, query: 15 }, key), { instanceOf: UserError, message: /--way must be/ });
  t.throws(() => sampleEpisode(split, spec, { ...key, seed: -1 }), { instanceOf: UserError, message: /--seed/ });
  t.throws(() => sampleEpisodes(split, spec, { seed: 0, splitName: 'test', count: 0 }), { instanceOf: UserError, message: /episode count/ });
});

async function tmpDir(): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), 'fewshot-episodes-'));
}

test('episode file round trip: same episodes back, sha256 of the bytes, reproducible, atomic write', async (t) => {
  const dir = await tmpDir();
  const progress: number[] = [];
  const set = makeEpisodes({ split: layout(), spec, seed: 5, count: 600, onProgress: (done) => progress.push(done) });
  t.deepEqual(progress, [250, 500, 600]);
  t.is(set.header.samplerVersion, SAMPLER_VERSION);
  const file = path.join(dir, episodeFileName(set.header));
  t.is(path.relative(dir, file), path.join('toy', 'test_5w3s4q_seed5_600.json'));
  const sha = await writeEpisodeFile(file, set);
  t.deepEqual(await fs.readdir(path.dirname(file)), ['test_5w3s4q_seed5_600.json'], 'no temp file left');
  const back = await readEpisodeFile(file);
  t.is(back.sha256, sha);
  t.is(
    await episodeFileSha256(file),
    createHash('sha256')
      .update(await fs.readFile(file))
      .digest('hex'),
  );
  t.deepEqual(back.header, set.header);
  t.true(back.episodes.every((ep, i) => same(ep, set.episodes[i])));
  t.true(back.episodes[0].support instanceof Int32Array);
  t.true(episodesRegenerate(back));
  // Writing the same set again gives the same bytes.
  t.is(serializeEpisodeSet(back), await fs.readFile(file, 'utf8'));
  await fs.rm(dir, { recursive: true, force: true });
});

test('malformed episode files are UserErrors saying what is wrong', async (t) => {
  const dir = await tmpDir();
  const set = makeEpisodes({ split: layout(), spec, seed: 2, count: 5 });
  const good = JSON.parse(serializeEpisodeSet(set));
  const file = path.join(dir, 'e.json');
  const variants: [string, unknown, RegExp][] = [
    ['not JSON', '{"format": "fewshot-episodes", ', /not valid JSON/],
    ['other format', { ...good, format: 'something' }, /not a fewshot episode file/],
    ['newer version', { ...good, formatVersion: 2 }, /format version 2/],
    ['missing seed', { ...good, seed: undefined }, /seed/],
    ['count mismatch', { ...good, count: 6 }, /header says 6 episodes, the file holds 5/],
    [
      'repeated class',
      { ...good, episodes: good.episodes.map((e: number[][], i: number) => (i === 2 ? [[e[0][0], e[0][0], ...e[0].slice(2)], e[1], e[2]] : e)) },
      /episode 2 repeats a class/,
    ],
    [
      'support = query item',
      { ...good, episodes: good.episodes.map((e: number[][], i: number) => (i === 1 ? [e[0], e[1], [e[1][0], ...e[2].slice(1)]] : e)) },
      /episode 1 uses item \d+ twice/,
    ],
    [
      'item outside its class',
      { ...good, episodes: good.episodes.map((e: number[][], i: number) => (i === 4 ? [e[0], [e[1][3], ...e[1].slice(1)], e[2]] : e)) },
      /episode 4 support item \d+ \(label 0\) is not an item of class/,
    ],
    [
      'class out of range',
      { ...good, episodes: good.episodes.map((e: number[][], i: number) => (i === 0 ? [[99, ...e[0].slice(1)], e[1], e[2]] : e)) },
      /class id 99/,
    ],
    ['too few queries', { ...good, episodes: good.episodes.map((e: number[][]) => [e[0], e[1], e[2].slice(1)]) }, /19 query items, expected 5 \/ 15 \/ 20/],
    ['negative index', { ...good, episodes: good.episodes.map((e: number[][]) => [e[0], [-1, ...e[1].slice(1)], e[2]]) }, /episodes/],
    ['spec bigger than split', { ...good, spec: { way: 13, shot: 3, query: 4 } }, /13 distinct classes/],
  ];
  for (const [name, content, message] of variants) {
    await fs.writeFile(file, typeof content === 'string' ? content : JSON.stringify(content));
    const err = await t.throwsAsync(readEpisodeFile(file), { instanceOf: UserError }, name);
    t.regex(err!.message, message, name);
  }
  await t.throwsAsync(readEpisodeFile(path.join(dir, 'nope.json')), { instanceOf: UserError, message: /missing or unreadable/ });
  // An edited-but-valid file reads fine but no longer regenerates from its seed.
  const swapped = { ...good, episodes: [good.episodes[1], good.episodes[0], ...good.episodes.slice(2)] };
  await fs.writeFile(file, JSON.stringify(swapped));
  t.false(episodesRegenerate(await readEpisodeFile(file)));
  // writeEpisodeFile refuses to write an invalid set.
  const broken: EpisodeSet = { ...set, header: { ...set.header, count: 4 } };
  await t.throwsAsync(writeEpisodeFile(path.join(dir, 'bad.json'), broken), { instanceOf: UserError });
  t.false((await fs.readdir(dir)).includes('bad.json'));
  await fs.rm(dir, { recursive: true, force: true });
});

test('checkEpisodesMatchSplit: fingerprint, dataset and split must match the loaded data', (t) => {
  const split = layout();
  const set = makeEpisodes({ split, spec, seed: 0, count: 3 });
  t.notThrows(() => checkEpisodesMatchSplit(set, split));
  t.throws(() => checkEpisodesMatchSplit({ ...set, path: 'x.json' }, { ...split, splitFingerprint: 'a'.repeat(64) }), {
    instanceOf: UserError,
    message:
      /x\.json was made for toy test data with split fingerprint ffffffffffff… \(12 classes, 306 items\), but the loaded cache has aaaaaaaaaaaa….*image files differ/,
  });
  t.throws(() => checkEpisodesMatchSplit(set, { ...split, splitFingerprint: 'a'.repeat(64), classes: split.classes.map((c, i) => (i === 3 ? 'other' : c)) }), {
    instanceOf: UserError,
    message: /split CSVs differ/,
  });
  t.throws(() => checkEpisodesMatchSplit(set, { ...split, split: 'val' }), {
    instanceOf: UserError,
    message: /episodes of toy test, but the loaded data is toy val/,
  });
});

test('a provider whose protocol differs lists its sets with the episode layer; others get the usual protocol; listing twice is refused', (t) => {
  const sets = [{ split: 'test' as const, spec: { way: 10, shot: 2, query: 5 }, seed: 7, count: 300 }];
  registerStandardEpisodeSets('sets-test-provider', sets);
  t.deepEqual(standardEpisodeSets('sets-test-provider'), sets);
  t.is(standardEpisodeSets('some-other-provider'), STANDARD_EPISODE_SETS);
  const twice = t.throws(() => registerStandardEpisodeSets('sets-test-provider', sets));
  t.regex(twice.message, /listed twice/);
  const bad = t.throws(() => registerStandardEpisodeSets('bad-sets-provider', [{ split: 'test', spec: { way: 1, shot: 1, query: 1 }, seed: 0, count: 10 }]));
  t.regex(bad.message, /is not an episode spec/);
});
