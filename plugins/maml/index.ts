/**
 * MAML (Finn et al. 2017) and ANIL (Raghu et al. 2020) as fewshot adaptive learners, on the public API only.
 *
 * Both meta-learn the initial parameters θ of backbone + a linear head W·z + b over `way` classes (under SLA the
 * N·M joint classes: the wrapper hands the learner the expanded task and asks for N·M classes in `prepare`).
 * Per task: `innerSteps` SGD steps of the support cross-entropy on fast weights, then query logits of the
 * adapted model; the method's outer loss on them trains θ.
 * - maml: the inner loop adapts every backbone parameter and the head (Backbone.apply with fast weights).
 * - anil: the backbone runs once; the inner loop adapts only the head on the support embeddings.
 * First order (default) drops the inner gradient's own dependence on θ (FOMAML). Second order differentiates
 * through the inner gradient; it works for ANIL but not for MAML on the convolutional backbones, whose inner
 * backward contains kernels without gradients of their own (see fewshot's learners/adaptive.ts).
 * Deviations from Finn et al.: the head starts at a meta-learned zero initialisation (W₀, b₀ = 0 at creation,
 * so the first inner step is the same for any label permutation); batch norm runs in the method's mode
 * (batch statistics in training, running statistics at evaluation) rather than always on batch statistics.
 */
import {
  crossEntropyTwiceDifferentiable,
  detach,
  fastWeights,
  innerSgdStep,
  learnerVariable,
  registerAdaptiveLearner,
  tf,
  z,
  type AdaptiveLearner,
  type Backbone,
  type ImageTask,
  type LearnerSetup,
} from 'fewshot';

export const mamlConfigSchema = z
  .object({
    /** Inner SGD steps per task in meta-training (Finn et al.: 5). */
    innerSteps: z.number().int().min(1).max(50).default(5),
    /** Inner steps at evaluation (Finn et al.: 10). */
    evalInnerSteps: z.number().int().min(1).max(100).default(10),
    /** Inner learning rate α (Finn et al.: 0.01). */
    innerLr: z.number().positive().default(0.01),
    /** First-order approximation (true) or gradients through the inner gradient (false). */
    firstOrder: z.boolean().default(true),
  })
  .strict();
export type MamlConfig = z.infer<typeof mamlConfigSchema>;

type Variant = 'maml' | 'anil';

export class MamlLearner implements AdaptiveLearner {
  readonly kind = 'adaptive' as const;
  private weight?: tf.Variable;
  private bias?: tf.Variable;
  private preparedWay = 0;
  constructor(
    readonly id: Variant,
    readonly config: MamlConfig,
  ) {}

  prepare({ way, embeddingDim }: LearnerSetup): void {
    if (this.weight) return;
    this.preparedWay = way;
    this.weight = learnerVariable(`learner/${this.id}/head/weight`, tf.zeros([embeddingDim, way]));
    this.bias = learnerVariable(`learner/${this.id}/head/bias`, tf.zeros([way]));
  }

  variables(): tf.Variable[] {
    return this.weight && this.bias ? [this.weight, this.bias] : [];
  }

  /** Head logits of embeddings [n, d] for the first `way` classes of head parameters [W, b]. */
  private headLogits(embeddings: tf.Tensor2D, weight: tf.Tensor, bias: tf.Tensor, way: number): tf.Tensor2D {
    const w = tf.slice(weight, [0, 0], [-1, way]) as tf.Tensor2D;
    const b = tf.slice(bias, [0], [way]);
    return tf.add(tf.matMul(embeddings, w), b) as tf.Tensor2D;
  }

  adapt(task: ImageTask, { backbone, phase, training }: { backbone: Backbone; phase: 'train' | 'eval'; training: boolean }) {
    if (!this.weight || !this.bias) throw new Error(`${this.id}: prepare() was not called before adapt()`);
    if (task.way > this.preparedWay) throw new Error(`${this.id}: the task has ${task.way} classes but the head was prepared for ${this.preparedWay}`);
    const steps = phase === 'train' ? this.config.innerSteps : this.config.evalInnerSteps;
    const opts = { lr: this.config.innerLr, firstOrder: this.config.firstOrder };
    const { way, supportLabels } = task;
    // The inner loss must be twice differentiable for second order (tf.logSoftmax's gradient is not).
    const innerLoss = crossEntropyTwiceDifferentiable;
    const nSupport = task.supportImages.shape[0];
    const nQuery = task.queryImages.shape[0];

    if (this.id === 'anil') {
      const embeddings = backbone.apply(tf.concat([task.supportImages, task.queryImages], 0), training);
      const [support, query] = tf.split(embeddings, [nSupport, nQuery], 0) as tf.Tensor2D[];
      // First order: the support embeddings are constants of the inner loop too, not only the head.
      const innerSupport = opts.firstOrder ? detach(support) : support;
      let head: tf.Tensor[] = [this.weight, this.bias];
      for (let k = 0; k < steps; k++) head = innerSgdStep(head, ([w, b]) => innerLoss(this.headLogits(innerSupport, w, b, way), supportLabels), opts);
      return { logits: this.headLogits(query, head[0], head[1], way), embeddings };
    }

    const backboneVars = backbone.trainableVariables();
    const nb = backboneVars.length;
    let params: tf.Tensor[] = [...backboneVars, this.weight, this.bias];
    for (let k = 0; k < steps; k++) {
      params = innerSgdStep(
        params,
        (ps) =>
          innerLoss(
            this.headLogits(backbone.apply(task.supportImages, training, fastWeights(backboneVars, ps.slice(0, nb))), ps[nb], ps[nb + 1], way),
            supportLabels,
          ),
        opts,
      );
    }
    const embeddings = backbone.apply(tf.concat([task.supportImages, task.queryImages], 0), training, fastWeights(backboneVars, params.slice(0, nb)));
    const query = tf.slice(embeddings, [nSupport, 0], [nQuery, -1]) as tf.Tensor2D;
    return { logits: this.headLogits(query, params[nb], params[nb + 1], way), embeddings };
  }
}

for (const variant of ['maml', 'anil'] as const) {
  registerAdaptiveLearner({
    id: variant,
    apiVersion: '1.0',
    description:
      variant === 'maml'
        ? 'MAML: inner SGD steps on every backbone parameter and a linear head (first-order by default; plugin)'
        : 'ANIL: MAML with the inner loop on the linear head only (plugin)',
    configSchema: mamlConfigSchema,
    create: (config) => new MamlLearner(variant, config),
  });
}
