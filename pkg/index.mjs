// ESM entry: the package is CommonJS (wasm-bindgen's nodejs output); this
// re-exports it by name.
import rollcall from "./index.js";

export const { Presence, Replayer } = rollcall;
export default rollcall;
