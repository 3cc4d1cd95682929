import * as tf from '@tensorflow/tfjs-core';

/*
 * Pure helpers for label augmentation (docs/reference.md §1.1, §1.4). Layouts: a batch of B images expands to
 * B·M rows in image-major order (row b·M + j = t_j(x_b)); joint class index = i·M + l (class-major).
 */

/** Joint labels of an expanded batch: out[b·M + j] = labels[b]·M + j. */
export function jointLabels(labels: Int32Array, transformCount: number): Int32Array {
  const out = new Int32Array(labels.length * transformCount);
  for (let b = 0; b < labels.length; b++) for (let j = 0; j < transformCount; j++) out[b * transformCount + j] = labels[b] * transformCount + j;
  return out;
}

/** Class labels of an expanded batch, every copy keeping its image's label (DA): out[b·M + j] = labels[b]. */
export function repeatLabels(labels: Int32Array, transformCount: number): Int32Array {
  const out = new Int32Array(labels.length * transformCount);
  for (let b = 0; b < labels.length; b++) out.fill(labels[b], b * transformCount, (b + 1) * transformCount);
  return out;
}

/** Transformation labels of B expanded images (MT's auxiliary task): out[b·M + j] = j. */
export function transformLabels(batch: number, transformCount: number): Int32Array {
  const out = new Int32Array(batch * transformCount);
  for (let i = 0; i < out.length; i++) out[i] = i % transformCount;
  return out;
}

function checkJointShape(logits: tf.Tensor2D, transformCount: number): [number, number] {
  const [rows, cols] = logits.shape;
  if (rows % transformCount !== 0 || cols % transformCount !== 0) {
    throw new Error(`joint logits [${rows}, ${cols}] are not divisible by M=${transformCount}`);
  }
  return [rows / transformCount, cols / transformCount];
}

/**
 * SLA+AG on pre-softmax joint logits [B·M, N·M] → [B, N]: s[b, i] = (1/M) Σ_j logit[b·M + j, i·M + j].
 * Each copy j contributes only its own transformation column j. Reshape + diagonal mask keeps it
 * differentiable with ops every backend has.
 */
export function aggregateJointLogits(logits: tf.Tensor2D, transformCount: number): tf.Tensor2D {
  const m = transformCount;
  const [batch, way] = checkJointShape(logits, m);
  return tf.tidy(() => {
    const blocks = tf.reshape(logits, [batch, m, way, m]); // [b, j, i, l]
    const diagonal = tf.reshape(tf.eye(m), [1, m, 1, m]); // keeps l = j
    return tf.div(tf.sum(tf.mul(blocks, diagonal), [1, 3]), m) as tf.Tensor2D;
  });
}

/** SLA+SI: identity rows and identity columns of joint logits [B·M, N·M] → [B, N]: out[b, i] = logit[b·M, i·M]. */
export function singleInferenceLogits(logits: tf.Tensor2D, transformCount: number): tf.Tensor2D {
  const m = transformCount;
  const [batch, way] = checkJointShape(logits, m);
  return tf.tidy(() => tf.reshape(tf.slice(tf.reshape(logits, [batch, m, way, m]), [0, 0, 0, 0], [batch, 1, way, 1]), [batch, way]) as tf.Tensor2D);
}

/** The untransformed (j = 0) rows of an expanded [B·M, d] matrix → [B, d]. Slice-based, so its gradient is a pad. */
export function identityRows(expanded: tf.Tensor2D, transformCount: number): tf.Tensor2D {
  const [rows, dim] = expanded.shape;
  if (rows % transformCount !== 0) throw new Error(`${rows} rows are not divisible by M=${transformCount}`);
  const batch = rows / transformCount;
  return tf.tidy(() => tf.reshape(tf.slice(tf.reshape(expanded, [batch, transformCount, dim]), [0, 0, 0], [batch, 1, dim]), [batch, dim]) as tf.Tensor2D);
}
