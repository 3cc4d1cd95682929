// The committed standard episode sets must be valid for the real mini-ImageNet split they name.
import test from 'ava';
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { cacheDirFor, describeSplit, readSplitCsv } from '../src/data/index.ts';
import {
  EPISODES_DIR,
  standardEpisodeSets,
  checkEpisodesMatchSplit,
  episodeFileName,
  episodesRegenerate,
  readEpisodeFile,
  type LoadedEpisodeFile,
} from '../src/episodes/index.ts';
import { miniImageNetProvider } from '../src/data/providers/mini-imagenet.ts';
import { REAL_DATA, REPO_ROOT } from './fixtures/mini-imagenet.ts';

const loaded = new Map<string, LoadedEpisodeFile>();

for (const std of standardEpisodeSets(miniImageNetProvider.id)) {
  const rel = episodeFileName({ dataset: 'mini-imagenet', ...std });
  test.serial(`${rel}: valid, matches the real ${std.split}.csv, regenerates from its seed`, async (t) => {
    const file = path.join(REPO_ROOT, EPISODES_DIR, rel);
    t.true(existsSync(file), `${file} is committed`);
    t.true(statSync(file).size < 2 * 1024 * 1024, 'under 2 MiB');
    const set = await readEpisodeFile(file); // validates ranges, disjointness, counts
    loaded.set(rel, set);
    t.is(set.header.split, std.split);
    t.deepEqual(set.header.spec, std.spec);
    t.is(set.header.seed, std.seed);
    t.is(set.header.count, std.count);
    t.is(set.episodes.length, std.count);

    // The item list is the real CSV's: same classes in order, same sizes.
    const csv = await readSplitCsv(path.join(REAL_DATA, `${std.split}.csv`), std.split);
    t.deepEqual(set.header.splitClasses, csv.classes);
    t.deepEqual(set.header.itemsPerClass, csv.itemsPerClass);
    // Item indices are rows of the real split: every support/query item is a file of the episode's class.
    for (const ep of set.episodes.slice(0, 50)) {
      ep.classes.forEach((c, label) => {
        for (let k = 0; k < std.spec.shot; k++) t.is(csv.labels[ep.support[label * std.spec.shot + k]], c);
        for (let k = 0; k < std.spec.query; k++) t.is(csv.labels[ep.query[label * std.spec.query + k]], c);
      });
    }
    t.true(episodesRegenerate(set), 'the file is exactly what the sampler draws for its seed');

    // Fingerprint check against a prepared cache of the real data, where one exists.
    const caches = [84, 32]
      .map((s) => cacheDirFor(path.join(REPO_ROOT, '.cache'), 'mini-imagenet', s))
      .filter((d) => existsSync(path.join(d, 'manifest.json')));
    if (caches.length === 0) t.log('no prepared cache in .cache/: split fingerprint not checked');
    for (const dir of caches) checkEpisodesMatchSplit(set, await describeSplit(dir, std.split));
  });
}

test.serial('the standard sets differ from each other (1-shot vs 5-shot draws are independent)', (t) => {
  const oneShot = loaded.get(episodeFileName({ dataset: 'mini-imagenet', split: 'test', spec: { way: 5, shot: 1, query: 15 }, seed: 0, count: 2000 }));
  const fiveShot = loaded.get(episodeFileName({ dataset: 'mini-imagenet', split: 'test', spec: { way: 5, shot: 5, query: 15 }, seed: 0, count: 2000 }));
  t.truthy(oneShot && fiveShot);
  const sameClasses = oneShot!.episodes.filter((ep, i) => ep.classes.join() === fiveShot!.episodes[i].classes.join()).length;
  t.true(sameClasses < 20, `${sameClasses} of 2000 episodes share their class list`);
});
