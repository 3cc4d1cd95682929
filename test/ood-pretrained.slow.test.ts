import test from 'ava';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { parse } from 'csv-parse/sync';
import { buildFixture, type Fixture } from './fixtures/mini-imagenet.ts';
import { prepareCache, runClassification, runExperiment } from '../src/experiment/index.ts';
import { evaluateOod } from '../src/experiment/ood.ts';
import { evaluatePretrainedFewShot } from '../src/experiment/pretrained-fewshot.ts';
import { loadSplit } from '../src/data/cache.ts';
import { makeEpisodes, writeEpisodeFile } from '../src/episodes/file.ts';
import { oodMetrics } from '../src/eval/ood.ts';
import { readResult } from '../src/reports/results.ts';
import { pairedDifference } from '../src/eval/stats.ts';
import { buildProgram } from '../src/cli/program.ts';
import { tinyConfig } from './fixtures/configs.ts';

/*
 * End to end on real mini-ImageNet images (a 7-class fixture cut from the real val archive: 3 "train", 2 "val",
 * 2 "test" classes, 20 images each, 16 px): an SLA classifier trained for one epoch on the 3 train classes, then
 * OOD against the 2 test classes, few-shot from its frozen embedding on a fixed episode file, paired with an
 * episodic ProtoNet's result on the identical episodes through `fewshot compare`, and the bad inputs.
 */
let fx: Fixture;
let cache: string;
let classifier: string;
let episodic: string;
let episodicResult: string;
let testFile: string;
let results: string;
const common = () => ({ backend: 'wasm', data: fx.folderDir, cache, results });

test.before(async () => {
  fx = await buildFixture(20);
  cache = path.join(fx.root, 'cache16');
  results = path.join(fx.root, 'results');
  await prepareCache({ dataset: 'mini-imagenet', data: fx.folderDir, cache }, 16);
  const run = await runClassification(
    { variant: 'sla', backbone: 'conv4', imageSize: 16, epochs: 1, batchSize: 16, testPerClass: 5, seed: 0 },
    { backend: 'wasm', data: fx.folderDir, cache, runs: path.join(fx.root, 'runs'), results, name: 'cls-sla' },
  );
  classifier = run.checkpoint;
  const spec = { way: 2, shot: 1, query: 3 };
  testFile = path.join(fx.root, 'test.json');
  await writeEpisodeFile(testFile, makeEpisodes({ split: await loadSplit(cache, 'test'), spec, seed: 0, count: 4 }));
  const valFile = path.join(fx.root, 'val.json');
  await writeEpisodeFile(valFile, makeEpisodes({ split: await loadSplit(cache, 'val'), spec, seed: 0, count: 2 }));
  const cfg = tinyConfig(spec);
  const ep = await runExperiment(cfg, { ...common(), runs: path.join(fx.root, 'runs'), valFile, testFile, name: 'episodic' });
  tf.disposeVariables();
  episodic = ep.checkpoint;
  episodicResult = ep.resultDir;
});

test.after.always(async () => {
  await fx?.cleanup();
});

test.serial("OOD: the classifier's held-out images against the test classes, per inference mode, recomputable from scores.csv", async (t) => {
  const r = await evaluateOod({ checkpoint: classifier, outSplit: 'test', resamples: 50, seed: 3 }, { ...common(), name: 'ood' });
  t.deepEqual(r.modes, ['ag', 'si']);
  t.is(r.inImages, 3 * 5);
  t.is(r.outImages, 2 * 20);
  const record = JSON.parse(await fs.readFile(path.join(r.resultDir, 'result.json'), 'utf8'));
  t.is(record.kind, 'ood');
  t.is(record.out.split, 'test');
  const rows = parse(await fs.readFile(path.join(r.resultDir, 'scores.csv'), 'utf8'), { columns: true }) as Record<string, string>[];
  t.is(rows.length, 55);
  for (const mode of r.modes) {
    const ins = rows.filter((row) => row.set === 'in').map((row) => Number(row[mode]));
    const outs = rows.filter((row) => row.set === 'out').map((row) => Number(row[mode]));
    t.true(
      [...ins, ...outs].every((s) => s >= 1 / 3 - 1e-9 && s <= 1),
      'an MSP over 3 classes is in [1/3, 1]',
    );
    const m = oodMetrics(ins, outs);
    t.true(Math.abs(m.auroc - record.metrics[mode].auroc.value) < 1e-12, `${mode}: AUROC from scores.csv`);
    t.true(record.metrics[mode].auroc.low <= m.auroc && m.auroc <= record.metrics[mode].auroc.high);
  }
  // --out-per-class caps each out class
  const capped = await evaluateOod({ checkpoint: classifier, outSplit: 'test', outPerClass: 4, resamples: 20 }, { ...common(), name: 'ood-capped' });
  t.is(capped.outImages, 8);
});

test.serial("OOD: an out-distribution sharing the classifier's classes is refused before compute, and nothing is written", async (t) => {
  const err = await t.throwsAsync(evaluateOod({ checkpoint: classifier, outSplit: 'train' }, { ...common(), name: 'ood-bad' }));
  t.is(err?.name, 'UserError');
  t.regex(err!.message, /shares 3 of its 3 classes with the in-distribution/);
  await t.throwsAsync(fs.stat(path.join(results, 'mini-imagenet', 'ood-bad')));
});

test.serial(
  'few-shot from the frozen embedding: upright and SLA+AG modes on the fixed episodes, paired with the episodic ProtoNet by `fewshot compare`',
  async (t) => {
    const r = await evaluatePretrainedFewShot({ checkpoint: classifier, way: 2, shot: 1, query: 3, testFile }, { ...common(), name: 'pretrained' });
    t.deepEqual(r.evaluation.modes, ['protonet-ag', 'cosine-ag', 'logreg-ag', 'protonet', 'cosine', 'logreg']);
    t.is(r.evaluation.episodes, 4);
    for (const m of r.evaluation.modes) {
      t.true(
        r.evaluation.perEpisode[m].every((a) => [0, 1 / 6, 2 / 6, 3 / 6, 4 / 6, 5 / 6, 1].some((v) => Math.abs(a - v) < 1e-9)),
        `${m}: an accuracy over 6 queries`,
      );
    }
    const ours = await readResult(r.resultDir);
    const theirs = await readResult(episodicResult);
    t.is(ours.record.episodes.sha256, theirs.record.episodes.sha256);
    const d = pairedDifference(ours.perEpisode['protonet-ag'], theirs.perEpisode.plain);
    // The comparison command itself, in-process, on the two result folders.
    const out = path.join(fx.root, 'comparison.json');
    const program = buildProgram();
    const write = process.stdout.write.bind(process.stdout);
    process.stdout.write = (() => true) as typeof process.stdout.write;
    try {
      await program.parseAsync(['node', 'fewshot', 'compare', r.resultDir, episodicResult, '--out', out]);
    } finally {
      process.stdout.write = write;
    }
    const comparison = JSON.parse(await fs.readFile(out, 'utf8'));
    t.is(comparison.a.mode, 'protonet-ag');
    t.true(Math.abs(comparison.pairedDifference.mean - d.mean) < 1e-12);
    // --no-aggregate scores the upright images only; --head picks the heads
    const upright = await evaluatePretrainedFewShot(
      { checkpoint: classifier, way: 2, shot: 1, query: 3, testFile, heads: ['logreg'], aggregate: false, testEpisodes: 2 },
      { ...common(), name: 'pretrained-upright' },
    );
    t.deepEqual(upright.evaluation.modes, ['logreg']);
    t.deepEqual(Array.from(upright.evaluation.perEpisode.logreg), Array.from(r.evaluation.perEpisode.logreg.slice(0, 2)));
  },
);

test.serial('an episodic checkpoint given to the pre-trained evaluators is a UserError naming `fewshot eval`', async (t) => {
  for (const call of [
    () => evaluatePretrainedFewShot({ checkpoint: episodic, way: 2, shot: 1, query: 3, testFile }, common()),
    () => evaluateOod({ checkpoint: episodic }, common()),
  ]) {
    const err = await t.throwsAsync(call());
    t.is(err?.name, 'UserError');
    t.regex(err!.message, /checkpoint of the episodic method "protonet", not of a classifier[\s\S]*fewshot eval/);
  }
});
