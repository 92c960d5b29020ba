// Per-backend scratch for hand-written WGSL kernels: buffers a call rewrites in queue order, and
// the bind groups over them. Through Dawn's Node binding a decode step's cost is its host calls
// (createBindGroup ~26 µs, createBuffer ~12 µs, a dispatch ~5 µs on an H100 host; BENCHMARKS.md),
// more than its passes at one sequence, so kernels keep what they bind here and build a bind
// group once per set of buffers.
//
// Reuse needs no wait: every write, copy and pass is ordered on the one queue, so a call's
// writes land after the previous call's passes have read. A replaced buffer is destroyed at once;
// WebGPU keeps it alive for work already submitted.

/// <reference types="@webgpu/types" />
import type { WebGpuHost } from './kernel-host.js';

/** Bind groups kept per scratch (each holds its buffers alive until evicted). */
const MAX_BIND_GROUPS = 64;

export class WebGpuScratch {
  readonly #device: GPUDevice;
  readonly #label: string;
  readonly #buffers = new Map<string, { readonly buffer: GPUBuffer; readonly usage: number }>();
  readonly #groups = new Map<string, GPUBindGroup>();
  readonly #ids = new WeakMap<GPUBuffer, number>();
  #nextId = 0;

  constructor(device: GPUDevice, label: string) {
    this.#device = device;
    this.#label = label;
  }

  /** The scratch buffer `name` with at least `bytes` (grown by doubling, 256 bytes at least). */
  buffer(name: string, bytes: number, usage: number = GPUBufferUsage.STORAGE): GPUBuffer {
    const have = this.#buffers.get(name);
    if (have && have.buffer.size >= bytes && have.usage === usage) return have.buffer;
    have?.buffer.destroy();
    const size = Math.max(256, 2 ** Math.ceil(Math.log2(Math.max(bytes, 1))));
    const buffer = this.#device.createBuffer({ size, usage, label: `${this.#label} ${name}` });
    this.#buffers.set(name, { buffer, usage });
    return buffer;
  }

  /**
   * The bind group of `layout` over `entries` (binding i = entries[i]), built once per pipeline
   * key and set of buffers and ranges. A call's own tensors are new every step, so kernels bind
   * scratch buffers they copy them into (or out of) within the same submission, and only a
   * cache's buffers vary here.
   */
  bindGroup(pipelineKey: string, layout: GPUBindGroupLayout, entries: readonly (GPUBuffer | GPUBufferBinding)[]): GPUBindGroup {
    const resources = entries.map((e): GPUBufferBinding => ('buffer' in e ? e : { buffer: e }));
    const key = `${pipelineKey}|${resources.map((r) => `${this.#id(r.buffer)}:${r.offset ?? 0}:${r.size ?? '-'}`).join(',')}`;
    const have = this.#groups.get(key);
    if (have) {
      this.#groups.delete(key); // most recent last
      this.#groups.set(key, have);
      return have;
    }
    const group = this.#device.createBindGroup({ layout, entries: resources.map((resource, binding) => ({ binding, resource })) });
    this.#groups.set(key, group);
    for (const old of this.#groups.keys()) {
      if (this.#groups.size <= MAX_BIND_GROUPS) break;
      this.#groups.delete(old);
    }
    return group;
  }

  /** Called by the backend when it is disposed (through `cached`). */
  destroy(): void {
    for (const { buffer } of this.#buffers.values()) buffer.destroy();
    this.#buffers.clear();
    this.#groups.clear();
  }

  #id(buffer: GPUBuffer): number {
    let id = this.#ids.get(buffer);
    if (id === undefined) {
      id = this.#nextId++;
      this.#ids.set(buffer, id);
    }
    return id;
  }
}

/** The scratch of `owner` (a kernel's name) on this backend, made on first use, destroyed with the backend. */
export function webGpuScratch(host: WebGpuHost, owner: string): WebGpuScratch {
  return host.cached(`${owner}/scratch`, () => new WebGpuScratch(host.webgpu.device, owner));
}
