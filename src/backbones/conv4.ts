import * as tf from '@tensorflow/tfjs-core';
import type { Backbone, BackboneFactory, FastWeights } from './contract.ts';
import { BatchNorm, Conv2d } from './layers.ts';

/**
 * Conv-4 (Snell et al. 2017; Vinyals et al. 2016): 4 × [3×3 conv (64, no bias), batch norm, ReLU, 2×2 max-pool],
 * flattened. 1,600-d at 84 px, 256-d at 32 px.
 */
export class Conv4 implements Backbone {
  readonly id = 'conv4';
  private readonly convs: Conv2d[] = [];
  private readonly norms: BatchNorm[] = [];
  constructor(
    seed: number,
    readonly width = 64,
  ) {
    for (let i = 0; i < 4; i++) {
      this.convs.push(new Conv2d(`conv4/block${i}/conv`, i === 0 ? 3 : width, width, 3, { seed }));
      this.norms.push(new BatchNorm(`conv4/block${i}/bn`, width));
    }
  }
  apply(images: tf.Tensor4D, training: boolean, params?: FastWeights): tf.Tensor2D {
    return tf.tidy(() => {
      let x = images;
      for (let i = 0; i < 4; i++) {
        x = this.norms[i].applyPooled(this.convs[i].apply(x, params), training, 'relu', undefined, params);
      }
      return tf.reshape(x, [x.shape[0], -1]) as tf.Tensor2D;
    });
  }
  trainableVariables(): tf.Variable[] {
    return [...this.convs.flatMap((c) => c.variables()), ...this.norms.flatMap((n) => n.variables())];
  }
  stateVariables(): tf.Variable[] {
    return this.norms.flatMap((n) => n.state());
  }
  embeddingDim(imageSize: number): number {
    let s = imageSize;
    for (let i = 0; i < 4; i++) s = Math.floor(s / 2);
    return s * s * this.width;
  }
}

export const conv4Factory: BackboneFactory = {
  id: 'conv4',
  description: 'Conv-4: 4 × [conv3×3-64, BN, ReLU, max-pool 2] (1,600-d at 84 px)',
  create: ({ seed }) => new Conv4(seed),
};
