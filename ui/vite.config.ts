// The web UI's build: Svelte 5 + TypeScript → ui/dist, which the node serves at `/`.
// `node bin/build-if-stale.js` runs it when ui/ sources are newer than ui/dist/.buildstamp.
import { defineConfig } from 'vite'
import { svelte } from '@sveltejs/vite-plugin-svelte'

export default defineConfig({
  root: import.meta.dirname,
  base: '/',
  plugins: [svelte()],
  // no telemetry, no network: everything is bundled from node_modules
  clearScreen: false,
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    // the CSP forbids inline scripts: keep every script a file
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    sourcemap: false,
    chunkSizeWarningLimit: 1024
  }
})
