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
  constructor(message: string, readonly episodeIndex?: number) {
    super(episodeIndex === undefined ? message : `${message} (episode ${episodeIndex})`);
    this.name = 'NumericalError';
  }
}
