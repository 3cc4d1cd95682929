import path from 'node:path';
import { makeEpisodes, writeEpisodesFile } from './inputs.ts';
import type { MethodSpec } from './ours.ts';
import type { BenchBackend } from './ours-runner.ts';
import type { StepPolicy } from './policy.ts';

export const METHOD_SEED = 1;
export const INPUT_SEED = 'fewshot-bench';
/** Distinct seeded episodes each workload cycles through. */
export const EPISODE_POOL = 2;

/** What every workload runner needs: options, the peer's python, the temp folder, where notes go. */
export interface BenchContext {
  /** Temp folder of this invocation (episodes, weights, worker requests); removed at the end. */
  work: string;
  /** Interpreter that imports torch; undefined: no peer (--no-peer, or none could be found). */
  python: string | undefined;
  quick: boolean;
  policy: StepPolicy;
  memory: { warmup: number; steps: number; sampleEvery: number };
  /** Search the peer's allocator, memory format and wait policy (else one fixed setting). */
  peerSearch: boolean;
  backend: BenchBackend;
  /** Also time ours on plain wasm beside `backend` (--with-wasm). */
  withWasm: boolean;
  dataset: string | undefined;
  log: (msg: string) => void;
  notes: string[];
  /** The seeded episode file for a shape, written on first use and shared by train/eval, every method and both sides. */
  inputsFor(spec: MethodSpec): Promise<string>;
}

export function episodeFiles(work: string): (spec: MethodSpec) => Promise<string> {
  const files = new Map<string, string>();
  return async (spec) => {
    const key = `${spec.imageSize}px-${spec.way}w${spec.shot}s${spec.query}q`;
    let file = files.get(key);
    if (!file) {
      file = path.join(work, `episodes-${key}.f32`);
      await writeEpisodesFile(file, makeEpisodes(spec, EPISODE_POOL, `${INPUT_SEED}/${key}`));
      files.set(key, file);
    }
    return file;
  };
}
