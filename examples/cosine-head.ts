/**
 * A plugin head, loaded with `--plugin ./examples/cosine-head.ts`: cosine similarity to class means, scaled.
 * It imports only the public API (`fewshot`, also in an installed package) and registers itself at import
 * time; every wrapper then applies to it (`cosine`, `cosine-sla`, ...).
 */
import { classMeans, registerHead, tf, z } from 'fewshot';

const config = z.object({ scale: z.number().positive().default(10) }).strict();

registerHead({
  id: 'cosine',
  apiVersion: '1.0',
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
