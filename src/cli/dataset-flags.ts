import { Option } from 'commander';
import { UserError } from '../util/errors.ts';

/** `--dataset` / `--dataset-option key=value`: which provider reads the data, and its options. */
export interface DatasetFlags {
  dataset?: string;
  datasetOption?: string[];
}

export const datasetOption = () =>
  new Option('--dataset <id>', "dataset provider (`fewshot list` shows them; default: the config's, else the default dataset)");
export const datasetOptionsOption = () =>
  new Option(
    '--dataset-option <key=value...>',
    'a provider option, e.g. --dataset-option root=./my-images split=random (values are JSON when they parse as JSON)',
  );

/** Parse `key=value` pairs; a value that is valid JSON (number, boolean, array, object) is taken as JSON. */
export function parseDatasetOptions(pairs: string[] = []): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0)
      throw new UserError(`--dataset-option "${pair}" is not key=value`, 'write it as --dataset-option name=value, e.g. --dataset-option root=./images');
    const key = pair.slice(0, eq);
    const text = pair.slice(eq + 1);
    let value: unknown = text;
    try {
      value = JSON.parse(text);
    } catch {
      /* a plain string */
    }
    out[key] = value;
  }
  return out;
}

/** `--data mini-imagenet=DIR --data cifar-fs=FILE` → { dataset: location } */
export function parseDataLocations(values: string[] = []): Record<string, string> {
  const out: Record<string, string> = {};
  for (const v of values) {
    const eq = v.indexOf('=');
    if (eq <= 0)
      throw new UserError(
        `--data "${v}" does not say which dataset it is for`,
        'write --data <dataset>=<location>, e.g. --data mini-imagenet=data/mini-imagenet',
      );
    out[v.slice(0, eq)] = v.slice(eq + 1);
  }
  return out;
}
