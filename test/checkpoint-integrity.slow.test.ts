import test from 'ava';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from './fixtures/mini-imagenet.ts';
import { runCliOneThread as runCli, tinyEvalArgs, tinyTrainingArgs, useCliFixture } from './fixtures/run-cli.ts';
import { exists } from './fixtures/fs.ts';
import { readCheckpoint, saveCheckpoint } from '../src/train/checkpoint.ts';
import { UserError } from '../src/util/errors.ts';

/**
 * Nothing silently wrong in checkpoints and scores (issue 26 #2, #3, #7): every byte of a checkpoint is under a
 * checksum (legacy ones load with a notice), a diverged state is never written over a good checkpoint nor
 * loaded, and non-finite scores are an error, never a "1/way ± 0" result. Real files, real CLI subprocesses.
 */
const SIZE = '16';
const fixture = useCliFixture(test, 12, SIZE);

test.before(async () => {
  await tf.setBackend('cpu');
});

/** A checkpoint like a training's: three variables, Adam slots, a step count and the run's meta. */
async function writeTrainingLikeCheckpoint(dir: string): Promise<void> {
  const vars = [0, 1, 2].map((i) => tf.variable(tf.tensor1d([1 + i, 2, 3, 4]), true, `w${i}#integrity-${path.basename(dir)}`));
  const slot = (name: string) => ({ name, tensors: vars.map((v) => tf.variable(tf.onesLike(v), false)) });
  await saveCheckpoint(dir, {
    variables: vars,
    optimizer: { type: 'adam', stepCount: 40, slots: [slot('m'), slot('v')] },
    meta: { episode: 40, configHash: 'abc', config: { method: 'protonet', imageSize: 32 } },
  });
}

/** Edit checkpoint.json as text (what a hand edit or a bit flip does), leaving every hash as it is. */
async function editJson(dir: string, from: string | RegExp, to: string): Promise<void> {
  const file = path.join(dir, 'checkpoint.json');
  const text = await fs.readFile(file, 'utf8');
  const edited = text.replace(from, to);
  if (edited === text) throw new Error(`edit ${from} → ${to} changed nothing`);
  await fs.writeFile(file, edited);
}

/**
 * Change the payload and recompute every hash the file carries (weightsSha256, and checkpointSha256 when present):
 * a corruption no checksum can see, so only the content checks stand between it and a result.
 */
async function editWithHashesFixed(
  dir: string,
  payload: (
    floats: Float32Array,
    json: {
      variables: { key: string; offset: number; length: number }[];
      optimizer?: { slots: Record<string, { key: string; offset: number; length: number }[]> };
    },
  ) => void,
): Promise<void> {
  const jsonFile = path.join(dir, 'checkpoint.json');
  const json = JSON.parse(await fs.readFile(jsonFile, 'utf8'));
  const bin = await fs.readFile(path.join(dir, 'weights.bin'));
  const floats = new Float32Array(bin.buffer.slice(bin.byteOffset, bin.byteOffset + bin.length));
  payload(floats, json);
  const out = Buffer.from(floats.buffer);
  await fs.writeFile(path.join(dir, 'weights.bin'), out);
  json.weightsSha256 = createHash('sha256').update(out).digest('hex');
  if ('checkpointSha256' in json) {
    const { checkpointSha256: _old, ...rest } = json;
    json.checkpointSha256 = createHash('sha256').update(JSON.stringify(rest)).digest('hex');
  }
  await fs.writeFile(jsonFile, JSON.stringify(json, null, 1));
}

async function scratch(name: string): Promise<string> {
  const dir = path.join(fixture.fx.root, 'scratch', name);
  await fs.rm(dir, { recursive: true, force: true });
  return dir;
}

test.serial(
  '#7: any edit of checkpoint.json (an offset, the episode, the step count, the method, the image size) fails its checksum; a deleted checksum is an error',
  async (t) => {
    const edits: [string, string | RegExp, string][] = [
      // The middle variable's offset: within the file, so the payload alone would load scrambled.
      ['offset', /"offset": 16,/, '"offset": 20,'],
      ['meta.episode', '"episode": 40', '"episode": 500'],
      ['optimizer.stepCount', '"stepCount": 40', '"stepCount": 4000'],
      ['meta.config.method', '"method": "protonet"', '"method": "protonet-sla"'],
      ['imageSize', '"imageSize": 32', '"imageSize": 64'],
    ];
    for (const [what, from, to] of edits) {
      const dir = await scratch(`edit-${what}`);
      await writeTrainingLikeCheckpoint(dir);
      t.is((await readCheckpoint(dir)).file.meta.episode, 40);
      await editJson(dir, from, to);
      await t.throwsAsync(readCheckpoint(dir), { instanceOf: UserError, message: /checkpoint\.json does not match its checksum/ }, `edited ${what}`);
    }
    for (const field of ['checkpointSha256', 'weightsSha256']) {
      const dir = await scratch(`deleted-${field}`);
      await writeTrainingLikeCheckpoint(dir);
      await editJson(dir, new RegExp(`,\\n "${field}": "[0-9a-f]{64}"`), '');
      await t.throwsAsync(readCheckpoint(dir), { instanceOf: UserError, message: new RegExp(`has no ${field} field`) }, `deleted ${field}`);
    }
  },
);

test.serial(
  '#7: checkpoints written before the checksum (format 1, the committed runs/cells ones) load with one notice naming the file; an index that does not tile weights.bin is refused',
  async (t) => {
    const committed = path.join(REPO_ROOT, 'runs', 'cells', 'protonet_5w1s_cpu-84px_5710ca40', 'seed0', 'best');
    const notices: string[] = [];
    const ckpt = await readCheckpoint(committed, { onNotice: (m) => notices.push(m) });
    t.is(ckpt.file.format, 'fewshot-checkpoint/1');
    t.true(ckpt.legacy);
    t.true(ckpt.file.variables.length > 0);
    await readCheckpoint(committed, { onNotice: (m) => notices.push(m) });
    t.is(notices.length, 1, 'one notice per file');
    t.true(notices[0].includes(path.join(committed, 'checkpoint.json')), notices[0]);
    t.false(notices[0].includes('\n'));

    // A legacy copy with an offset moved inside the file: no checksum covers it, the index check does.
    const dir = await scratch('legacy-offset');
    await fs.mkdir(dir, { recursive: true });
    for (const f of ['checkpoint.json', 'weights.bin']) await fs.copyFile(path.join(committed, f), path.join(dir, f));
    const json = JSON.parse(await fs.readFile(path.join(dir, 'checkpoint.json'), 'utf8'));
    json.variables[1].offset += 4;
    await fs.writeFile(path.join(dir, 'checkpoint.json'), JSON.stringify(json, null, 1));
    await t.throwsAsync(readCheckpoint(dir), { instanceOf: UserError, message: /inconsistent index at / });
  },
);

test.serial('#2: a NaN in an optimizer slot is refused on load even with every hash recomputed; a non-finite state is never saved', async (t) => {
  const dir = await scratch('slot-nan');
  await writeTrainingLikeCheckpoint(dir);
  await editWithHashesFixed(dir, (floats, json) => {
    floats[json.optimizer!.slots.v[2].offset / 4 + 1] = NaN;
  });
  await t.throwsAsync(readCheckpoint(dir), { instanceOf: UserError, message: /optimizer slot v\/2 holds a non-finite value \(NaN\)/ });

  // Saving: a variable or slot holding Inf/NaN is a numerical error and the complete older version stays.
  const keep = await scratch('save-refused');
  await writeTrainingLikeCheckpoint(keep);
  const before = await fs.readFile(path.join(keep, 'weights.bin'));
  const inf = tf.variable(tf.tensor1d([1, Infinity]), true, 'bn/running_var#integrity');
  await t.throwsAsync(saveCheckpoint(keep, { variables: [inf], meta: {} }), { message: /bn\/running_var holds a non-finite value \(Infinity\)/ });
  t.deepEqual(await fs.readFile(path.join(keep, 'weights.bin')), before);
  t.deepEqual(
    (await fs.readdir(path.dirname(keep))).filter((n) => n.startsWith('.save-refused.') && !/\.v\d+$/.test(n)),
    [],
    'no temp left',
  );
});

/** Protonet, 2-way 1-shot, 40 episodes, validation every 10; lr 1e-3, multiplied by `factor` from episode 20 on. */
async function scheduleConfig(factor: number): Promise<string> {
  const file = path.join(fixture.fx.root, `schedule-${factor}.json`);
  await fs.writeFile(
    file,
    JSON.stringify({
      method: 'protonet',
      imageSize: Number(SIZE),
      train: { way: 2, shot: 1, query: 3 },
      test: { way: 2, shot: 1, query: 3 },
      episodes: 40,
      optimizer: { type: 'sgd', lr: 0.001, momentum: 0.9, nesterov: false, weightDecay: 0 },
      lrSchedule: { type: 'step', everyEpisodes: 20, factor },
      validation: { every: 10, episodes: 4 },
    }),
  );
  return file;
}

const trainArgs = (config: string, name: string) => [
  'train',
  'protonet',
  '--config',
  config,
  '--val-file',
  path.join(fixture.fx.root, 'val.json'),
  '--backend',
  'wasm',
  '--runs',
  path.join(fixture.fx.root, 'runs'),
  '--name',
  name,
  '--cache',
  fixture.cache,
];

test.serial(
  '#2: a training that diverges (lr x 1e6 at episode 20: batch-norm variance Inf) stops with exit 3 and keeps its good checkpoints, saying which',
  async (t) => {
    const out = await runCli(trainArgs(await scheduleConfig(1e6), 'diverges'));
    t.is(out.code, 3, out.stderr);
    const run = path.join(fixture.fx.root, 'runs', 'diverges');
    t.regex(
      out.stderr,
      /numerical error: training diverged by episode 30: conv4\/\S+ holds a non-finite value \((Infinity|NaN)\); nothing was written to (last|best)\/; kept: the last good checkpoint \(episode 20\) in \S+diverges\/last and \S+diverges\/best \(episode 20\)/,
    );
    t.notRegex(out.stderr, /best validation|internal error/);
    // What it says is kept is there, complete and loadable.
    for (const which of ['last', 'best']) {
      const ckpt = await readCheckpoint(path.join(run, which));
      t.is(ckpt.file.meta.episode, 20, which);
    }
    // Resuming it is the same divergence again, stopped the same way: nothing it says is kept was replaced.
    const again = await runCli(trainArgs(await scheduleConfig(1e6), 'diverges'));
    t.is(again.code, 3, again.stderr);
    t.regex(again.stderr, /resuming at episode 20/);
    t.is((await readCheckpoint(path.join(run, 'last'))).file.meta.episode, 20);
  },
);

test.serial('#3: non-finite scores (weights of 3e38, every hash recomputed) are an evaluation error naming the checkpoint; no result is written', async (t) => {
  const trained = await runCli(trainArgs(await scheduleConfig(1), 'good'));
  t.is(trained.code, 0, trained.stderr);
  const ckpt = path.join(fixture.fx.root, 'scaled');
  await fs.cp(path.join(fixture.fx.root, 'runs', 'good', 'best'), ckpt, { recursive: true, dereference: true });
  await editWithHashesFixed(ckpt, (floats, json) => {
    // Finite weights whose products overflow: the first conv's filters scaled to 3e38 in magnitude.
    const first = json.variables[0];
    for (let i = first.offset / 4; i < first.offset / 4 + first.length; i++) floats[i] = floats[i] >= 0 ? 3e38 : -3e38;
  });
  const results = path.join(fixture.fx.root, 'results-nan');
  const out = await runCli(tinyEvalArgs(ckpt, { root: fixture.fx.root, cache: fixture.cache, results }));
  t.is(out.code, 3, out.stderr);
  t.regex(
    out.stderr,
    /numerical error: the scores of inference mode "plain" are not finite \(NaN for query \d+\): the model's weights or a plugin's method, backbone or head produced them \(evaluation episode 0\); checkpoint \S+scaled; no result was written/,
  );
  t.notRegex(out.stderr, /50\.00 ± 0\.00/);
  t.false(await exists(results), 'no result folder');
});

test.serial(
  '#3: a plugin head whose scores are NaN only at evaluation: the validation stops the run (exit 3, the plugin named), nothing is chosen as best, no result is written',
  async (t) => {
    const plugin = path.join(fixture.fx.root, 'nan-at-eval.mts');
    await fs.writeFile(
      plugin,
      [
        `import { registerHead, squaredDistances, classMeans, z, tf } from ${JSON.stringify(path.join(REPO_ROOT, 'src', 'index.ts'))};`,
        "registerHead({ id: 'nan-at-eval', description: 'prototypes in training, NaN at evaluation', configSchema: z.object({}).strict(),",
        "  create: () => ({ id: 'nan-at-eval', variables: () => [], logits: (ep, phase) => tf.tidy(() => {",
        '    const scores = tf.neg(squaredDistances(ep.query, classMeans(ep.support, ep.supportLabels, ep.way)));',
        "    return phase === 'eval' ? tf.mul(scores, NaN) : scores;",
        '  }) }) });',
      ].join('\n'),
    );
    const results = path.join(fixture.fx.root, 'results-plugin');
    const { fx, cache } = fixture;
    const training = {
      command: 'run',
      method: 'nan-at-eval',
      size: SIZE,
      cache,
      root: fx.root,
      runs: path.join(fx.root, 'runs'),
      results,
      episodes: 4,
      name: 'nan-at-eval',
    } as const;
    const out = await runCli([...tinyTrainingArgs(training), '--plugin', plugin]);
    t.is(out.code, 3, out.stderr);
    t.regex(
      out.stderr,
      /numerical error: validation at episode 2: the scores of inference mode "plain" are not finite \(NaN for query 0\)[^\n]*\(evaluation episode 0\); stopped, no checkpoint was written before it[^\n]*; plugin loaded: \S*nan-at-eval\.mts/,
    );
    t.notRegex(out.stderr, /best validation|50\.00 ± 0\.00/);
    t.false(await exists(path.join(fixture.fx.root, 'runs', 'nan-at-eval', 'best')), 'no best checkpoint');
    t.false(await exists(results), 'no result');
  },
);
