import { execFileSync } from 'node:child_process';
import { realpathSync } from 'node:fs';

/**
 * The short commit of the git checkout whose top folder is `root`, with `+dirty` when tracked files under src/
 * have uncommitted changes; undefined when `root` is not the top of its own checkout (no git, no repository, or
 * a folder inside someone else's repository — an installed package under a user's project). Used for results
 * (`softwareVersions`) and by the build (`scripts/build-info.mjs`, from dist/), so both say the same.
 */
export function checkoutCommit(root: string): string | undefined {
  const git = (...args: string[]) =>
    execFileSync('git', args, { cwd: root, stdio: ['ignore', 'pipe', 'ignore'] })
      .toString()
      .trim();
  try {
    if (realpathOrSelf(git('rev-parse', '--show-toplevel')) !== realpathOrSelf(root)) return undefined;
    const commit = git('rev-parse', '--short', 'HEAD');
    return git('status', '--porcelain', '--untracked-files=no', 'src') ? `${commit}+dirty` : commit;
  } catch {
    return undefined;
  }
}

function realpathOrSelf(p: string): string {
  try {
    return realpathSync(p);
  } catch {
    return p;
  }
}
