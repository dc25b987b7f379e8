// The pixels of a binary map laid over the image (pure, no DOM): the uncertainty of a model's
// proposals (uncertainty.ts) and the classifier's heat map (triage.ts) are drawn alike, each in
// a colour of its own; image_layer.ts puts them on screen.

/** A binary map's RGBA pixels: a flat translucent fill (``fill``, 0..255) with a stronger rim, so
 * that it reads as a patch laid over the image and never as a label's fill or a proposal's hatch. */
export function overlayPixels(
  mask: Uint8Array,
  rows: number,
  columns: number,
  color: string,
  fill = 150,
): Uint8ClampedArray {
  const [r, g, b] = rgb(color);
  const out = new Uint8ClampedArray(rows * columns * 4);
  const at = (x: number, y: number) => x >= 0 && y >= 0 && x < columns && y < rows && mask[y * columns + x] === 1;
  for (let y = 0; y < rows; y++) {
    for (let x = 0; x < columns; x++) {
      if (!at(x, y)) continue;
      const edge = !at(x - 1, y) || !at(x + 1, y) || !at(x, y - 1) || !at(x, y + 1);
      const i = (y * columns + x) * 4;
      out[i] = r;
      out[i + 1] = g;
      out[i + 2] = b;
      out[i + 3] = edge ? 230 : fill;
    }
  }
  return out;
}

function rgb(hex: string): [number, number, number] {
  const m = /^#?([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(hex || '');
  return m ? [parseInt(m[1], 16), parseInt(m[2], 16), parseInt(m[3], 16)] : [255, 164, 27];
}
