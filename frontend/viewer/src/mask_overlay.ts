// The pixels of a binary map laid over the image (pure, no DOM): the uncertainty of a model's
// proposals (uncertainty.ts) and the classifier's heat map (triage.ts) are drawn alike, each in
// a colour of its own; image_layer.ts puts them on screen.

/** ``#rrggbb`` as [r, g, b]; ``fallback`` for anything else. */
export function hexRgb(hex: string, fallback: [number, number, number]): [number, number, number] {
  const m = /^#?([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(hex || '');
  return m ? [parseInt(m[1], 16), parseInt(m[2], 16), parseInt(m[3], 16)] : fallback;
}

/** The RGBA pixels of a binary mask in one colour. Each mask pixel's opacity is
 * ``alpha(x, y, edge)`` (``edge``: on the mask's 4-connected rim); 0 leaves it transparent. */
export function maskPixels(
  mask: Uint8Array,
  rows: number,
  columns: number,
  [r, g, b]: [number, number, number],
  alpha: (x: number, y: number, edge: boolean) => number,
): Uint8ClampedArray {
  const out = new Uint8ClampedArray(rows * columns * 4);
  const at = (x: number, y: number) => x >= 0 && y >= 0 && x < columns && y < rows && mask[y * columns + x] === 1;
  for (let y = 0; y < rows; y++) {
    for (let x = 0; x < columns; x++) {
      if (!at(x, y)) continue;
      const a = alpha(x, y, !at(x - 1, y) || !at(x + 1, y) || !at(x, y - 1) || !at(x, y + 1));
      if (!a) continue;
      const i = (y * columns + x) * 4;
      out[i] = r;
      out[i + 1] = g;
      out[i + 2] = b;
      out[i + 3] = a;
    }
  }
  return out;
}

/** A binary map's RGBA pixels: a flat translucent fill (``fill``, 0..255) with a stronger rim, so
 * that it reads as a patch laid over the image and never as a label's fill or a proposal's hatch. */
export function overlayPixels(
  mask: Uint8Array,
  rows: number,
  columns: number,
  color: string,
  fill = 150,
): Uint8ClampedArray {
  return maskPixels(mask, rows, columns, hexRgb(color, [255, 164, 27]), (_x, _y, edge) => (edge ? 230 : fill));
}
