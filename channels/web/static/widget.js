// supportlah chat widget: one <script src="https://YOUR-SUPPORTLAH/widget.js" async></script> on your site.
// It draws a floating bubble; the chat itself opens in an iframe served by supportlah (/embed), so the
// host page's CSS and scripts cannot reach it, and it uses the web chat's own API from its own origin.
// The bubble lives in a Shadow DOM (its own styles, reset from the host's), so host CSS does not change it.
// Only sites in SUPPORTLAH_WEB_ALLOWED_ORIGINS get the config (CORS) and may frame /embed.
(function () {
  "use strict";

  const script = document.currentScript;
  if (!script || !script.src) return;
  const base = new URL(script.src).origin;
  if (document.getElementById("supportlah-widget")) return; // pasted twice

  const STYLE = `
    :host { all: initial; }
    .bubble {
      position: fixed; right: 20px; bottom: 20px; z-index: 2147483647;
      width: 60px; height: 60px; border-radius: 50%; border: 0; cursor: pointer;
      background: #0b6bcb; color: #fff; box-shadow: 0 4px 14px rgba(0, 0, 0, 0.25);
      font: 600 26px/60px system-ui, sans-serif; text-align: center; padding: 0;
    }
    .bubble:focus-visible { outline: 3px solid #f5a300; outline-offset: 3px; }
    .panel {
      position: fixed; right: 20px; bottom: 92px; z-index: 2147483647;
      width: min(380px, calc(100vw - 40px)); height: min(600px, calc(100vh - 120px));
      border: 1px solid #d6dce2; border-radius: 14px; overflow: hidden; background: #fff;
      box-shadow: 0 8px 28px rgba(0, 0, 0, 0.25);
    }
    .panel[hidden] { display: none; }
    iframe { width: 100%; height: 100%; border: 0; display: block; }
  `;

  function mount(config) {
    const name = typeof config.business_name === "string" && config.business_name ? config.business_name : "us";
    // The host element is the one thing the page's CSS can still select: an inline !important reset
    // outranks any stylesheet rule aimed at it (`div { display: none !important }`, say).
    const host = document.createElement("supportlah-chat");
    host.id = "supportlah-widget";
    host.style.cssText = "all: initial !important; display: block !important; position: static !important;";
    const root = host.attachShadow({ mode: "open" });
    const style = document.createElement("style");
    style.textContent = STYLE;
    const panel = document.createElement("div");
    panel.className = "panel";
    panel.hidden = true;
    panel.setAttribute("role", "dialog");
    panel.setAttribute("aria-label", `Chat with ${name}`);
    const bubble = document.createElement("button");
    bubble.type = "button";
    bubble.className = "bubble";
    bubble.textContent = "💬";
    bubble.setAttribute("aria-label", `Chat with ${name}`);
    bubble.setAttribute("aria-expanded", "false");
    bubble.addEventListener("click", () => {
      if (!panel.firstChild) {
        const frame = document.createElement("iframe");
        frame.src = `${base}/embed`;
        frame.title = `Chat with ${name}`;
        frame.setAttribute("allow", "clipboard-write");
        panel.appendChild(frame);
      }
      panel.hidden = !panel.hidden;
      bubble.setAttribute("aria-expanded", String(!panel.hidden));
    });
    root.append(style, panel, bubble);
    document.body.appendChild(host);
  }

  fetch(`${base}/api/chat/config`, { mode: "cors", credentials: "omit" })
    .then((response) => {
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      return response.json();
    })
    .then((config) => {
      if (document.body) mount(config);
      else document.addEventListener("DOMContentLoaded", () => mount(config));
    })
    .catch(() => {
      // CORS refused: this site is not in SUPPORTLAH_WEB_ALLOWED_ORIGINS (or supportlah is down).
      console.warn(`supportlah: the chat at ${base} is not available on this site`);
    });
})();
