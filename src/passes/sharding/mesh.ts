/**
 * Device meshes: named axes with sizes (`tp=4`, `dp=2,tp=4`), devices numbered row-major (the
 * last axis varies fastest, so `tp` placed last keeps tensor-parallel groups on neighbouring
 * devices, i.e. inside an NVLink island), and a topology: bandwidth and latency per axis.
 */
import { UserError } from '../../ir/errors.js';

export interface AxisLink {
  /** Bytes per second between two devices along this axis. */
  bandwidth: number;
  /** Seconds per message. */
  latency: number;
}

export interface MeshAxis {
  name: string;
  size: number;
  link: AxisLink;
}

/** Defaults when no hardware file is given: NVLink-class links. */
export const DEFAULT_LINK: AxisLink = { bandwidth: 300e9, latency: 5e-6 };

const AXIS_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export class DeviceMesh {
  readonly axes: readonly MeshAxis[];

  constructor(axes: { name: string; size: number; link?: AxisLink }[]) {
    if (axes.length === 0) throw new UserError('a mesh needs at least one axis');
    const seen = new Set<string>();
    for (const a of axes) {
      if (!AXIS_NAME.test(a.name)) throw new UserError(`mesh axis name ${JSON.stringify(a.name)} is not an identifier`);
      if (seen.has(a.name)) throw new UserError(`mesh axis ${a.name} is given twice`);
      if (!Number.isInteger(a.size) || a.size < 1 || a.size > 65536)
        throw new UserError(`mesh axis ${a.name} must have a size from 1 to 65536, got ${a.size}`);
      seen.add(a.name);
    }
    this.axes = axes.map((a) => ({ name: a.name, size: a.size, link: a.link ?? DEFAULT_LINK }));
  }

  /** Parses `tp=4` or `dp=2,tp=4`. */
  static parse(spec: string): DeviceMesh {
    const parts = spec.split(',').map((s) => s.trim()).filter(Boolean);
    if (!parts.length) throw new UserError(`--mesh is empty (expected e.g. tp=4 or dp=2,tp=4)`);
    return new DeviceMesh(
      parts.map((p) => {
        const m = /^([^=\s]+)=(\d+)$/.exec(p);
        if (!m) throw new UserError(`--mesh: ${JSON.stringify(p)} is not axis=size (expected e.g. tp=4 or dp=2,tp=4)`);
        return { name: m[1]!, size: Number(m[2]) };
      }),
    );
  }

  get deviceCount(): number {
    return this.axes.reduce((n, a) => n * a.size, 1);
  }

  axisNames(): string[] {
    return this.axes.map((a) => a.name);
  }

  hasAxis(name: string): boolean {
    return this.axes.some((a) => a.name === name);
  }

  axis(name: string): MeshAxis {
    const a = this.axes.find((x) => x.name === name);
    if (!a) throw new UserError(`mesh has no axis ${JSON.stringify(name)} (axes: ${this.axisNames().join(', ')})`);
    return a;
  }

  axisIndex(name: string): number {
    const i = this.axes.findIndex((x) => x.name === name);
    if (i < 0) throw new UserError(`mesh has no axis ${JSON.stringify(name)} (axes: ${this.axisNames().join(', ')})`);
    return i;
  }

  /** Coordinates of a device: one index per axis. */
  coords(rank: number): number[] {
    const c = new Array<number>(this.axes.length);
    let r = rank;
    for (let i = this.axes.length - 1; i >= 0; i--) {
      c[i] = r % this.axes[i]!.size;
      r = Math.floor(r / this.axes[i]!.size);
    }
    return c;
  }

  /** Index of a device along one axis. */
  coord(rank: number, axis: string): number {
    return this.coords(rank)[this.axisIndex(axis)]!;
  }

  rankOf(coords: readonly number[]): number {
    let r = 0;
    for (let i = 0; i < this.axes.length; i++) r = r * this.axes[i]!.size + coords[i]!;
    return r;
  }

  /** The devices that share all coordinates of `rank` except along `axis`, ordered by that axis. */
  group(rank: number, axis: string): number[] {
    const ai = this.axisIndex(axis);
    const c = this.coords(rank);
    return Array.from({ length: this.axes[ai]!.size }, (_, k) => {
      const cc = c.slice();
      cc[ai] = k;
      return this.rankOf(cc);
    });
  }

  /** All groups along `axis` (each ordered by that axis), ordered by their first device. */
  groups(axis: string): number[][] {
    const seen = new Set<number>();
    const out: number[][] = [];
    for (let r = 0; r < this.deviceCount; r++) {
      if (seen.has(r)) continue;
      const g = this.group(r, axis);
      g.forEach((d) => seen.add(d));
      out.push(g);
    }
    return out;
  }

  toString(): string {
    return this.axes.map((a) => `${a.name}=${a.size}`).join(',');
  }
}
