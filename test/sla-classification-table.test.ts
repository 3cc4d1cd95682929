import test from 'ava';
import path from 'node:path';
import { parseTableSpec, readTableSpec } from '../src/reports/table-spec.ts';
import { planTable } from '../src/experiment/reproduce/plan.ts';
import { REPO_ROOT } from './fixtures/mini-imagenet.ts';

const TABLES = path.join(REPO_ROOT, 'experiments', 'tables');

test("the sla-classification table: the seed paper's classification rows with their listed values, OOD rows without an unverified one", async (t) => {
  const { table } = await readTableSpec('sla-classification', TABLES);
  const cell = (id: string) => table.classificationCells.find((c) => c.id === id)!;
  t.deepEqual(
    ['cifar10-lt-sla', 'cifar100-lt-sla', 'imagenet-sla'].map((id) => cell(id).published.map((p) => p.mean)),
    [[89.58], [59.89], [76.17]],
  );
  const ood = table.classificationCells.filter((c) => c.kind === 'ood' && c.dataset === 'folder');
  t.is(ood.length, 4);
  for (const c of ood) {
    t.deepEqual(c.published, [], `${c.id}: no value we could not find in the paper`);
    t.regex(c.note ?? '', /could not find/);
  }
  // The CPU budget is honest about its dataset; every mini-ImageNet cell runs only there, every CIFAR/ImageNet one only on paper.
  t.is(table.budgets.cpu.protocol, 'reduced');
  t.regex(table.budgets.cpu.label, /DIFFERENT dataset/);
  for (const c of table.classificationCells) t.deepEqual(c.skipBudgets, c.dataset === 'mini-imagenet' ? ['paper'] : ['cpu'], c.id);
  // plain vs SLA+AG vs SLA+SD, balanced and at ratio 100; OOD plain vs SLA; pre-trained plain vs SLA at 1 and 5 shots
  const mini = table.classificationCells.filter((c) => c.dataset === 'mini-imagenet');
  t.deepEqual(
    mini.filter((c) => c.kind === 'classification').map((c) => [c.variant, c.mode, c.config?.imbalanceRatio ?? 1]),
    [
      ['plain', 'plain', 1],
      ['sla', 'ag', 1],
      ['sla-sd', 'sd', 1],
      ['plain', 'plain', 100],
      ['sla', 'ag', 100],
      ['sla-sd', 'sd', 100],
    ],
  );
  t.deepEqual(
    mini.filter((c) => c.kind === 'pretrained-fewshot').map((c) => [c.test!.shot, c.mode]),
    [
      [1, 'protonet'],
      [1, 'protonet-ag'],
      [5, 'protonet'],
      [5, 'protonet-ag'],
    ],
  );
});

test("its episodic ProtoNet cells are the sla-fewshot table's: the same runs, so the pre-trained results pair with them", async (t) => {
  const { table } = await readTableSpec('sla-classification', TABLES);
  const { table: fewshot } = await readTableSpec('sla-fewshot', TABLES);
  for (const budget of ['cpu', 'paper']) {
    const ours = planTable(table, budget);
    const theirs = planTable(fewshot, budget, { only: ['mini-1s-protonet', 'mini-5s-protonet'] });
    t.deepEqual(
      ours.runs.map((r) => r.key),
      theirs.runs.map((r) => r.key),
      budget,
    );
    t.deepEqual(
      ours.runs.map((r) => r.config),
      theirs.runs.map((r) => r.config),
      budget,
    );
  }
});

test('classification cells: an ood cell needs its out-distribution, metrics fit the kind, comparisons pair episodic cells only', async (t) => {
  const { table } = await readTableSpec('sla-classification', TABLES);
  const json = JSON.parse(JSON.stringify(table)) as Record<string, any>;
  const ood = json.classificationCells.find((c: { kind: string }) => c.kind === 'ood');
  delete ood.out;
  t.throws(() => parseTableSpec(json, 'x.json'), { message: /ood cell "mini-ood-plain-plain" needs "out"/ });
  ood.out = 'mini-imagenet test';
  ood.metric = 'top1';
  t.throws(() => parseTableSpec(json, 'x.json'), { message: /is filled by auroc/ });
  ood.metric = 'auroc';
  json.comparisons = [{ id: 'bad', a: 'mini-1s-protonet', b: 'mini-cls-plain' }];
  t.throws(() => parseTableSpec(json, 'x.json'), { message: /names classification cell "mini-cls-plain": comparisons pair episodic cells/ });
  json.comparisons = [];
  json.classificationCells.push({ ...json.classificationCells[0] });
  t.throws(() => parseTableSpec(json, 'x.json'), { message: /cell id "mini-cls-plain" appears twice/ });
});
