/**
 * Writes a whole directory at once: every file goes into a temporary directory beside the target
 * (same file system), which is renamed onto the target at the end. On any failure the temporary
 * directory is removed and the target is left as it was, so a failure never leaves half a bundle.
 *
 * Replacing an existing directory is two renames (target → aside, temp → target) followed by
 * removing the old one; Node has no portable atomic directory exchange (renameat2 RENAME_EXCHANGE).
 * If the second rename fails the old directory is renamed back.
 *
 * A process killed between the two renames leaves no target and the complete old directory aside
 * (`.<name>.old-<pid>-...`); one killed while writing leaves a `.<name>.tmp-<pid>-...`. The next
 * write to the same target repairs both before it starts (`recoverInterrupted`): leftovers of
 * processes that are no longer running are removed, and an old directory whose target is missing
 * is renamed back first, so the target is again the old directory until the new one is complete.
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
  /** Progress: bytes written so far of all files (label 'writing <what>'); for progress bars. */
  onProgress?(done: number, total: number, label: string): void;
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
  const abs = resolve(target);
  const parent = dirname(abs);
  recoverInterrupted(abs);
  checkWritableTarget(target, opts);
  let createdParents: string[] = [];
  const tag = `${process.pid}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
  const tmp = join(parent, `.${basename(abs)}.tmp-${tag}`);
  const aside = join(parent, `.${basename(abs)}.old-${tag}`);
  try {
    createdParents = makeParents(parent);
    mkdirSync(tmp);
    const total = files.reduce((n, f) => n + f.parts.reduce((m, p) => m + p.length, 0), 0);
    let written = 0;
    const label = `writing ${opts.what ?? 'directory'}`;
    const progress = opts.onProgress && ((bytes: number): void => opts.onProgress!((written += bytes), total, label));
    progress?.(0);
    for (const f of files) {
      checkRelative(f.path);
      opts.beforeFile?.(f.path);
      const dest = join(tmp, ...f.path.split('/'));
      mkdirSync(dirname(dest), { recursive: true });
      writeParts(dest, f.parts, progress);
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

/** `.<name>.tmp-<pid>-<time>-<random>` and `.<name>.old-...` beside `<name>`, as writeDirAtomic names them. */
function leftoverName(base: string, name: string): { kind: 'tmp' | 'old'; pid: number } | undefined {
  const prefix = `.${base}.`;
  if (!name.startsWith(prefix)) return undefined;
  const m = /^(tmp|old)-(\d+)-[0-9a-z]+-[0-9a-z]+$/.exec(name.slice(prefix.length));
  return m ? { kind: m[1] as 'tmp' | 'old', pid: Number(m[2]) } : undefined;
}

/** Whether a process with this id runs on this machine (EPERM: it does, as another user). */
function processRuns(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Repairs what an interrupted writeDirAtomic of `abs` left beside it, if the process that left it
 * no longer runs: a missing target gets its old directory back; temporary and old directories are
 * removed. Leftovers of running processes (a concurrent write) are not touched.
 */
export function recoverInterrupted(abs: string): void {
  const parent = dirname(abs);
  const base = basename(abs);
  let names: string[];
  try {
    names = readdirSync(parent).sort();
  } catch {
    return; // no parent yet: nothing was left
  }
  const stale = names.flatMap((n) => {
    const l = leftoverName(base, n);
    return l && !processRuns(l.pid) ? [{ ...l, path: join(parent, n) }] : [];
  });
  const old = stale.find((l) => l.kind === 'old');
  if (old && !existsSync(abs)) {
    try {
      renameSync(old.path, abs);
    } catch {
      return; // keep everything as it is rather than lose the old directory
    }
  }
  for (const l of stale) removeQuietly(l.path);
}

/** Largest single write (so progress moves through a multi-GiB weights file). */
const WRITE_CHUNK = 64 << 20;

function writeParts(file: string, parts: readonly Uint8Array[], progress?: (bytes: number) => void): void {
  const fd = openSync(file, 'wx');
  try {
    for (const p of parts) {
      let off = 0;
      while (off < p.length) {
        const n = writeSync(fd, p, off, Math.min(p.length - off, WRITE_CHUNK));
        off += n;
        progress?.(n);
      }
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
