/**
 * Runs one of our workloads in its own process (started by bench/lib/ours.ts#runOursWorkload):
 *
 *   node --import tsx bench/lib/ours-worker.ts <request.json>
 *
 * Each workload gets a fresh wasm heap: the heap never shrinks, so a big workload would inflate later ones, and a
 * wasm abort (e.g. the 4 GiB heap running out) kills the module for the rest of the process. The result (or the
 * error) is written as JSON to the request's `resultFile`.
 */
import { promises as fs } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../../src/backend/select.ts';
import { Adam } from '../../src/train/optimizer.ts';
import { trainingStep } from '../../src/train/step.ts';
import { disposeEpisode } from '../../src/episodes/images.ts';
import { episodeImages } from './inputs.ts';
import { buildBenchMethod, exportWeights, LEARNING_RATE, timeOursEval, timeOursTrain, type MethodSpec } from './ours.ts';
import { timeOursHead, type HeadSpec } from './heads.ts';
import type { StepPolicy } from './policy.ts';
import type { BenchBackend } from './ours-runner.ts';

export interface WorkerRequest {
  op: 'train' | 'eval' | 'memory' | 'head';
  backend: BenchBackend;
  /**
   * Thread count of the whole engine: the runner starts the worker with FEWSHOT_WASM_THREADS and
   * FEWSHOT_ONEDNN_THREADS set to it (1: the single-threaded wasm build and one oneDNN thread).
   */
  threads: number;
  /** train / eval / memory. */
  spec?: MethodSpec;
  /** head: the head and episode shape; `inputsFile` then holds embeddings (bench/lib/heads.ts). */
  headSpec?: HeadSpec;
  seed: number;
  inputsFile: string;
  episodes: number;
  /** Where to write the method's initial weights for the peer (float32 LE; names and shapes in `<file>.json`). */
  weightsFile: string;
  resultFile: string;
  policy?: StepPolicy;
  memory?: { warmup: number; steps: number; sampleEvery: number };
}

export interface MemorySample {
  episode: number;
  numTensors: number;
  rssBytes: number;
  heapUsedBytes: number;
}

async function readEpisodes(file: string, count: number): Promise<Float32Array[]> {
  const buf = await fs.readFile(file);
  const all = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
  const per = all.length / count;
  return Array.from({ length: count }, (_, e) => all.slice(e * per, (e + 1) * per));
}

function memorySample(episode: number): MemorySample {
  const mem = process.memoryUsage();
  return { episode, numTensors: tf.memory().numTensors, rssBytes: mem.rss, heapUsedBytes: mem.heapUsed };
}

async function main(): Promise<void> {
  const req = JSON.parse(await fs.readFile(process.argv[2], 'utf8')) as WorkerRequest;
  try {
    const backend = await selectBackend(req.backend);
    const wasm = await import('@tensorflow/tfjs-backend-wasm');
    const acc = backend.accelerator;
    const engine = {
      backend: backend.choice,
      detail: backend.detail,
      wasmThreads: wasm.getThreadsCount(),
      onednn: acc ? { version: acc.version, isa: acc.isa, threads: acc.threads } : null,
    };
    if (engine.wasmThreads !== req.threads || (acc && acc.threads !== req.threads)) {
      throw new Error(`asked for ${req.threads} threads, the engine runs ${engine.wasmThreads} wasm${acc ? ` and ${acc.threads} oneDNN` : ''} threads`);
    }
    const info = { engine, tfjsBackendWasm: wasm.version_wasm };
    const episodes = await readEpisodes(req.inputsFile, req.episodes);
    if (req.op === 'head') {
      await fs.writeFile(req.resultFile, JSON.stringify({ ok: true, ...info, ...timeOursHead(req.headSpec!, episodes, req.policy!) }));
      return;
    }
    const spec = req.spec!;
    const method = buildBenchMethod(spec, req.seed);
    const exported = req.op === 'eval' ? [...method.trainableVariables(), ...method.stateVariables()] : method.trainableVariables();
    const weightsMeta = await exportWeights(exported, req.weightsFile);
    // Beside the weights, so the peer can start from them even if our run fails later.
    await fs.writeFile(`${req.weightsFile}.json`, JSON.stringify(weightsMeta));
    let result: object;
    if (req.op === 'train') result = timeOursTrain(method, spec, episodes, req.policy!);
    else if (req.op === 'eval') result = timeOursEval(method, spec, episodes, req.policy!);
    else {
      // The trainer's loop: a fresh episode tensor each step, trainingStep, loss read back, episode disposed.
      const { warmup, steps, sampleEvery } = req.memory!;
      const trainable = method.trainableVariables();
      const optimizer = new Adam();
      const start = memorySample(0);
      let before = start;
      let t0 = performance.now();
      const samples: MemorySample[] = [];
      for (let i = 0; i < warmup + steps; i++) {
        const ep = episodeImages(spec, episodes[i % episodes.length]);
        const loss = trainingStep(method, trainable, optimizer, [ep], LEARNING_RATE);
        loss.dataSync();
        loss.dispose();
        disposeEpisode(ep);
        const done = i + 1 - warmup;
        if (done === 0) {
          before = memorySample(0);
          t0 = performance.now();
        } else if (done > 0 && (done % sampleEvery === 0 || done === steps)) samples.push(memorySample(done));
      }
      result = { start, before, after: samples[samples.length - 1], samples, msPerEpisode: (performance.now() - t0) / steps };
    }
    await fs.writeFile(req.resultFile, JSON.stringify({ ok: true, ...info, weightsMeta, ...result }));
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    await fs.writeFile(req.resultFile, JSON.stringify({ ok: false, error: message.split('\n')[0].slice(0, 500) }));
    process.exitCode = 1;
  }
}

await main();
