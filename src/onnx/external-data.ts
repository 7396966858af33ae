/**
 * External tensor data (TensorProto.data_location = EXTERNAL): validation at import, lazy reads.
 *
 * The model's folder is a sandbox. `location` must be a relative path without `..` segments
 * (POSIX or Windows spellings), its real path must stay inside the real path of the model's
 * folder, and the file itself must be a regular file that is neither a symbolic link nor a hard
 * link (a hard link could expose a file from elsewhere under an innocent name). The only keys
 * are location, offset, length and checksum; offset and length are non-negative decimal
 * integers, offset + length must fit in the file and length must equal the tensor's byte size.
 * Import only stats the file; bytes are read (just that range) when the constant is loaded, so a
 * 1 KB file that claims a petabyte fails with a message and never allocates.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { UserError, type ErrorLocation } from '../ir/errors.js';

export interface ExternalRef {
  /** Absolute real path of the data file. */
  path: string;
  offset: number;
  length: number;
}

export interface ExternalContext {
  /** The model (or tensor) file, for messages. */
  file: string;
  /** The folder `location` is relative to (the model's folder). */
  baseDir: string;
  tensor?: string;
}

const KEYS = new Set(['location', 'offset', 'length', 'checksum']);

function parseCount(s: string, key: string, loc: ErrorLocation): number {
  if (!/^[0-9]{1,16}$/.test(s)) throw new UserError(`external data ${key} ${JSON.stringify(s)} is not a non-negative integer`, loc);
  const n = Number(s);
  if (!Number.isSafeInteger(n)) throw new UserError(`external data ${key} ${s} is too large`, loc);
  return n;
}

/** Rejects absolute paths (POSIX, `C:\`, `C:foo`, `\\server\share`) and any `..` segment. */
export function checkRelativeLocation(location: string, loc: ErrorLocation): void {
  if (location === '') throw new UserError('external data location is empty', loc);
  if (location.includes('\0')) throw new UserError('external data location contains a NUL character', loc);
  if (path.posix.isAbsolute(location) || path.win32.isAbsolute(location) || /^[A-Za-z]:/.test(location) || location.startsWith('\\'))
    throw new UserError(`external data location ${JSON.stringify(location)} must be a relative path inside the model's folder`, loc);
  if (location.split(/[\\/]+/).some((seg) => seg === '..'))
    throw new UserError(`external data location ${JSON.stringify(location)} must not contain '..'`, loc);
}

/**
 * Validates a tensor's external_data entries against the file system (stat only) and returns
 * where its `expectedBytes` bytes lie.
 */
export function resolveExternalData(
  entries: readonly { key?: string | null; value?: string | null }[],
  expectedBytes: number,
  ctx: ExternalContext,
): ExternalRef {
  const loc: ErrorLocation = { file: ctx.file, tensor: ctx.tensor };
  const kv = new Map<string, string>();
  for (const e of entries) {
    const key = e.key ?? '';
    if (!KEYS.has(key)) throw new UserError(`unknown external data key ${JSON.stringify(key)}`, loc);
    if (kv.has(key)) throw new UserError(`external data key ${JSON.stringify(key)} is given twice`, loc);
    kv.set(key, e.value ?? '');
  }
  const location = kv.get('location');
  if (location === undefined) throw new UserError('external data has no location', loc);
  checkRelativeLocation(location, loc);
  const offset = kv.has('offset') ? parseCount(kv.get('offset')!, 'offset', loc) : 0;
  const givenLength = kv.has('length') ? parseCount(kv.get('length')!, 'length', loc) : undefined;

  const where = `external data file ${JSON.stringify(location)}`;
  let baseReal: string;
  try {
    baseReal = fs.realpathSync(ctx.baseDir);
  } catch {
    throw new UserError(`cannot resolve the model's folder ${ctx.baseDir}`, loc);
  }
  const full = path.resolve(baseReal, location);
  let lst: fs.Stats;
  try {
    lst = fs.lstatSync(full);
  } catch {
    throw new UserError(`${where} does not exist`, loc);
  }
  if (lst.isSymbolicLink()) throw new UserError(`${where} is a symbolic link; external data must be a regular file`, loc);
  if (!lst.isFile()) throw new UserError(`${where} is not a regular file`, loc);
  if (lst.nlink > 1) throw new UserError(`${where} is a hard link (${lst.nlink} links); external data must be a plain file`, loc);
  let real: string;
  try {
    real = fs.realpathSync(full);
  } catch {
    throw new UserError(`${where} cannot be resolved`, loc);
  }
  const rel = path.relative(baseReal, real);
  if (rel === '' || rel === '..' || rel.startsWith('..' + path.sep) || path.isAbsolute(rel))
    throw new UserError(`${where} resolves outside the model's folder`, loc);

  const size = lst.size;
  if (offset > size) throw new UserError(`${where}: offset ${offset} is past the end of the file (${size} bytes)`, loc);
  if (givenLength !== undefined) {
    if (offset + givenLength > size)
      throw new UserError(`${where}: offset ${offset} + length ${givenLength} exceeds the file size (${size} bytes)`, loc);
    if (givenLength !== expectedBytes)
      throw new UserError(`${where}: length ${givenLength} does not match the tensor's ${expectedBytes} bytes`, loc);
  } else if (size - offset !== expectedBytes) {
    throw new UserError(`${where}: ${size - offset} bytes after offset ${offset}, but the tensor needs ${expectedBytes}`, loc);
  }
  return { path: real, offset, length: expectedBytes };
}

/** Reads just the referenced range (re-checking the file, which may have changed since import). */
export function readExternalRange(ref: ExternalRef, loc: ErrorLocation): Uint8Array {
  const buf = new Uint8Array(ref.length);
  let fd: number;
  try {
    fd = fs.openSync(ref.path, fs.constants.O_RDONLY | (fs.constants.O_NOFOLLOW ?? 0));
  } catch (e) {
    throw new UserError(`cannot open external data file ${ref.path}: ${(e as Error).message}`, loc);
  }
  try {
    const st = fs.fstatSync(fd);
    if (ref.offset + ref.length > st.size)
      throw new UserError(`external data file ${ref.path} shrank to ${st.size} bytes since import`, loc);
    let done = 0;
    while (done < ref.length) {
      const n = fs.readSync(fd, buf, done, ref.length - done, ref.offset + done);
      if (n <= 0) throw new UserError(`external data file ${ref.path} ended early`, loc);
      done += n;
    }
  } finally {
    fs.closeSync(fd);
  }
  return buf;
}
