/**
 * Errors. A `UserError` is bad input (exit code 1, one line, no stack trace); anything else that
 * escapes is a bug (exit code 2). `VerificationError` is a numeric mismatch (exit code 3).
 *
 * A user error names where the problem is: the file, the node or tensor, and the reason.
 */
export interface ErrorLocation {
  file?: string;
  node?: string;
  tensor?: string;
}

export class UserError extends Error {
  readonly location: ErrorLocation;
  readonly reason: string;
  constructor(reason: string, location: ErrorLocation = {}) {
    super(formatLocated(reason, location));
    this.name = 'UserError';
    this.reason = reason;
    this.location = location;
  }
  /** The same error with more location filled in (keeps what is already known). */
  at(location: ErrorLocation): UserError {
    return new UserError(this.reason, { ...location, ...this.location });
  }
}

export class VerificationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'VerificationError';
  }
}

export function formatLocated(reason: string, loc: ErrorLocation): string {
  const parts: string[] = [];
  if (loc.file !== undefined) parts.push(loc.file);
  if (loc.node !== undefined) parts.push(`node ${JSON.stringify(loc.node)}`);
  if (loc.tensor !== undefined) parts.push(`tensor ${JSON.stringify(loc.tensor)}`);
  return parts.length ? `${parts.join(': ')}: ${reason}` : reason;
}

/** Throws a UserError unless `cond` holds. */
export function check(cond: unknown, reason: string, location?: ErrorLocation): asserts cond {
  if (!cond) throw new UserError(reason, location);
}
