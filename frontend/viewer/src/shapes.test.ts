import { beforeEach, describe, expect, test, vi } from 'vitest';

// shapes.ts reads only the image plane module from Cornerstone's metadata: a map stands in
// for it, so these tests load no Cornerstone code.
const planes = vi.hoisted(() => new Map<string, Record<string, unknown>>());
vi.mock('@cornerstonejs/core', () => ({
  metaData: { get: (type: string, imageId: string) => (type === 'imagePlaneModule' ? planes.get(imageId) : undefined) },
}));

import {
  angleDeg,
  annotationFor,
  drawable,
  ellipseAreaMm2,
  geometryOf,
  lengthMm,
  measurementText,
  pixelToWorld,
  sameGeometry,
  worldToPixel,
} from './shapes';
import type { Kind } from './types';

const S = Math.SQRT1_2;

beforeEach(() => {
  planes.clear();
  // An axial slice; PixelSpacing [0.5, 1.0]: 0.5 mm between rows, 1.0 mm between columns.
  planes.set('axial', {
    imagePositionPatient: [-100, -50, 20],
    rowCosines: [1, 0, 0],
    columnCosines: [0, 1, 0],
    rowPixelSpacing: 0.5,
    columnPixelSpacing: 1.0,
    frameOfReferenceUID: '1.2.3',
  });
  // A slice turned 45 degrees about z, with square pixels of 0.8 mm.
  planes.set('oblique', {
    imagePositionPatient: [10, 20, 30],
    rowCosines: [S, S, 0],
    columnCosines: [-S, S, 0],
    rowPixelSpacing: 0.8,
    columnPixelSpacing: 0.8,
  });
});

describe('pixel <-> world', () => {
  test('pixel (0, 0) is the centre of the top-left pixel, at ImagePositionPatient', () => {
    expect(pixelToWorld('axial', [0, 0])).toEqual([-100, -50, 20]);
    expect(worldToPixel('axial', [-100, -50, 20])).toEqual([0, 0]);
  });

  test('x steps the column spacing along the row, y the row spacing down the column', () => {
    // PS3.3 C.7.6.2.1.1: PixelSpacing[1] (1.0) between columns, PixelSpacing[0] (0.5) between rows
    expect(pixelToWorld('axial', [10, 0])).toEqual([-90, -50, 20]);
    expect(pixelToWorld('axial', [0, 10])).toEqual([-100, -45, 20]);
    expect(worldToPixel('axial', [-90, -45, 20])).toEqual([10, 10]);
    // half a pixel left and up of pixel (0, 0)'s centre is the image's corner
    expect(worldToPixel('axial', [-100.5, -50.25, 20])).toEqual([-0.5, -0.5]);
  });

  test('an oblique plane follows its direction cosines', () => {
    const w = pixelToWorld('oblique', [5, 0]);
    expect(w[0]).toBeCloseTo(10 + 4 * S, 10);
    expect(w[1]).toBeCloseTo(20 + 4 * S, 10);
    expect(w[2]).toBeCloseTo(30, 10);
    const p = worldToPixel('oblique', [10 - 8 * S, 20 + 8 * S, 30]);
    expect(p[0]).toBeCloseTo(0, 10);
    expect(p[1]).toBeCloseTo(10, 10);
  });

  test('round trips, and a point off the plane projects onto it', () => {
    for (const id of ['axial', 'oblique']) {
      for (const p of [
        [0, 0],
        [12.25, 3.5],
        [-0.5, 127.5],
        [63.2, 88.8],
      ]) {
        const [x, y] = worldToPixel(id, pixelToWorld(id, p));
        expect(x).toBeCloseTo(p[0], 10);
        expect(y).toBeCloseTo(p[1], 10);
      }
    }
    expect(worldToPixel('axial', [-90, -45, 99])).toEqual([10, 10]);
  });

  test('without plane metadata: unit spacing, origin at (0, 0, 0), as the viewport renders it', () => {
    expect(pixelToWorld('none', [3, 4])).toEqual([3, 4, 0]);
    expect(worldToPixel('none', [3, 4, 0])).toEqual([3, 4]);
  });
});

describe('lengthMm', () => {
  test('scales x by the column spacing and y by the row spacing (spacing is [row, column])', () => {
    expect(lengthMm([[0, 0], [10, 0]], [0.5, 1.0])).toBe(10);
    expect(lengthMm([[0, 0], [0, 10]], [0.5, 1.0])).toBe(5);
    expect(lengthMm([[0, 0], [4, 6]], [0.5, 1.0])).toBe(5); // hypot(4 * 1.0, 6 * 0.5)
    expect(lengthMm([[1, 1], [4, 5]], [0.7, 0.7])).toBe(3.5);
  });

  test('agrees with annotations.geometry.line_length_mm, rounded to a hundredth of a mm', () => {
    // line_length_mm([[0, 0], [4, 3]], [1.0, 0.25]) == hypot(1, 3)
    expect(lengthMm([[0, 0], [4, 3]], [1.0, 0.25])).toBe(3.16);
    expect(lengthMm([[10, 20], [10, 20]], [0.5, 0.5])).toBe(0);
  });

  test('is unknown without a pixel spacing or a second point', () => {
    expect(lengthMm([[0, 0], [3, 4]], null)).toBeNull();
    expect(lengthMm([[0, 0], [3, 4]], [0.5])).toBeNull();
    expect(lengthMm([[0, 0]], [0.5, 0.5])).toBeNull();
  });
});

describe('geometry <-> Cornerstone annotation', () => {
  const cases: [Kind, any][] = [
    ['box', { x0: 10, y0: 20.5, x1: 40.25, y1: 60 }],
    ['polygon', { points: [[10, 10], [50, 12.5], [30, 40]] }],
    ['freehand', { points: [[1, 2], [3, 4], [5, 1.5], [2, 0]] }],
    ['point', { x: 40, y: 30 }],
    ['line', { points: [[0, 0], [4, 6]], length_mm: 5 }],
    ['ellipse', { center: [40, 30], radii: [12.5, 7], rotation: 0, area_mm2: null }],
    ['ellipse', { center: [40, 30], radii: [12.5, 7], rotation: 30, area_mm2: null }],
    ['angle', { points: [[10, 0], [0, 0], [0, 10]], angle_deg: 90 }],
  ];

  for (const id of ['axial', 'oblique']) {
    test.each(cases)(`a stored %s comes back unchanged from the annotation drawn for it (${id})`, (kind, geometry) => {
      const ann = annotationFor('uid-1', kind, geometry, id, false);
      const back = geometryOf(kind, ann, id, [0.5, 1.0]);
      if (kind === 'line') expect(back.length_mm).toBe(5);
      expect(sameGeometry(back, geometry)).toBe(true);
    });
  }

  test('the annotation is drawn in world space on its image, locked for a reader of others', () => {
    const ann = annotationFor('uid-2', 'point', { x: 10, y: 10 }, 'axial', true);
    expect(ann.data.handles.points).toEqual([[-90, -45, 20]]);
    expect(ann.metadata).toMatchObject({ toolName: 'Probe', referencedImageId: 'axial', FrameOfReferenceUID: '1.2.3' });
    expect(ann.metadata.viewPlaneNormal).toEqual([0, 0, 1]);
    expect(ann.isLocked).toBe(true);
    expect(annotationFor('uid-3', 'mask', {}, 'axial', false)).toBeNull();
  });

  test('a box is normalised whatever corner it was drawn from', () => {
    const ann = { data: { handles: { points: [pixelToWorld('axial', [40, 60]), pixelToWorld('axial', [10, 20])] } } };
    expect(geometryOf('box', ann, 'axial', null)).toEqual({ x0: 10, y0: 20, x1: 40, y1: 60 });
  });

  test('coordinates are rounded to a hundredth of a pixel', () => {
    const ann = { data: { handles: { points: [pixelToWorld('axial', [1.23456, 7.891011])] } } };
    expect(geometryOf('point', ann, 'axial', null)).toEqual({ x: 1.23, y: 7.89 });
  });
});

describe('sameGeometry', () => {
  test('ignores key order and differences below a millionth of a pixel', () => {
    expect(sameGeometry({ x0: 1, y0: 2, x1: 3, y1: 4 }, { y1: 4, x1: 3, y0: 2, x0: 1.0000000001 })).toBe(true);
    expect(sameGeometry({ points: [[1, 2]], length_mm: null }, { length_mm: null, points: [[1, 2]] })).toBe(true);
    expect(sameGeometry({ x: 1 }, { x: 1, y: undefined })).toBe(true);
  });

  test("ignores the server's unrounded length_mm and digits the page does not keep (issue 12)", () => {
    // What the server stored for a line, and what the page recomputes from the drawn handles.
    const stored = { points: [[10, 10], [40, 41]], length_mm: 30.197516454172188 };
    expect(sameGeometry({ points: [[10, 10], [40, 41]], length_mm: 30.2 }, stored)).toBe(true);
    expect(sameGeometry({ x0: 20, y0: 20, x1: 60, y1: 50 }, { x0: 20.004, y0: 19.998, x1: 60, y1: 50 })).toBe(true);
  });

  test('sees a moved vertex, a missing key and a reordered list', () => {
    expect(sameGeometry({ points: [[1, 2], [3, 4]] }, { points: [[1, 2], [3, 4.01]] })).toBe(false);
    expect(sameGeometry({ x: 1, y: 2 }, { x: 1 })).toBe(false);
    expect(sameGeometry({ points: [[1, 2], [3, 4]] }, { points: [[3, 4], [1, 2]] })).toBe(false);
  });
});

describe('ellipse and angle measurements (as annotations.geometry computes them)', () => {
  test('the ellipse drawn by EllipticalROI handles [bottom, top, left, right]', () => {
    const px = [[40, 23], [40, 37], [27.5, 30], [52.5, 30]];
    const ann = { data: { handles: { points: px.map((p) => pixelToWorld('axial', p)) } } };
    const g = geometryOf('ellipse', ann, 'axial', [0.5, 1.0]);
    expect(g).toEqual({ center: [40, 30], radii: [12.5, 7], rotation: 0, area_mm2: ellipseAreaMm2([12.5, 7], [0.5, 1.0]) });
    expect(g.area_mm2).toBeCloseTo(Math.PI * 12.5 * 7 * 0.5, 2);
    expect(ellipseAreaMm2([1, 1], null)).toBeNull();
  });

  test('the angle at the middle point, in mm where the spacing is known', () => {
    expect(angleDeg([[10, 0], [0, 0], [10, 10]], null)).toBe(45);
    expect(angleDeg([[10, 0], [0, 0], [10, 10]], [2.0, 1.0])).toBeCloseTo((Math.atan2(20, 10) * 180) / Math.PI, 2);
    expect(angleDeg([[0, 0], [0, 0], [1, 1]], null)).toBeNull();
  });

  test('a click is neither an ellipse nor an angle; the list shows the measurement', () => {
    expect(drawable('ellipse', { center: [1, 1], radii: [0, 0] })).toBe(false);
    expect(drawable('angle', { points: [[0, 0], [1, 1]] })).toBe(false);
    expect(drawable('box', { x0: 0 })).toBe(true);
    expect(measurementText('ellipse', { area_mm2: 78.539816 })).toBe('78.54 mm²');
    expect(measurementText('angle', { angle_deg: 89.96 })).toBe('90°');
    expect(measurementText('line', { length_mm: 12.5 })).toBe('12.5 mm');
    expect(measurementText('point', {})).toBe('');
  });

  test('sameGeometry leaves out the server-derived area and angle', () => {
    expect(sameGeometry({ center: [1, 2], radii: [3, 4], rotation: 0, area_mm2: 37.7 }, { center: [1, 2], radii: [3, 4], rotation: 0, area_mm2: 37.69911 })).toBe(true);
    expect(sameGeometry({ points: [[1, 0], [0, 0], [0, 1]], angle_deg: 90 }, { points: [[1, 0], [0, 0], [0, 1]], angle_deg: 89.9999 })).toBe(true);
  });
});
