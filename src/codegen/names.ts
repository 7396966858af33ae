/**
 * Names from a model become identifiers in generated code (WGSL, CUDA C++, TypeScript) only
 * through this file. An identifier is [A-Za-z0-9_], never starts with a digit, never starts with a
 * reserved prefix (`__`, `gl_`, `_shardc`), is not a keyword of any of the languages we emit, and
 * is unique within its table (`a-b` and `a_b` get different identifiers). Original names go into
 * generated code only through `commentSafe` (comments) or `stringLiteral` (string literals), which
 * escape everything that could end the comment or string or start a preprocessor line.
 */

/** Keywords and reserved words of WGSL, C++/CUDA and TypeScript (and names our emitters use). */
const KEYWORDS = new Set(
  [
    // WGSL keywords and reserved words (the commonly hit subset plus types and builtins we use).
    'alias array atomic bitcast bool break case const const_assert continue continuing default diagnostic discard else enable false',
    'f16 f32 fn for i32 if let loop mat2x2 mat3x3 mat4x4 override private ptr requires return sampler storage struct switch true',
    'u32 uniform var vec2 vec3 vec4 while workgroup read write read_write function main',
    // C++ / CUDA
    'alignas alignof and asm auto bitand bitor catch char char16_t char32_t class compl concept consteval constexpr constinit',
    'const_cast co_await co_return co_yield decltype delete do double dynamic_cast enum explicit export extern float friend goto',
    'inline int long mutable namespace new noexcept not nullptr operator or protected public register reinterpret_cast short',
    'signed sizeof static static_assert static_cast template this thread_local throw try typedef typeid typename union unsigned',
    'using virtual void volatile wchar_t xor blockIdx threadIdx blockDim gridDim warpSize half include define',
    // TypeScript / JavaScript
    'await declare extends finally function implements import in instanceof interface keyof null package satisfies super',
    'typeof undefined with yield arguments eval constructor prototype async of type any number string symbol never unknown',
  ]
    .join(' ')
    .split(' '),
);

const RESERVED_PREFIX = /^(__|gl_|_shardc)/;

/** One identifier for `name` (not unique by itself: use IdentifierTable for that). */
export function identifier(name: string, fallback = 'v'): string {
  let s = name.replace(/[^A-Za-z0-9_]+/g, '_').replace(/_+/g, '_').replace(/^_+|_+$/g, '');
  if (s === '') s = fallback;
  if (/^[0-9]/.test(s)) s = `${fallback}_${s}`;
  if (RESERVED_PREFIX.test(s)) s = `${fallback}_${s.replace(/^_+/, '')}`;
  if (KEYWORDS.has(s) || KEYWORDS.has(s.toLowerCase())) s = `${s}_`;
  return s;
}

/**
 * Unique identifiers within one scope: the same original name always gets the same identifier,
 * different names never share one (`a-b` → a_b, `a_b` → a_b_2). Deterministic: identifiers depend
 * only on the order names are first asked for.
 */
export class IdentifierTable {
  private readonly byName = new Map<string, string>();
  private readonly taken = new Set<string>();

  constructor(reserved: Iterable<string> = [], private readonly fallback = 'v') {
    for (const r of reserved) this.taken.add(r);
  }

  id(name: string): string {
    const hit = this.byName.get(name);
    if (hit !== undefined) return hit;
    const base = identifier(name, this.fallback);
    let id = base;
    for (let k = 2; this.taken.has(id); k++) id = `${base}_${k}`;
    this.taken.add(id);
    this.byName.set(name, id);
    return id;
  }
}

/**
 * Text safe inside a line or block comment of WGSL, C++ or TypeScript: a JSON string (quotes,
 * backslashes and control characters escaped, so one line), with `*\/`, `/*` broken up and the line
 * separators U+2028/U+2029/U+0085 escaped.
 */
export function commentSafe(text: string): string {
  return JSON.stringify(text)
    .replace(/[\u2028\u2029\u0085]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
    .replace(/\*\//g, '*\\/')
    .replace(/\/\*/g, '/\\*');
}

/** A double-quoted string literal valid in C++, CUDA, TypeScript and JSON (ASCII only, `??` trigraphs broken). */
export function stringLiteral(text: string): string {
  return JSON.stringify(text)
    .replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
    .replace(/\?\?/g, '?\\?');
}
