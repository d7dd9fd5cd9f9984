import { render } from "preact";
import "uplot/dist/uPlot.min.css";
import "./styles.css";
import { App } from "./app";
import { applyTheme } from "./prefs";
import { interceptLinks } from "./router";

applyTheme();
interceptLinks(document);
const root = document.getElementById("app");
if (root) render(<App />, root);
