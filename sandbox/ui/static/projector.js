// Projector mode: type a room can read from the back (18 px and up) and a layout that keeps the feed's columns whole.
// A toggle in the header; remembered in this browser (localStorage). Loaded in <head>, so the page is drawn in the
// chosen mode from the start.
(function () {
  const KEY = "sandboxProjector";
  const root = document.documentElement;
  let stored = null;
  try { stored = localStorage.getItem(KEY); } catch (e) { /* storage off: the mode lasts until the page is left */ }
  root.classList.toggle("projector", stored === "on");
  function show(button) {
    const on = root.classList.contains("projector");
    button.setAttribute("aria-pressed", String(on));
    button.textContent = on ? "Projector mode: on" : "Projector mode: off";
    button.title = on ? "Back to the normal size" : "Larger type for a room (remembered in this browser)";
  }
  document.addEventListener("DOMContentLoaded", () => {
    const button = document.getElementById("projector");
    if (!button) return;
    show(button);
    button.addEventListener("click", () => {
      const on = !root.classList.contains("projector");
      root.classList.toggle("projector", on);
      try { localStorage.setItem(KEY, on ? "on" : "off"); } catch (e) { /* not remembered */ }
      show(button);
    });
  });
})();
