// Cornerstone3D annotations <-> the contract's geometry in image PIXEL coordinates.

import { metaData } from '@cornerstonejs/core';
import type { Kind } from './types';

export const TOOL_FOR_KIND: Partial<Record<Kind, string>> = {
  box: 'RectangleROI',
  polygon: 'Polygon', // a SplineROI instance with a linear spline: click the vertices
  freehand: 'PlanarFreehandROI',
  point: 'Probe',
  line: 'Length',
  ellipse: 'EllipticalROI',
  angle: 'Angle',
};

export const KIND_FOR_TOOL: Record<string, Kind> = Object.fromEntries(
  Object.entries(TOOL_FOR_KIND).map(([kind, tool]) => [tool, kind as Kind]),
);

type Vec3 = [number, number, number];
type Pt = [number, number];

const round = (v: number): number => Math.round(v * 100) / 100;

// The contract's pixel coordinates (annotations/geometry.py) put (0, 0) at the CENTRE of the
// top-left pixel, which is where ImagePositionPatient is, and step PixelSpacing[1] along a row
// and PixelSpacing[0] down a column (PS3.3 C.7.6.2.1.1). Cornerstone 5.14's worldToImageCoords
// and imageToWorldCoords differ from both: their origin is that pixel's top-left corner, and they
// scale x by rowPixelSpacing (PixelSpacing[0]) while its StackViewport renders x with
// columnPixelSpacing. So the conversion is done here, from the image plane module, with the same
// defaults the StackViewport renders with when a file lacks the attributes.

interface Plane {
  origin: ArrayLike<number>;
  row: ArrayLike<number>; // direction of increasing x (column index)
  column: ArrayLike<number>; // direction of increasing y (row index)
  dx: number; // mm between columns: PixelSpacing[1]
  dy: number; // mm between rows: PixelSpacing[0]
}

function planeOf(imageId: string): Plane {
  const m: any = metaData.get('imagePlaneModule', imageId) ?? {};
  return {
    origin: m.imagePositionPatient ?? [0, 0, 0],
    row: m.rowCosines ?? [1, 0, 0],
    column: m.columnCosines ?? [0, 1, 0],
    dx: Number(m.columnPixelSpacing) || 1,
    dy: Number(m.rowPixelSpacing) || 1,
  };
}

/** A world position in the contract's pixel coordinates (x = column, y = row, origin at the centre of the top-left pixel). */
export function worldToPixel(imageId: string, world: ArrayLike<number>): Pt {
  const { origin, row, column, dx, dy } = planeOf(imageId);
  let x = 0;
  let y = 0;
  for (let k = 0; k < 3; k++) {
    const d = world[k] - origin[k];
    x += d * row[k];
    y += d * column[k];
  }
  return [x / dx, y / dy];
}

/** The world position of a point in the contract's pixel coordinates. */
export function pixelToWorld(imageId: string, p: ArrayLike<number>): Vec3 {
  const { origin, row, column, dx, dy } = planeOf(imageId);
  const at = (k: number) => origin[k] + p[0] * dx * row[k] + p[1] * dy * column[k];
  return [at(0), at(1), at(2)];
}

function toImage(imageId: string, world: ArrayLike<number>): Pt {
  const p = worldToPixel(imageId, world);
  return [round(p[0]), round(p[1])];
}

const toWorld = pixelToWorld;

/** The geometry of a Cornerstone annotation, in the pixel coordinates of its image. */
export function geometryOf(kind: Kind, ann: any, imageId: string, spacing: number[] | null): any {
  const points: ArrayLike<number>[] = ann.data.handles?.points ?? [];
  switch (kind) {
    case 'box': {
      const px = points.map((p) => toImage(imageId, p));
      const xs = px.map((p) => p[0]);
      const ys = px.map((p) => p[1]);
      return { x0: Math.min(...xs), y0: Math.min(...ys), x1: Math.max(...xs), y1: Math.max(...ys) };
    }
    case 'polygon':
      return { points: points.map((p) => toImage(imageId, p)) };
    case 'freehand':
      return { points: (ann.data.contour?.polyline ?? []).map((p: ArrayLike<number>) => toImage(imageId, p)) };
    case 'point':
      return { x: toImage(imageId, points[0])[0], y: toImage(imageId, points[0])[1] };
    case 'line': {
      const px = points.slice(0, 2).map((p) => toImage(imageId, p));
      return { points: px, length_mm: lengthMm(px, spacing) };
    }
    case 'ellipse':
      return ellipseOf(points.map((p) => worldToPixel(imageId, p)), spacing);
    case 'angle': {
      const px = points.slice(0, 3).map((p) => toImage(imageId, p));
      return { points: px, angle_deg: px.length === 3 ? angleDeg(px, spacing) : null };
    }
    default:
      return {};
  }
}

export function lengthMm(points: Pt[], spacing: number[] | null): number | null {
  if (!spacing || spacing.length < 2 || points.length < 2) return null;
  const dy = (points[1][1] - points[0][1]) * spacing[0];
  const dx = (points[1][0] - points[0][0]) * spacing[1];
  return round(Math.hypot(dx, dy));
}

/** The contract's ellipse from EllipticalROI's handles [bottom, top, left, right] in pixels: the
 * left-right pair is the rx axis, and its direction the rotation (0 on an unturned view, where
 * Cornerstone keeps the axes along the screen's). */
export function ellipseOf(points: Pt[], spacing: number[] | null): any {
  if (points.length < 4) return {};
  const [bottom, top, left, right] = points;
  const rx = Math.hypot(right[0] - left[0], right[1] - left[1]) / 2;
  const ry = Math.hypot(top[0] - bottom[0], top[1] - bottom[1]) / 2;
  let rotation = (Math.atan2(right[1] - left[1], right[0] - left[0]) * 180) / Math.PI;
  rotation = round(((rotation % 180) + 180) % 180);
  if (rotation >= 180) rotation = 0;
  const geometry = {
    center: [round((left[0] + right[0]) / 2), round((left[1] + right[1]) / 2)],
    radii: [round(rx), round(ry)],
    rotation,
  };
  return { ...geometry, area_mm2: ellipseAreaMm2(geometry.radii, spacing) };
}

/** EllipticalROI's handles [bottom, top, left, right] for a stored ellipse, in pixels. */
export function ellipseHandles(geometry: any): Pt[] {
  const [cx, cy] = geometry.center;
  const [rx, ry] = geometry.radii;
  const t = ((Number(geometry.rotation) || 0) * Math.PI) / 180;
  const u: Pt = [Math.cos(t), Math.sin(t)];
  const v: Pt = [-Math.sin(t), Math.cos(t)];
  return [
    [cx - ry * v[0], cy - ry * v[1]],
    [cx + ry * v[0], cy + ry * v[1]],
    [cx - rx * u[0], cy - rx * u[1]],
    [cx + rx * u[0], cy + rx * u[1]],
  ];
}

/** pi*rx*ry in mm², as annotations.geometry.ellipse_area_mm2, to 0.01 mm². */
export function ellipseAreaMm2(radii: number[], spacing: number[] | null): number | null {
  if (!spacing || spacing.length < 2) return null;
  return round(Math.PI * radii[0] * radii[1] * spacing[0] * spacing[1]);
}

/** The angle at the middle point, 0-180 degrees, in mm where the spacing is known (as
 * annotations.geometry.angle_degrees), to 0.01 degree; null when an arm has no length. */
export function angleDeg(points: Pt[], spacing: number[] | null): number | null {
  const [rowMm, colMm] = spacing && spacing.length >= 2 ? spacing : [1, 1];
  const [a, v, b] = points;
  const ax = (a[0] - v[0]) * colMm;
  const ay = (a[1] - v[1]) * rowMm;
  const bx = (b[0] - v[0]) * colMm;
  const by = (b[1] - v[1]) * rowMm;
  if (Math.hypot(ax, ay) === 0 || Math.hypot(bx, by) === 0) return null;
  return round((Math.atan2(Math.abs(ax * by - ay * bx), ax * bx + ay * by) * 180) / Math.PI);
}

/** Whether a just-drawn shape is one the server takes (a click is not an ellipse or an angle). */
export function drawable(kind: Kind, geometry: any): boolean {
  if (kind === 'ellipse') return Array.isArray(geometry?.radii) && geometry.radii[0] > 0 && geometry.radii[1] > 0;
  if (kind === 'angle') return geometry?.points?.length === 3;
  return true;
}

/** What the annotation list shows beside a measured shape: "12.5 mm", "78.54 mm²", "90°". */
export function measurementText(kind: Kind, geometry: any): string {
  const mm = (v: unknown, unit: string) => (typeof v === 'number' ? `${Math.round(v * 100) / 100} ${unit}` : '');
  if (kind === 'line') return mm(geometry?.length_mm, 'mm');
  if (kind === 'ellipse') return mm(geometry?.area_mm2, 'mm²');
  if (kind === 'angle') return typeof geometry?.angle_deg === 'number' ? `${Math.round(geometry.angle_deg * 10) / 10}°` : '';
  return '';
}

const emptyTextBox = () => ({
  hasMoved: false,
  worldPosition: [0, 0, 0],
  worldBoundingBox: { topLeft: [0, 0, 0], topRight: [0, 0, 0], bottomLeft: [0, 0, 0], bottomRight: [0, 0, 0] },
});

/** A Cornerstone annotation that draws the stored geometry on its image (the image must be loaded). */
export function annotationFor(uid: string, kind: Kind, geometry: any, imageId: string, locked: boolean): any {
  const plane: any = metaData.get('imagePlaneModule', imageId) ?? {};
  const toolName = TOOL_FOR_KIND[kind];
  if (!toolName) return null;
  const w = (p: ArrayLike<number>) => toWorld(imageId, p);
  const data: any = { handles: { points: [], activeHandleIndex: null, textBox: emptyTextBox() }, cachedStats: {}, label: '' };
  switch (kind) {
    case 'box': {
      const { x0, y0, x1, y1 } = geometry;
      data.handles.points = [w([x0, y0]), w([x1, y0]), w([x0, y1]), w([x1, y1])];
      break;
    }
    case 'polygon':
      data.handles.points = geometry.points.map(w);
      data.spline = { type: 'LINEAR' };
      data.contour = { closed: true, polyline: [] };
      break;
    case 'freehand':
      data.contour = { closed: true, polyline: geometry.points.map(w) };
      break;
    case 'point':
      data.handles.points = [w([geometry.x, geometry.y])];
      break;
    case 'line':
      data.handles.points = geometry.points.slice(0, 2).map(w);
      break;
    case 'ellipse':
      data.handles.points = ellipseHandles(geometry).map(w);
      break;
    case 'angle':
      data.handles.points = geometry.points.slice(0, 3).map(w);
      break;
  }
  const normal = plane.rowCosines && plane.columnCosines ? cross(plane.rowCosines, plane.columnCosines) : undefined;
  return {
    annotationUID: uid,
    highlighted: false,
    invalidated: true,
    isLocked: locked,
    isVisible: true,
    autoGenerated: false,
    metadata: {
      toolName,
      referencedImageId: imageId,
      FrameOfReferenceUID: plane.frameOfReferenceUID,
      viewPlaneNormal: normal,
      viewUp: plane.columnCosines ? plane.columnCosines.map((v: number) => -v) : undefined,
    },
    data,
  };
}

function cross(a: number[], b: number[]): Vec3 {
  return [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]];
}

/** Whether two geometries draw the same shape, so that a redraw is not taken for an edit.
 * It survives a round trip through the database (PostgreSQL's jsonb reorders object keys and
 * may print numbers differently) and through the server, which may store more digits than the
 * 0.01 px this page keeps and recomputes a line's length_mm (an ellipse's area_mm2, an angle's
 * angle_deg) from the pixel spacing: keys are sorted, numbers compared at 0.01 px and the
 * derived measurements are left out. */
export function sameGeometry(a: unknown, b: unknown): boolean {
  return canonical(a) === canonical(b);
}

const DERIVED = new Set(['length_mm', 'area_mm2', 'angle_deg']);

function canonical(value: unknown): string {
  if (typeof value === 'number') return Number.isFinite(value) ? String(round(value)) : 'null';
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(
      ([k, v]) => v !== undefined && !DERIVED.has(k),
    );
    entries.sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`;
  }
  return JSON.stringify(value ?? null);
}
