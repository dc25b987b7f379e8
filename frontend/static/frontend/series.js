// Step through the images of a series with buttons or the arrow keys.
(function () {
  const slices = Array.from(document.querySelectorAll(".slice"));
  if (slices.length < 2) return;
  let current = 0;
  function show(i) {
    current = Math.max(0, Math.min(slices.length - 1, i));
    slices.forEach((el, k) => { el.hidden = k !== current; });
  }
  document.getElementById("prev").addEventListener("click", () => show(current - 1));
  document.getElementById("next").addEventListener("click", () => show(current + 1));
  document.addEventListener("keydown", (e) => {
    if (e.key === "ArrowDown" || e.key === "ArrowRight") show(current + 1);
    if (e.key === "ArrowUp" || e.key === "ArrowLeft") show(current - 1);
  });
})();
