// The bytes of dist/cryo.wasm, bundled into the worker (build.mjs aliases this name to the file and
// loads it with esbuild's binary loader).
declare module 'cryo-wasm-bytes' {
  const bytes: Uint8Array;
  export default bytes;
}
