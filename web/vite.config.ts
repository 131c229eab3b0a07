// Builds the screen into web/dist, which the API serves at `/`. `npm run dev` proxies the API.
import vue from "@vitejs/plugin-vue";
import { defineConfig } from "vitest/config";

export default defineConfig({
  plugins: [vue()],
  build: { outDir: "dist", emptyOutDir: true, chunkSizeWarningLimit: 1500 },
  server: {
    proxy: { "/api": "http://127.0.0.1:8000", "/docs": "http://127.0.0.1:8000" },
  },
  test: { include: ["tests/**/*.test.ts"], environment: "node" },
});
