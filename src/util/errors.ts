/**
 * An error caused by the user's input (flags, files, data), as opposed to a bug.
 * The CLI prints `problem` and `fix` without a stack trace and exits with code 2.
 */
export class UserError extends Error {
  constructor(
    readonly problem: string,
    readonly fix: string,
  ) {
    super(`${problem}\n  fix: ${fix}`);
    this.name = 'UserError';
  }
}

/** Numerical failure during training/eval (NaN loss, singular system, solver did not converge). */
export class NumericalError extends Error {
  constructor(
    readonly detail: string,
    readonly episodeIndex?: number,
    readonly where?: string,
  ) {
    super(episodeIndex === undefined ? detail : `${detail} (${where ?? 'episode'} ${episodeIndex})`);
    this.name = 'NumericalError';
  }
}

/** Run `f`; a NumericalError raised without an episode index gets `index` attached (heads do not know it). */
export function withEpisodeIndex<T>(index: number, where: string, f: () => T): T {
  try {
    return f();
  } catch (err) {
    if (err instanceof NumericalError && err.episodeIndex === undefined) throw new NumericalError(err.detail, index, where);
    throw err;
  }
}
