/**
 * A plugin head, loaded with `--plugin ./examples/cosine-head.ts`: cosine similarity to class means, scaled.
 * It registers itself at import time; every wrapper then applies to it (`cosine`, `cosine-sla`, ...).
 */
import * as tf from '@tensorflow/tfjs-core';
import { z } from 'zod';
import { registerHead } from '../src/learners/registry.ts';
import { classMeans } from '../src/learners/ops.ts';

const config = z.object({ scale: z.number().positive().default(10) }).strict();

registerHead({
  id: 'cosine',
  description: 'cosine similarity to class means (example plugin)',
  configSchema: config,
  create: ({ scale }) => ({
    id: 'cosine',
    variables: () => [],
    logits: (ep) =>
      tf.tidy(() => {
        const protos = classMeans(ep.support, ep.supportLabels, ep.way);
        const unit = (x: tf.Tensor2D) => tf.div(x, tf.add(tf.norm(x, 'euclidean', 1, true), 1e-8)) as tf.Tensor2D;
        return tf.mul(tf.matMul(unit(ep.query), unit(protos), false, true), scale) as tf.Tensor2D;
      }),
  }),
});
