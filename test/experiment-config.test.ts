import test from 'ava';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import '../src/builtin.ts';
import { loadExperimentConfig } from '../src/experiment/config.ts';
import { configHash } from '../src/experiment/naming.ts';
import { UserError } from '../src/util/errors.ts';

const dir = path.resolve('experiments');

/**
 * configHash of every shipped experiment file's resolved config, taken before the MetaOptNet protocol moved into
 * experiments/protocols/ (`extends`) at 5c2a81d. A run resumes only with the same hash, so each file must resolve
 * to exactly the config (fields, values and order) it did when it was written out in full.
 */
const PINNED: Record<string, string> = {
  'metaoptnet-rr-cpu.json': '3dc0d3cc3d5e4d40',
  'metaoptnet-rr-sla-cpu.json': '66c07c0e3b418c08',
  'metaoptnet-rr-sla.json': '7a6fab6d0f198d31',
  'metaoptnet-rr.json': '3e56e1278d49103b',
  'metaoptnet-svm-cpu-1k.json': 'f3ceae602fc34300',
  'metaoptnet-svm-cpu.json': '54ebe0ef7acc29e1',
  'metaoptnet-svm-sla-cpu.json': '2d5340ebed3d0c6e',
  'metaoptnet-svm-sla.json': '0ad4b029d8f47109',
  'metaoptnet-svm.json': 'ae49c4258e1ed082',
  'protonet-chen-84px-5w1s.json': 'f6304849d6885c5e',
  'protonet-cpu-5w1s.json': 'be12e79c40039036',
  'protonet-metaoptnet-protocol-5w1s.json': '8e970aefcb2a3a29',
  'protonet-metaoptnet-protocol-5w5s.json': '444f644792442e25',
  'protonet-metaoptnet-protocol-cpu.json': 'd982366f6c4fa8e1',
  'protonet-metaoptnet-protocol-sla-5w1s.json': '2c4a26ef0cf85ab3',
  'protonet-metaoptnet-protocol-sla-5w5s.json': 'f58d37ec74545cf3',
  'protonet-metaoptnet-protocol-sla-cpu.json': '5b68464844aa7c48',
  'protonet-paper-5w1s.json': '84fcf46c0126a106',
  'protonet-paper-5w5s.json': '59ca42157b8db224',
  'sla-cpu-5w1s.json': '844d8700f74876e6',
};

test('every shipped experiment file resolves to the config it had before `extends` (configHash pinned)', async (t) => {
  const files = (await fs.readdir(dir)).filter((f) => f.endsWith('.json')).sort();
  t.deepEqual(files, Object.keys(PINNED).sort());
  const hashes = Object.fromEntries(await Promise.all(files.map(async (f) => [f, configHash(await loadExperimentConfig(path.join(dir, f)))])));
  t.deepEqual(hashes, PINNED);
});

test('the MetaOptNet protocol is written once: its experiment files extend experiments/protocols/', async (t) => {
  const files = (await fs.readdir(dir)).filter((f) => f.endsWith('.json') && /metaoptnet/.test(f));
  for (const f of files) {
    const raw = JSON.parse(await fs.readFile(path.join(dir, f), 'utf8'));
    t.regex(raw.extends, /^protocols\/metaoptnet(-cpu)?\.json$/, f);
    t.is(raw.optimizer, undefined, `${f} repeats the optimizer`);
  }
});

test('extends: the file wins field by field, objects merge, arrays are replaced; loops and bad paths are user errors', async (t) => {
  const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'fewshot-extends-'));
  const write = (f: string, v: unknown) => fs.writeFile(path.join(tmp, f), JSON.stringify(v));
  await fs.mkdir(path.join(tmp, 'p'));
  await write('p/base.json', {
    '//': 'a protocol',
    backbone: 'conv4',
    imageSize: 32,
    episodes: 100,
    optimizer: { type: 'sgd', lr: 0.1, momentum: 0.9 },
    lrSchedule: { type: 'piecewise', boundaries: [10, 20], factors: [1, 0.1, 0.01] },
  });
  await write('child.json', { extends: 'p/base.json', method: 'protonet', optimizer: { lr: 0.05 }, lrSchedule: { boundaries: [50, 60] } });
  const c = await loadExperimentConfig(path.join(tmp, 'child.json'), { episodes: 200 });
  t.like(c, {
    method: 'protonet',
    backbone: 'conv4',
    imageSize: 32,
    episodes: 200,
    optimizer: { type: 'sgd', lr: 0.05, momentum: 0.9 },
    lrSchedule: { boundaries: [50, 60], factors: [1, 0.1, 0.01] },
  });
  await write('loop-a.json', { extends: 'loop-b.json', method: 'protonet' });
  await write('loop-b.json', { extends: 'loop-a.json' });
  const loop = await t.throwsAsync(loadExperimentConfig(path.join(tmp, 'loop-a.json')), { instanceOf: UserError });
  t.regex(loop.message, /extends itself \(loop-a\.json → loop-b\.json → loop-a\.json\)/);
  await write('orphan.json', { extends: 'p/missing.json', method: 'protonet' });
  const missing = await t.throwsAsync(loadExperimentConfig(path.join(tmp, 'orphan.json')), { instanceOf: UserError });
  t.regex(missing.message, /cannot read .*missing\.json, which .*orphan\.json extends/);
  await write('bad.json', { extends: 3, method: 'protonet' });
  await t.throwsAsync(loadExperimentConfig(path.join(tmp, 'bad.json')), { instanceOf: UserError, message: /"extends" in .* is not a file path/ });
  await fs.rm(tmp, { recursive: true, force: true });
});
