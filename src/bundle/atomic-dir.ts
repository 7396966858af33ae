/**
 * Writes a whole directory at once: every file goes into a temporary directory beside the target
 * (same file system), which is renamed onto the target at the end. On any failure the temporary
 * directory is removed and the target is left as it was, so a failure never leaves half a bundle.
 *
 * Replacing an existing directory is two renames (target → aside, temp → target) followed by
 * removing the old one; Node has no portable atomic directory exchange (renameat2 RENAME_EXCHANGE).
 * If the second rename fails the old directory is renamed back.
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { UserError } from '../ir/errors.js';

export interface DirFile {
  /** Relative path with `/` separators, no `..`. */
  path: string;
  /** Contents in pieces, written in order. */
  parts: readonly Uint8Array[];
}

export interface AtomicWriteOptions {
  /**
   * May the target be replaced when it exists and is not empty? `isReplaceable` says whether an
   * existing directory may be replaced without `force` (e.g. it is an earlier bundle).
   */
  force?: boolean;
  isReplaceable?(dir: string): boolean;
  /** What the directory is called in messages (e.g. 'bundle'). */
  what?: string;
  /** Test hook: called before each file is written (throw to simulate a failure). */
  beforeFile?(path: string): void;
  /** Test hook: called after every file is written, before the rename. */
  beforeRename?(): void;
}

/** Checks, before any work, that `target` may be written: nothing is created. */
export function checkWritableTarget(target: string, opts: AtomicWriteOptions): void {
  const what = opts.what ?? 'directory';
  if (!existsSync(target)) return;
  const st = statSync(target);
  if (!st.isDirectory()) throw new UserError(`the ${what} path exists and is not a directory`, { file: target });
  if (opts.force || readdirSync(target).length === 0) return;
  if (opts.isReplaceable?.(target)) return;
  throw new UserError(`refusing to overwrite a directory that is not a shardc ${what} (use --force to replace it)`, { file: target });
}

export function writeDirAtomic(target: string, files: readonly DirFile[], opts: AtomicWriteOptions = {}): void {
  checkWritableTarget(target, opts);
  const abs = resolve(target);
  const parent = dirname(abs);
  let createdParents: string[] = [];
  const tag = `${process.pid}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
  const tmp = join(parent, `.${basename(abs)}.tmp-${tag}`);
  const aside = join(parent, `.${basename(abs)}.old-${tag}`);
  try {
    createdParents = makeParents(parent);
    mkdirSync(tmp);
    for (const f of files) {
      checkRelative(f.path);
      opts.beforeFile?.(f.path);
      const dest = join(tmp, ...f.path.split('/'));
      mkdirSync(dirname(dest), { recursive: true });
      writeParts(dest, f.parts);
    }
    opts.beforeRename?.();
    if (existsSync(abs)) {
      renameSync(abs, aside);
      try {
        renameSync(tmp, abs);
      } catch (e) {
        renameSync(aside, abs);
        throw e;
      }
      rmSync(aside, { recursive: true, force: true });
    } else {
      renameSync(tmp, abs);
    }
  } catch (e) {
    removeQuietly(tmp);
    for (const d of createdParents.reverse()) removeQuietly(d);
    // The file system said no (permissions, no space, a file where a folder should be): bad input.
    const code = (e as NodeJS.ErrnoException).code;
    if (typeof code === 'string' && /^E[A-Z]+$/.test(code)) throw new UserError(`cannot write the ${opts.what ?? 'directory'} (${code})`, { file: target });
    throw e;
  }
}

function writeParts(file: string, parts: readonly Uint8Array[]): void {
  const fd = openSync(file, 'wx');
  try {
    for (const p of parts) {
      let off = 0;
      while (off < p.length) off += writeSync(fd, p, off, p.length - off);
    }
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function checkRelative(p: string): void {
  const segs = p.split('/');
  if (p === '' || p.startsWith('/') || p.includes('\\') || segs.some((s) => s === '' || s === '.' || s === '..'))
    throw new Error(`bundle file path ${JSON.stringify(p)} is not a plain relative path`);
}

/** Creates missing ancestors of `dir`; returns those created, outermost first (removed again on failure). */
function makeParents(dir: string): string[] {
  const missing: string[] = [];
  let d = dir;
  while (!existsSync(d)) {
    missing.push(d);
    const up = dirname(d);
    if (up === d) break;
    d = up;
  }
  missing.reverse();
  const created: string[] = [];
  try {
    for (const m of missing) {
      mkdirSync(m);
      created.push(m);
    }
  } catch (e) {
    for (const m of created.reverse()) removeQuietly(m);
    throw e;
  }
  return missing;
}

/** Cleanup after a failure must not hide the failure. */
function removeQuietly(p: string): void {
  try {
    rmSync(p, { recursive: true, force: true });
  } catch {
    /* nothing there, or nothing we can do */
  }
}
