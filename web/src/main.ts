// The screen's entry: the wall display at `/`, the operator console at `/console`.
import { createApp } from "vue";
import { createRouter, createWebHistory } from "vue-router";
import App from "./App.vue";
import { i18n } from "./lib/i18n";
import "./style.css";

const router = createRouter({
  history: createWebHistory(),
  routes: [
    { path: "/", component: () => import("./views/WallView.vue") },
    { path: "/console", component: () => import("./views/ConsoleView.vue") },
  ],
});

createApp(App).use(i18n).use(router).mount("#app");
