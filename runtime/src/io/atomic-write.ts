import * as fs from 'node:fs';

/**
 * Writes a file whole or not at all: the text goes to a temporary file beside it, which is then renamed
 * over the target (a rename within one folder is atomic on POSIX). A reader (a pool reading its catalog,
 * HAProxy reading a map, a pool reading its hot set) sees the old file or the new one, never half of one.
 * The temporary name carries the process id, so two processes writing the same file do not mix.
 */
export function writeAtomic(file: string, data: string | Uint8Array): void {
  const temp = `${file}.${process.pid}.tmp`;
  try {
    fs.writeFileSync(temp, data);
    fs.renameSync(temp, file);
  } catch (e) {
    fs.rmSync(temp, { force: true });
    throw e;
  }
}

/** Moves a finished temporary file over its target (atomic; the temporary is removed if the move fails). */
export function replaceWith(temp: string, file: string): void {
  try {
    fs.renameSync(temp, file);
  } catch (e) {
    fs.rmSync(temp, { force: true });
    throw e;
  }
}
