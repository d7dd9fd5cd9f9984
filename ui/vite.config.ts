// Builds the UI into the Python package, so `pip install .` serves it without Node.
// Deterministic output matters: .ci/run rebuilds from the lockfile and diffs the bytes.
import { defineConfig } from "vitest/config";

export default defineConfig({
  base: "/ui/",
  build: {
    outDir: "../src/otterscope/ui/dist",
    emptyOutDir: true,
    assetsDir: "assets",
    sourcemap: false,
    target: "es2022",
    // Everything is same-origin and hashed; no inline loader or data: URLs under the CSP.
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    chunkSizeWarningLimit: 1024,
  },
  worker: { format: "es" },
  test: {
    include: ["src/**/*.test.ts"],
    environment: "node",
  },
});
