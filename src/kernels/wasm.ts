// lib "dom" is not in this project's TypeScript settings, so the few WebAssembly names the kernels use
// (src/kernels/lstm.ts, csvscan.ts) are typed here once.
export interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}

export const WA = (globalThis as unknown as { WebAssembly: { Module: new (bytes: Uint8Array) => object; Instance: new (m: object, imports: object) => { exports: unknown }; validate: (bytes: Uint8Array) => boolean } }).WebAssembly;
