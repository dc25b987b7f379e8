// The first image, shown before Cornerstone3D is ready: an uncompressed DICOM frame's stored
// values through the Modality LUT (RescaleSlope/Intercept) and the file's first VOI window,
// mapped to grey levels the way Cornerstone3D 5.14 maps them, so that the hand-over shows no
// jump. Anything it cannot reproduce exactly (compressed or big-endian transfer syntaxes,
// palette or YBR colour, LUT sequences, sigmoid VOI, SUV or dose scaling) gets no preview and
// waits for Cornerstone. Pure, no DOM: the preview worker and the unit tests use it.

import { parseDicom, readPart10Header, type DataSet } from 'dicom-parser';

const IMPLICIT_VR_LITTLE_ENDIAN = '1.2.840.10008.1.2';
const EXPLICIT_VR_LITTLE_ENDIAN = '1.2.840.10008.1.2.1';
// Cornerstone scales these beyond slope and intercept (SUV body weight, dose grid scaling).
const OTHER_SCALING = new Set(['PT', 'RTDOSE']);

export type Photometric = 'MONOCHROME1' | 'MONOCHROME2' | 'RGB';

/** One frame of stored values and what is needed to display it. */
export interface PreviewImage {
  rows: number;
  columns: number;
  photometric: Photometric;
  planar: boolean; // RGB only: all reds, then all greens, then all blues
  stored: Uint8Array | Uint16Array | Int16Array; // rows x columns x samples, as in the file
  slope: number;
  intercept: number;
  window: { center: number; width: number; exact: boolean } | null; // the file's first, if any
  spacing: [number, number]; // mm between rows, between columns; [1, 1] when not given
}

export type Parsed = { image: PreviewImage; reason?: undefined } | { image?: undefined; reason: string };

/** The value range mapped from black to white (Cornerstone's ``voiRange``). */
export interface VoiRange {
  lower: number;
  upper: number;
}

const no = (reason: string): Parsed => ({ reason });

/** Reads frame ``frame`` (0-based) of a Part 10 file, or says why it gets no preview. */
export function parsePreview(bytes: Uint8Array, frame = 0): Parsed {
  let ds: DataSet;
  try {
    // The meta header first: the data set of another transfer syntax need not be read at all.
    const syntax = readPart10Header(bytes).string('x00020010') ?? '';
    if (syntax !== IMPLICIT_VR_LITTLE_ENDIAN && syntax !== EXPLICIT_VR_LITTLE_ENDIAN) {
      return no(`transfer syntax ${syntax || 'missing'}`);
    }
    ds = parseDicom(bytes);
  } catch {
    return no('not a DICOM file dicom-parser can read');
  }
  const pixels = ds.elements.x7fe00010;
  if (!pixels || pixels.encapsulatedPixelData) return no('no native pixel data');
  const modality = ds.string('x00080060') ?? '';
  if (OTHER_SCALING.has(modality)) return no(`${modality} scaling`);
  for (const [tag, what] of [
    ['x00283000', 'modality LUT sequence'],
    ['x00283010', 'VOI LUT sequence'],
    ['x52009229', 'enhanced multi-frame functional groups'],
  ]) {
    if (ds.elements[tag]) return no(what);
  }
  const voiFunction = (ds.string('x00281056') ?? 'LINEAR').toUpperCase();
  if (voiFunction !== 'LINEAR' && voiFunction !== 'LINEAR_EXACT') return no(`VOI LUT function ${voiFunction}`);

  const rows = ds.uint16('x00280010') ?? 0;
  const columns = ds.uint16('x00280011') ?? 0;
  const samples = ds.uint16('x00280002') ?? 1;
  const bits = ds.uint16('x00280100') ?? 0;
  const signed = ds.uint16('x00280103') === 1;
  const photometric = (ds.string('x00280004') ?? '').toUpperCase();
  const grey = photometric === 'MONOCHROME1' || photometric === 'MONOCHROME2';
  if (!rows || !columns) return no('no image size');
  if (!((grey && samples === 1 && (bits === 8 || bits === 16)) || (photometric === 'RGB' && samples === 3 && bits === 8))) {
    return no(`${photometric || 'no photometric interpretation'}, ${samples} samples of ${bits} bits`);
  }
  const frames = Math.max(1, ds.intString('x00280008') ?? 1);
  const frameBytes = rows * columns * samples * (bits / 8);
  if (frame < 0 || frame >= frames) return no(`no frame ${frame}`);
  const start = pixels.dataOffset + frame * frameBytes;
  if (start + frameBytes > pixels.dataOffset + pixels.length || start + frameBytes > bytes.length) {
    return no('pixel data shorter than its attributes say');
  }

  let stored: PreviewImage['stored'];
  if (bits === 8) {
    stored = bytes.subarray(start, start + frameBytes);
  } else {
    // A 16-bit view needs an even offset; the file's own offset usually is.
    const aligned = (bytes.byteOffset + start) % 2 === 0;
    const buffer = aligned ? bytes.buffer : bytes.slice(start, start + frameBytes).buffer;
    const offset = aligned ? bytes.byteOffset + start : 0;
    stored = signed ? new Int16Array(buffer, offset, frameBytes / 2) : new Uint16Array(buffer, offset, frameBytes / 2);
  }

  const slope = ds.floatString('x00281053') ?? 1;
  const intercept = ds.floatString('x00281052') ?? 0;
  if (!Number.isFinite(slope) || slope === 0 || !Number.isFinite(intercept)) return no('unusable rescale');
  const center = ds.floatString('x00281050', 0);
  const width = ds.floatString('x00281051', 0);
  const hasWindow = center !== undefined && width !== undefined && Number.isFinite(center) && Number.isFinite(width) && width > 0;
  const rowSpacing = ds.floatString('x00280030', 0);
  const columnSpacing = ds.floatString('x00280030', 1);
  const spacingGiven = !!rowSpacing && !!columnSpacing && rowSpacing > 0 && columnSpacing > 0;
  return {
    image: {
      rows,
      columns,
      photometric: photometric as Photometric,
      planar: photometric === 'RGB' && ds.uint16('x00280006') === 1,
      stored,
      slope,
      intercept,
      window: hasWindow ? { center: center!, width: width!, exact: voiFunction === 'LINEAR_EXACT' } : null,
      spacing: spacingGiven ? [rowSpacing!, columnSpacing!] : [1, 1],
    },
  };
}

/** The range Cornerstone starts with: the file's first window, 0-255 for colour, else min to max. */
export function initialVoi(image: PreviewImage): VoiRange {
  if (image.photometric === 'RGB') return { lower: 0, upper: 255 }; // the loader's W 256 L 128
  const w = image.window;
  if (w?.exact) return { lower: w.center - w.width / 2, upper: w.center + w.width / 2 };
  if (w) return { lower: w.center - 0.5 - (w.width - 1) / 2, upper: w.center - 0.5 + (w.width - 1) / 2 };
  let min = Infinity;
  let max = -Infinity;
  for (const v of image.stored) {
    if (v < min) min = v;
    if (v > max) max = v;
  }
  const a = min * image.slope + image.intercept;
  const b = max * image.slope + image.intercept;
  return { lower: Math.min(a, b), upper: Math.max(a, b) };
}

/** [width, center] as Cornerstone's ``toWindowLevel`` reports a range (and the overlay shows it). */
export function windowLevelOf(voi: VoiRange): [number, number] {
  return [Math.abs(voi.upper - voi.lower) + 1, (voi.lower + voi.upper + 1) / 2];
}

/**
 * RGBA grey levels (or colours) for the frame: modality value v = stored * slope + intercept,
 * then (v - lower) / (upper - lower) from black to white, clamped; MONOCHROME1 inverted.
 */
export function renderRgba(image: PreviewImage, voi: VoiRange): Uint8ClampedArray<ArrayBuffer> {
  const n = image.rows * image.columns;
  const out = new Uint8ClampedArray(new ArrayBuffer(n * 4));
  const { stored, slope, intercept } = image;
  const { lower } = voi;
  const span = Math.max(voi.upper - lower, Number.EPSILON);
  // Rounded to the nearest level, as GL's conversion to 8 bits does.
  const level = (v: number) => {
    const g = Math.round(((v * slope + intercept - lower) * 255) / span);
    return g < 0 ? 0 : g > 255 ? 255 : g;
  };
  if (image.photometric === 'RGB') {
    const [step, plane] = image.planar ? [1, n] : [3, 1];
    for (let i = 0; i < n; i++) {
      const k = i * step;
      out[i * 4] = level(stored[k]);
      out[i * 4 + 1] = level(stored[k + plane]);
      out[i * 4 + 2] = level(stored[k + 2 * plane]);
      out[i * 4 + 3] = 255;
    }
    return out;
  }
  const invert = image.photometric === 'MONOCHROME1';
  for (let i = 0; i < n; i++) {
    const g = invert ? 255 - level(stored[i]) : level(stored[i]);
    out[i * 4] = out[i * 4 + 1] = out[i * 4 + 2] = g;
    out[i * 4 + 3] = 255;
  }
  return out;
}

/**
 * Where the image lies on a canvas of this size, as Cornerstone's reset camera puts it: the
 * whole image (its size in mm, so non-square pixels keep their aspect) fitted and centred.
 */
export function fitRect(canvasWidth: number, canvasHeight: number, image: PreviewImage): { x: number; y: number; width: number; height: number } {
  const worldWidth = image.columns * image.spacing[1];
  const worldHeight = image.rows * image.spacing[0];
  const scale = Math.min(canvasWidth / worldWidth, canvasHeight / worldHeight);
  const width = worldWidth * scale;
  const height = worldHeight * scale;
  return { x: (canvasWidth - width) / 2, y: (canvasHeight - height) / 2, width, height };
}
