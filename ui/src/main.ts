import { mount } from "svelte";
import "./app.css";
import App from "./App.svelte";
import { tauriBackend } from "./lib/backend";

const target = document.getElementById("app");
if (!target) throw new Error("index.html lost its #app element");

export default mount(App, { target, props: { backend: tauriBackend } });
