import test from 'ava';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { compareClassifications } from '../src/experiment/classify.ts';
import { UserError } from '../src/util/errors.ts';

/*
 * `fewshot classify compare`: the paired difference of two classifiers over the identical held-out images, from the
 * per-image correctness their results record. Hand-made results with 8 held-out images: A right on 6, B on 4, A right
 * and B wrong on 3 images, B right and A wrong on 1: per-image differences (×100) are +100 ×3, −100 ×1, 0 ×4.
 */
function result(correct: string, testSha256 = 'a'.repeat(64), groups: Record<string, unknown> = {}) {
  return {
    kind: 'classification',
    modes: ['ag', 'si'],
    seed: 0,
    data: { splitFingerprint: 'f' },
    config: { variant: 'sla', imbalanceRatio: 1 },
    split: { testSha256 },
    accuracy: {
      ag: { overall: { mean: (100 * [...correct].filter((c) => c === '1').length) / correct.length, ci95: 0, std: 0, n: correct.length }, groups, correct },
      si: { overall: { mean: 0, ci95: 0, std: 0, n: 8 }, groups: {}, correct: '00000000' },
    },
  };
}

test('paired difference over identical held-out images, against the hand-computed value; other held-out images refused', async (t) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'fewshot-cmp-'));
  const write = async (name: string, r: unknown) => {
    await fs.mkdir(path.join(dir, name));
    await fs.writeFile(path.join(dir, name, 'result.json'), JSON.stringify(r));
    return path.join(dir, name);
  };
  const a = await write('a', result('11111100', undefined, { few: { classes: 2, images: 8, accuracy: 75 } }));
  const b = await write('b', result('10001110', undefined, { few: { classes: 2, images: 8, accuracy: 50 } }));
  const c = await compareClassifications(a, b);
  // d = [0, 100, 100, 100, 0, 0, −100, 0]: mean 25; Σd² = 40000, so s² = (40000 − 8·25²)/7 = 5000 and
  // ci95 = 1.96·√5000/√8 ≈ 49.0.
  t.is(c.pairedDifference.mean, 25);
  t.true(Math.abs(c.pairedDifference.ci95 - (1.96 * Math.sqrt(5000)) / Math.sqrt(8)) < 1e-9);
  t.is(c.pairedDifference.n, 8);
  t.is(c.groups.few, 25);
  t.is(c.a.mode, 'ag');
  const si = await compareClassifications(a, b, { a: 'si', b: 'si' });
  t.is(si.pairedDifference.mean, 0);
  const other = await write('other', result('11111100', 'b'.repeat(64)));
  const err = await t.throwsAsync(compareClassifications(a, other), { instanceOf: UserError });
  t.regex(err!.message, /different held-out images/);
  await t.throwsAsync(compareClassifications(a, b, { a: 'sd' }), { instanceOf: UserError, message: /no inference mode "sd"/ });
  await fs.rm(dir, { recursive: true, force: true });
});
