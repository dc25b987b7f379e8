import { describe, expect, test } from 'vitest';
import { overlayText } from './overlay';
import { fitRect, initialVoi, parsePreview, renderRgba, windowLevelOf, type PreviewImage } from './preview';
import type { SeriesData } from './types';

// --- a small Part 10 writer: enough DICOM, made in code, for dicom-parser to read back ---------

const EXPLICIT = '1.2.840.10008.1.2.1';
const IMPLICIT = '1.2.840.10008.1.2';
const JPEG_BASELINE = '1.2.840.10008.1.2.4.50';
const LONG_VRS = new Set(['OB', 'OW', 'SQ', 'UN', 'UT']);

type Value = string | number | Uint8Array;
type Attr = [tag: number, vr: string, value: Value];

function bytesOf(vr: string, value: Value): Uint8Array {
  if (value instanceof Uint8Array) return value;
  if (typeof value === 'number') return new Uint8Array(new Uint16Array([value]).buffer); // US
  const padded = value.length % 2 ? value + (vr === 'UI' ? '\0' : ' ') : value;
  return new TextEncoder().encode(padded);
}

function element(explicit: boolean, [tag, vr, value]: Attr): Uint8Array {
  const body = bytesOf(vr, value);
  const long = LONG_VRS.has(vr);
  const head = new DataView(new ArrayBuffer(explicit ? (long ? 12 : 8) : 8));
  head.setUint16(0, tag >>> 16, true);
  head.setUint16(2, tag & 0xffff, true);
  if (!explicit) head.setUint32(4, body.length, true);
  else {
    head.setUint8(4, vr.charCodeAt(0));
    head.setUint8(5, vr.charCodeAt(1));
    if (long) head.setUint32(8, body.length, true);
    else head.setUint16(6, body.length, true);
  }
  return concat([new Uint8Array(head.buffer), body]);
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** A Part 10 file: preamble, meta group (explicit VR), then the data set in ``syntax``. */
function dicom(syntax: string, attrs: Attr[], pixelData?: Uint8Array): Uint8Array {
  const explicit = syntax !== IMPLICIT;
  const meta = [element(true, [0x00020010, 'UI', syntax])];
  const sorted = [...attrs].sort((a, b) => a[0] - b[0]).map((a) => element(explicit, a));
  const pixels = pixelData ? [element(explicit, [0x7fe00010, 'OW', pixelData])] : [];
  return concat([new Uint8Array(128), new TextEncoder().encode('DICM'), ...meta, ...sorted, ...pixels]);
}

function int16(values: number[]): Uint8Array {
  return new Uint8Array(new Int16Array(values).buffer);
}

function grey(attrs: Attr[], rows: number, columns: number, bits: 8 | 16, signed = false): Attr[] {
  return [
    [0x00280002, 'US', 1],
    [0x00280010, 'US', rows],
    [0x00280011, 'US', columns],
    [0x00280100, 'US', bits],
    [0x00280101, 'US', bits],
    [0x00280102, 'US', bits - 1],
    [0x00280103, 'US', signed ? 1 : 0],
    ...attrs,
  ];
}

function parsed(bytes: Uint8Array, frame = 0): PreviewImage {
  const result = parsePreview(bytes, frame);
  if (!result.image) throw new Error(`no preview: ${result.reason}`);
  return result.image;
}

/** The red channel of each pixel (grey images have R = G = B). */
function reds(rgba: Uint8ClampedArray): number[] {
  return Array.from(rgba.filter((_, i) => i % 4 === 0));
}

// --- the windowing ----------------------------------------------------------------------------

describe('grey levels', () => {
  // A CT row: stored = HU + 1024 (RescaleIntercept -1024), file window W 400 L 40. Cornerstone's
  // range for it is [40 - 0.5 - 399/2, 40 - 0.5 + 399/2] = [-160, 239], so
  // grey = round((HU + 160) * 255 / 399), clamped to 0..255.
  const hu = [-1000, -160, -159, 0, 40, 100, 239, 240, 3000];
  const ct = dicom(
    EXPLICIT,
    grey(
      [
        [0x00080060, 'CS', 'CT'],
        [0x00280004, 'CS', 'MONOCHROME2'],
        [0x00281050, 'DS', '40\\-600'], // two windows: the first one counts
        [0x00281051, 'DS', '400\\1500'],
        [0x00281052, 'DS', '-1024'],
        [0x00281053, 'DS', '1'],
        [0x00280030, 'DS', '0.7\\0.7'],
      ],
      1,
      hu.length,
      16,
      true,
    ),
    int16(hu.map((h) => h + 1024)),
  );

  test('CT: Modality LUT, then the file\'s first VOI window', () => {
    const image = parsed(ct);
    expect(image).toMatchObject({ rows: 1, columns: 9, photometric: 'MONOCHROME2', slope: 1, intercept: -1024 });
    const voi = initialVoi(image);
    expect(voi).toEqual({ lower: -160, upper: 239 });
    expect(windowLevelOf(voi)).toEqual([400, 40]);
    const expected = hu.map((h) => Math.min(255, Math.max(0, Math.round(((h + 160) * 255) / 399))));
    expect(expected).toEqual([0, 0, 1, 102, 128, 166, 255, 255, 255]);
    expect(reds(renderRgba(image, voi))).toEqual(expected);
  });

  test('every pixel is opaque and grey', () => {
    const rgba = renderRgba(parsed(ct), initialVoi(parsed(ct)));
    for (let i = 0; i < rgba.length; i += 4) {
      expect([rgba[i + 1], rgba[i + 2], rgba[i + 3]]).toEqual([rgba[i], rgba[i], 255]);
    }
  });

  test('the overlay shows the window as Cornerstone reports it', () => {
    const data = { patient: 'P-1', series: { modality: 'CT', number: null, description: '' } } as unknown as SeriesData;
    const text = overlayText(data, 0, 12, windowLevelOf(initialVoi(parsed(ct))));
    expect(text).toEqual({ patient: 'Patient P-1', series: 'CT series', slice: '1 / 12', wl: 'W 400 L 40' });
  });

  test('implicit VR, slope and intercept, no window: min to max of the modality values', () => {
    const bytes = dicom(
      IMPLICIT,
      grey(
        [
          [0x00280004, 'CS', 'MONOCHROME2'],
          [0x00281052, 'DS', '-1000'],
          [0x00281053, 'DS', '2'],
        ],
        1,
        3,
        16,
      ),
      new Uint8Array(new Uint16Array([0, 250, 500]).buffer),
    );
    const image = parsed(bytes);
    const voi = initialVoi(image);
    expect(voi).toEqual({ lower: -1000, upper: 0 }); // values -1000, -500, 0
    expect(windowLevelOf(voi)).toEqual([1001, -499.5]); // Cornerstone's toWindowLevel(min, max)
    expect(reds(renderRgba(image, voi))).toEqual([0, 128, 255]);
  });

  test('LINEAR_EXACT uses center +- width / 2', () => {
    const bytes = dicom(
      EXPLICIT,
      grey(
        [
          [0x00280004, 'CS', 'MONOCHROME2'],
          [0x00281050, 'DS', '100'],
          [0x00281051, 'DS', '200'],
          [0x00281056, 'CS', 'LINEAR_EXACT'],
        ],
        1,
        3,
        8,
      ),
      new Uint8Array([0, 100, 200]),
    );
    const image = parsed(bytes);
    expect(initialVoi(image)).toEqual({ lower: 0, upper: 200 });
    expect(reds(renderRgba(image, initialVoi(image)))).toEqual([0, 128, 255]);
  });

  test('MONOCHROME1 is inverted: low values white', () => {
    const mono1 = (attrs: Attr[]) =>
      dicom(EXPLICIT, grey([[0x00280004, 'CS', 'MONOCHROME1'], ...attrs], 1, 4, 8), new Uint8Array([0, 64, 191, 255]));
    const plain = parsed(mono1([]));
    expect(reds(renderRgba(plain, initialVoi(plain)))).toEqual([255, 191, 64, 0]);
    const windowed = parsed(
      mono1([
        [0x00281050, 'DS', '128'],
        [0x00281051, 'DS', '129'], // range [63.5, 191.5]
      ]),
    );
    expect(reds(renderRgba(windowed, initialVoi(windowed)))).toEqual([255, 254, 1, 0]);
  });

  test('later frames of a multi-frame file', () => {
    const bytes = dicom(
      EXPLICIT,
      grey(
        [
          [0x00280004, 'CS', 'MONOCHROME2'],
          [0x00280008, 'IS', '3'],
        ],
        1,
        2,
        8,
      ),
      new Uint8Array([0, 255, 10, 20, 30, 40]),
    );
    expect(Array.from(parsed(bytes, 1).stored)).toEqual([10, 20]);
    expect(Array.from(parsed(bytes, 2).stored)).toEqual([30, 40]);
    expect(parsePreview(bytes, 3).reason).toMatch(/frame/);
  });
});

describe('colour', () => {
  const rgb = (planar: number, pixels: number[]) =>
    dicom(
      EXPLICIT,
      [
        [0x00080060, 'CS', 'US'],
        [0x00280002, 'US', 3],
        [0x00280004, 'CS', 'RGB'],
        [0x00280006, 'US', planar],
        [0x00280010, 'US', 1],
        [0x00280011, 'US', 2],
        [0x00280100, 'US', 8],
        [0x00280101, 'US', 8],
        [0x00280102, 'US', 7],
        [0x00280103, 'US', 0],
      ],
      new Uint8Array(pixels),
    );
  const expected = [10, 20, 30, 255, 40, 50, 60, 255];

  test('interleaved RGB (planar configuration 0) is shown as stored', () => {
    const image = parsed(rgb(0, [10, 20, 30, 40, 50, 60]));
    expect(initialVoi(image)).toEqual({ lower: 0, upper: 255 }); // the loader's W 256 L 128
    expect(Array.from(renderRgba(image, initialVoi(image)))).toEqual(expected);
  });

  test('planar RGB (planar configuration 1): all reds, then greens, then blues', () => {
    const image = parsed(rgb(1, [10, 40, 20, 50, 30, 60]));
    expect(image.planar).toBe(true);
    expect(Array.from(renderRgba(image, initialVoi(image)))).toEqual(expected);
  });
});

describe('no preview', () => {
  const base: Attr[] = grey([[0x00280004, 'CS', 'MONOCHROME2']], 2, 2, 8);

  test('a compressed transfer syntax: wait for Cornerstone', () => {
    // Encapsulated pixel data: an empty offset table, one fragment, the sequence delimiter.
    const item = (tag: number, body: Uint8Array) => {
      const head = new DataView(new ArrayBuffer(8));
      head.setUint16(0, tag >>> 16, true);
      head.setUint16(2, tag & 0xffff, true);
      head.setUint32(4, body.length, true);
      return concat([new Uint8Array(head.buffer), body]);
    };
    const header = new DataView(new ArrayBuffer(12));
    header.setUint16(0, 0x7fe0, true);
    header.setUint16(2, 0x0010, true);
    header.setUint8(4, 'O'.charCodeAt(0));
    header.setUint8(5, 'B'.charCodeAt(0));
    header.setUint32(8, 0xffffffff, true);
    const encapsulated = concat([
      new Uint8Array(header.buffer),
      item(0xfffee000, new Uint8Array(0)),
      item(0xfffee000, new Uint8Array([0xff, 0xd8, 0xff, 0xd9])),
      item(0xfffee0dd, new Uint8Array(0)),
    ]);
    const jpeg = concat([dicom(JPEG_BASELINE, base), encapsulated]);
    const result = parsePreview(jpeg);
    expect(result.image).toBeUndefined();
    expect(result.reason).toBe(`transfer syntax ${JPEG_BASELINE}`);
  });

  test('big endian, palette colour, YBR, LUT sequences, sigmoid, PET', () => {
    const pixels = new Uint8Array(4);
    expect(parsePreview(dicom('1.2.840.10008.1.2.2', base, pixels)).reason).toMatch(/transfer syntax/);
    const other = (attrs: Attr[]) => parsePreview(dicom(EXPLICIT, [...base.filter((a) => a[0] !== 0x00280004), ...attrs], pixels));
    expect(other([[0x00280004, 'CS', 'PALETTE COLOR']]).reason).toMatch(/PALETTE COLOR/);
    expect(other([[0x00280004, 'CS', 'YBR_FULL']]).reason).toMatch(/YBR_FULL/);
    expect(other([[0x00280004, 'CS', 'MONOCHROME2'], [0x00283010, 'SQ', new Uint8Array(0)]]).reason).toMatch(/VOI LUT/);
    expect(other([[0x00280004, 'CS', 'MONOCHROME2'], [0x00281056, 'CS', 'SIGMOID']]).reason).toMatch(/SIGMOID/);
    expect(other([[0x00280004, 'CS', 'MONOCHROME2'], [0x00080060, 'CS', 'PT']]).reason).toMatch(/PT/);
  });

  test('not DICOM, or pixel data shorter than the size says', () => {
    expect(parsePreview(new Uint8Array([1, 2, 3])).reason).toBeDefined();
    expect(parsePreview(dicom(EXPLICIT, base, new Uint8Array(2))).reason).toMatch(/shorter/);
  });
});

describe('fitRect: where Cornerstone puts the image', () => {
  const image = (rows: number, columns: number, spacing: [number, number]) => ({ rows, columns, spacing }) as PreviewImage;

  test('the whole image, fitted and centred', () => {
    expect(fitRect(600, 600, image(256, 512, [1, 1]))).toEqual({ x: 0, y: 150, width: 600, height: 300 });
    expect(fitRect(600, 600, image(512, 512, [0.7, 0.7]))).toEqual({ x: 0, y: 0, width: 600, height: 600 });
  });

  test('non-square pixels keep their size in mm', () => {
    // 100 x 100 pixels, rows 2 mm apart, columns 1 mm: 100 mm wide, 200 mm tall
    expect(fitRect(600, 600, image(100, 100, [2, 1]))).toEqual({ x: 150, y: 0, width: 300, height: 600 });
  });
});
