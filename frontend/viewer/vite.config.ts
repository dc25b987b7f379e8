// Builds the viewer into frontend/static/viewer/: viewer.js (stable name, loaded by the
// Django template with {% static 'viewer/viewer.js' %}) plus hashed chunks, workers and
// wasm codecs under assets/. Relative base so it works under any STATIC_URL.
import { defineConfig } from 'vite';

export default defineConfig({
  base: './',
  build: {
    outDir: '../static/viewer',
    emptyOutDir: true,
    target: 'es2022',
    chunkSizeWarningLimit: 8000,
    rollupOptions: {
      input: 'src/main.ts',
      output: {
        entryFileNames: 'viewer.js',
        chunkFileNames: 'assets/[name]-[hash].js',
        assetFileNames: 'assets/[name]-[hash][extname]',
      },
    },
  },
  // What the Cornerstone3D docs name for Vite; `events` (a dependency) covers xmlbuilder2's
  // `extends EventEmitter` (see shared/notes/cornerstone3d.md).
  optimizeDeps: {
    exclude: ['@cornerstonejs/dicom-image-loader'],
    include: ['dicom-parser'],
  },
  worker: { format: 'es' },
});
