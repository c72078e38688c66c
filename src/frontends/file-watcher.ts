import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';

/** Editors and Kubernetes write a file in several steps (temporary file, rename, symlink swap): react once they settle. */
const SETTLE_MS = 150;

/**
 * Calls `onChange` after the file changes. The directory is watched, not the
 * file: an editor's rename or a ConfigMap's `..data` symlink swap replaces the
 * file's inode, which a watch on the file itself would keep following.
 */
export function watchConfigFile(path: string, onChange: () => void, onError: (error: Error) => void): { close(): void } {
  const name = basename(path);
  let timer: NodeJS.Timeout | undefined;
  let watcher: FSWatcher;
  try {
    watcher = watch(dirname(path), { persistent: false }, (_event, changed) => {
      // A ConfigMap mount changes `..data`, never the file's own name.
      if (changed !== null && changed !== name && !changed.startsWith('..')) return;
      clearTimeout(timer);
      timer = setTimeout(onChange, SETTLE_MS);
      timer.unref();
    });
  } catch (error) {
    onError(error as Error);
    return { close: () => undefined };
  }
  watcher.on('error', onError);
  return {
    close() {
      clearTimeout(timer);
      watcher.close();
    },
  };
}
