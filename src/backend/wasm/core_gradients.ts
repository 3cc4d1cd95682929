/**
 * Registers tfjs-core's gradient definitions (tf.grads / tf.variableGrads need them on every backend).
 *
 * Why this exists: `import * as tf from '@tensorflow/tfjs-core'` under Node loads the CJS bundle
 * (dist/tf-core.node.js), which contains no gradient configs; only the `@tensorflow/tfjs` umbrella package
 * registers them. tfjs-core ships them as ESM files (dist/register_all_gradients.js) whose relative imports
 * have no extensions (`'./gradients'`, where both a file and a folder of that name exist), so Node's ESM
 * resolver refuses them. A tiny resolve hook maps such specifiers to the `.js` file next to the importer. The gradient functions then
 * build on tfjs-core's ESM op modules, which share the one global engine, kernel and gradient registries with
 * the CJS bundle (tfjs keeps them on the global object and makes `instanceof Tensor` structural for this).
 */
import * as tf from '@tensorflow/tfjs-core';
import { register } from 'node:module';

const RESOLVE_HOOK = `
import { existsSync } from 'node:fs';
export async function resolve(specifier, context, next) {
  const parent = context.parentURL ?? '';
  if (specifier.startsWith('.') && !specifier.endsWith('.js') && parent.includes('/@tensorflow/tfjs-core/dist/')) {
    const file = new URL(specifier + '.js', parent);
    if (existsSync(file)) return next(file.href, context);
  }
  return next(specifier, context);
}`;

let pending: Promise<void> | null = null;

/** Whether the gradients a convnet training step needs are registered. */
export function coreGradientsRegistered(): boolean {
  return tf.getGradient(tf.Conv2D) != null && tf.getGradient(tf.Sum) != null && tf.getGradient(tf.FusedBatchNorm) != null;
}

/** Registers all tfjs-core gradients once (no-op when something else already did). */
export function registerCoreGradients(): Promise<void> {
  if (coreGradientsRegistered()) return Promise.resolve();
  pending ??= (async () => {
    register(`data:text/javascript,${encodeURIComponent(RESOLVE_HOOK)}`, import.meta.url);
    const specifier = '@tensorflow/tfjs-core/dist/register_all_gradients.js';
    await import(specifier);
    if (!coreGradientsRegistered()) throw new Error('tfjs-core gradients did not register');
  })();
  return pending;
}
