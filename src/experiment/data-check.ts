import { checkMiniImageNetFolder, type CheckItem } from '../data/check.ts';
import { datasetDirOf } from '../data/locate.ts';
import { resolveDataset } from '../data/providers/index.ts';
import { UserError } from '../util/errors.ts';
import { datasetOptionsWithData } from './workspace.ts';

export interface DataCheckRequest {
  /** Provider id (default mini-imagenet). */
  dataset?: string;
  datasetOptions?: Record<string, unknown>;
  /** `--data`: the source location; else the provider's environment variable or default location. */
  data?: string;
}

export interface DataCheckReport {
  dataset: string;
  /** The folder or file checked, and which setting named it (`--data`, `$FEWSHOT_DATA`, the default location). */
  source: string;
  origin: string;
  items: CheckItem[];
  ok: boolean;
}

/**
 * `fewshot data check`: what is missing or corrupt in a dataset source, before a long prepare or run finds it.
 * mini-ImageNet gets the item-by-item check of data/check.ts; another provider is located (its own checks run
 * when `data prepare` reads it).
 */
export async function checkData(
  request: DataCheckRequest,
  env: Record<string, string | undefined> = process.env,
  cwd = process.cwd(),
): Promise<DataCheckReport> {
  const id = request.dataset ?? 'mini-imagenet';
  const resolved = resolveDataset(id, datasetOptionsWithData(id, request.datasetOptions ?? {}, request.data));
  if (resolved.provider.id === 'mini-imagenet') {
    const { dir, origin } = datasetDirOf(request.data, env, cwd);
    const check = await checkMiniImageNetFolder(dir);
    return { dataset: id, source: dir, origin, ...check };
  }
  const origin = request.data ? '--data' : "the provider's default";
  try {
    const source = resolved.provider.locate(resolved.options, { flag: request.data, env, cwd });
    return {
      dataset: id,
      source,
      origin,
      ok: true,
      items: [{ item: source, status: 'ok', detail: "found (this provider's files are verified as `fewshot data prepare` reads them)" }],
    };
  } catch (err) {
    if (!(err instanceof UserError)) throw err;
    return { dataset: id, source: request.data ?? '', origin, ok: false, items: [{ item: id, status: 'missing', detail: `${err.problem} (fix: ${err.fix})` }] };
  }
}

/** The error a check ends with when something is missing or corrupt (the CLI prints the report, then throws it). */
export function dataCheckFailure(report: DataCheckReport): UserError | undefined {
  const bad = report.items.filter((i) => i.status === 'missing' || i.status === 'corrupt');
  if (!bad.length) return undefined;
  return new UserError(
    `${bad.length} problem${bad.length === 1 ? '' : 's'} in ${report.source}: ${bad.map((i) => `${i.item} ${i.status}`).join(', ')}`,
    'fetch or replace what is listed above (docs/datasets.md says where mini-ImageNet comes from and its layout), then run `fewshot data check` again',
  );
}
