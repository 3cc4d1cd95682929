import { promises as fs } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { episodeSpecSchema } from '../episodes/spec.ts';
import { UserError } from '../util/errors.ts';
import { didYouMean } from '../util/suggest.ts';

/**
 * A paper table as data (`experiments/tables/<id>.json`): the cells to fill (method, dataset, episode spec,
 * inference mode), the published value of each cell with its source, and one or more budgets under which the
 * cells can be run. `fewshot reproduce <id>` plans its runs from this file and writes the filled table.
 *
 * A budget is either the published protocol (`protocol: "published"`: our number may be checked against the
 * published CI) or a reduced one (`"reduced"`, e.g. what a 2-core CPU finishes: only the *direction* of paired
 * differences can be compared with the paper, never the absolute numbers).
 */
const id = z.string().regex(/^[a-z0-9][a-z0-9.-]*$/, 'ids are lower-case letters, digits, dots and dashes');
const configObject = z.record(z.string(), z.unknown());

export const publishedValueSchema = z
  .object({
    /** Accuracy in percent. */
    mean: z.number().min(0).max(100),
    /** Half-width of the published 95% interval in percent, when the source gives one. */
    ci95: z.number().min(0).optional(),
    /** Paper, table and row the number comes from. */
    source: z.string().min(1),
    /** The budgets this value is the reference for (default: every budget). */
    budgets: z.array(z.string()).optional(),
  })
  .strict();

export const budgetSchema = z
  .object({
    label: z.string().min(1),
    protocol: z.enum(['published', 'reduced']),
    /** Seeds 0..seeds-1 are run for every cell (`--seeds` overrides). */
    seeds: z.number().int().min(1),
    /** Experiment config fields shared by all cells of this budget (merged under the cell's own fields). */
    base: configObject,
    /** Classification config fields (`fewshot classify train`) shared by this budget's classification cells. */
    classificationBase: configObject.optional(),
  })
  .strict();

export const cellSchema = z
  .object({
    id,
    /** Row and column labels of the printed table. */
    row: z.string().min(1),
    column: z.string().min(1),
    dataset: z.string().min(1),
    method: z.string().min(1),
    /** The inference mode whose accuracy fills the cell (plain, ag, si, sd, ...). */
    mode: z.string().min(1),
    test: episodeSpecSchema,
    /** Training episode spec; unset fields default to the test spec (and the budget's train query). */
    train: episodeSpecSchema.partial().optional(),
    /** Config fields for every budget, and per budget (`budgetConfig.<budget>`), merged over the budget base. */
    config: configObject.optional(),
    budgetConfig: z.record(z.string(), configObject).optional(),
    /** Budgets this cell does not run under. */
    skipBudgets: z.array(z.string()).optional(),
    /** Empty when no published value could be found: the table says so rather than guessing one. */
    published: z.array(publishedValueSchema),
    note: z.string().optional(),
  })
  .strict();

/**
 * A cell of the classification half of a paper (issue 31): a classifier trained on all classes of a split (`fewshot
 * classify train`), measured by its top-1 accuracy on held-out images (`classification`), by how well its scores tell
 * its own held-out images from another distribution's (`ood`, `fewshot ood`), or by few-shot accuracy from its frozen
 * embedding on the committed test episodes (`pretrained-fewshot`, `fewshot pretrained-eval`). `fewshot reproduce` plans
 * only the episodic cells; these list the commands that fill them (classificationCellCommands).
 */
export const classificationCellSchema = z
  .object({
    id,
    kind: z.enum(['classification', 'ood', 'pretrained-fewshot']),
    row: z.string().min(1),
    column: z.string().min(1),
    /** The classifier's dataset provider. */
    dataset: z.string().min(1),
    /** plain | sla | sla-sd | da | mt (fewshot classify train --variant). */
    variant: z.string().min(1),
    /** The inference mode whose number fills the cell (plain, ag, si, sd; pretrained-fewshot: protonet, protonet-ag, ...). */
    mode: z.string().min(1),
    /** classification: top1; ood: auroc / auprIn / auprOut / fprAt95Tpr; pretrained-fewshot: accuracy. All in percent. */
    metric: z.enum(['top1', 'auroc', 'auprIn', 'auprOut', 'fprAt95Tpr', 'accuracy']),
    /** ood: the out-distribution as `<dataset> <split>` (e.g. "mini-imagenet test"). */
    out: z.string().optional(),
    /** pretrained-fewshot: the episode spec of the committed test file. */
    test: episodeSpecSchema.optional(),
    /** Classification config fields for every budget, and per budget, merged over the budget's classificationBase. */
    config: configObject.optional(),
    budgetConfig: z.record(z.string(), configObject).optional(),
    skipBudgets: z.array(z.string()).optional(),
    published: z.array(publishedValueSchema),
    note: z.string().optional(),
  })
  .strict()
  .superRefine((c, ctx) => {
    if (c.kind === 'ood' && !c.out)
      ctx.addIssue({ code: 'custom', path: ['out'], message: `ood cell "${c.id}" needs "out": the out-distribution as "<dataset> <split>"` });
    if (c.kind === 'pretrained-fewshot' && !c.test)
      ctx.addIssue({ code: 'custom', path: ['test'], message: `pretrained-fewshot cell "${c.id}" needs "test": its episode spec` });
    if (c.kind === 'classification' && c.metric !== 'top1')
      ctx.addIssue({ code: 'custom', path: ['metric'], message: `classification cell "${c.id}" is filled by top1` });
    if (c.kind === 'ood' && !['auroc', 'auprIn', 'auprOut', 'fprAt95Tpr'].includes(c.metric))
      ctx.addIssue({ code: 'custom', path: ['metric'], message: `ood cell "${c.id}" is filled by auroc, auprIn, auprOut or fprAt95Tpr` });
    if (c.kind === 'pretrained-fewshot' && c.metric !== 'accuracy')
      ctx.addIssue({ code: 'custom', path: ['metric'], message: `pretrained-fewshot cell "${c.id}" is filled by accuracy` });
  });

export const comparisonSchema = z
  .object({
    id,
    /** Paired difference a − b over the identical test episodes. */
    a: id,
    b: id,
    label: z.string().optional(),
  })
  .strict();

export const tableSpecSchema = z
  .object({
    format: z.literal('fewshot-table/1'),
    id,
    title: z.string().min(1),
    source: z.string().min(1),
    about: z.string().optional(),
    budgets: z.record(z.string(), budgetSchema),
    cells: z.array(cellSchema).min(1),
    /** The classification / OOD / pre-train-then-few-shot cells (issue 31), beside the episodic ones. */
    classificationCells: z.array(classificationCellSchema).default([]),
    comparisons: z.array(comparisonSchema).default([]),
  })
  .strict()
  .superRefine((t, ctx) => {
    const ids = new Set<string>();
    for (const [i, c] of t.classificationCells.entries()) {
      if (ids.has(c.id)) ctx.addIssue({ code: 'custom', path: ['classificationCells', i, 'id'], message: `cell id "${c.id}" appears twice` });
      ids.add(c.id);
      for (const b of [...Object.keys(c.budgetConfig ?? {}), ...(c.skipBudgets ?? []), ...c.published.flatMap((p) => p.budgets ?? [])]) {
        if (!(b in t.budgets))
          ctx.addIssue({ code: 'custom', path: ['classificationCells', i], message: `cell "${c.id}" names budget "${b}", which the table does not define` });
      }
    }
    for (const [i, c] of t.cells.entries()) {
      if (ids.has(c.id)) ctx.addIssue({ code: 'custom', path: ['cells', i, 'id'], message: `cell id "${c.id}" appears twice` });
      ids.add(c.id);
      for (const b of [...Object.keys(c.budgetConfig ?? {}), ...(c.skipBudgets ?? []), ...c.published.flatMap((p) => p.budgets ?? [])]) {
        if (!(b in t.budgets))
          ctx.addIssue({ code: 'custom', path: ['cells', i], message: `cell "${c.id}" names budget "${b}", which the table does not define` });
      }
    }
    for (const [i, cmp] of t.comparisons.entries()) {
      for (const side of ['a', 'b'] as const) {
        if (!ids.has(cmp[side]))
          ctx.addIssue({ code: 'custom', path: ['comparisons', i, side], message: `comparison "${cmp.id}" names unknown cell "${cmp[side]}"` });
        else if (!t.cells.some((c) => c.id === cmp[side]))
          ctx.addIssue({
            code: 'custom',
            path: ['comparisons', i, side],
            message: `comparison "${cmp.id}" names classification cell "${cmp[side]}": comparisons pair episodic cells (pair a pretrained-eval result with \`fewshot compare\`)`,
          });
      }
      const a = t.cells.find((c) => c.id === cmp.a);
      const b = t.cells.find((c) => c.id === cmp.b);
      if (a && b && (a.dataset !== b.dataset || JSON.stringify(a.test) !== JSON.stringify(b.test))) {
        ctx.addIssue({
          code: 'custom',
          path: ['comparisons', i],
          message: `comparison "${cmp.id}" pairs cells with different datasets or test episodes; a paired difference needs identical episodes`,
        });
      }
    }
  });

export type TableSpec = z.infer<typeof tableSpecSchema>;
export type CellSpec = z.infer<typeof cellSchema>;
export type BudgetSpec = z.infer<typeof budgetSchema>;
export type PublishedValue = z.infer<typeof publishedValueSchema>;
export type ClassificationCellSpec = z.infer<typeof classificationCellSchema>;

/** The published reference of a cell under a budget: the first value listed for that budget (or for all). */
export function publishedFor(cell: CellSpec, budget: string): PublishedValue | undefined {
  return cell.published.find((p) => !p.budgets || p.budgets.includes(budget));
}

export function parseTableSpec(json: unknown, where: string): TableSpec {
  const parsed = tableSpecSchema.safeParse(json);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
    throw new UserError(`table ${where} is invalid: ${issues}`, 'fix the field in the table file (format: see experiments/tables/README.md)');
  }
  return parsed.data;
}

/**
 * Find a table by id (a file `<dir>/<id>.json`) or by path, and validate it.
 */
export async function readTableSpec(nameOrPath: string, tablesDir: string): Promise<{ file: string; table: TableSpec }> {
  const file = nameOrPath.endsWith('.json') ? nameOrPath : path.join(tablesDir, `${nameOrPath}.json`);
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch {
    const known = await listTables(tablesDir);
    throw new UserError(
      `unknown table "${nameOrPath}"${didYouMean(nameOrPath, known)} (no file ${file})`,
      `use one of: ${known.join(', ') || '(none found)'}, or pass the path of a table file`,
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new UserError(`table file ${file} is not valid JSON: ${(err as Error).message}`, 'fix the JSON syntax');
  }
  return { file, table: parseTableSpec(json, file) };
}

export async function listTables(tablesDir: string): Promise<string[]> {
  const names = await fs.readdir(tablesDir).catch(() => [] as string[]);
  return names
    .filter((n) => n.endsWith('.json'))
    .map((n) => n.slice(0, -'.json'.length))
    .sort();
}
