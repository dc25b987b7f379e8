// Invert, rotate (90° steps) and flip: how the image is shown, never what is stored. The
// annotation tools read points through the viewport's camera (canvasToWorld, then image pixels in
// shapes.ts), so a box drawn on a rotated or flipped view lands on the same pixels as unrotated.

/** The display state these buttons change; ``rotation`` is clockwise degrees, 0/90/180/270. */
export interface Orientation {
  rotation: number;
  flipHorizontal: boolean;
  flipVertical: boolean;
  invert: boolean;
}

export const UPRIGHT: Orientation = { rotation: 0, flipHorizontal: false, flipVertical: false, invert: false };

export type OrientationAction = 'invert' | 'rotate' | 'flip-h' | 'flip-v';

/** The state after one button press (pure; the viewer applies it to Cornerstone). */
export function nextOrientation(o: Orientation, action: OrientationAction): Orientation {
  switch (action) {
    case 'invert':
      return { ...o, invert: !o.invert };
    case 'rotate':
      return { ...o, rotation: (((o.rotation + 90) % 360) + 360) % 360 };
    case 'flip-h':
      return { ...o, flipHorizontal: !o.flipHorizontal };
    case 'flip-v':
      return { ...o, flipVertical: !o.flipVertical };
  }
}

/** A keyboard shortcut's action: I invert, Shift+R rotate, Shift+H / Shift+V flip (R and H are taken). */
export function orientationKey(key: string, shift: boolean): OrientationAction | null {
  const k = key.toLowerCase();
  if (k === 'i' && !shift) return 'invert';
  if (!shift) return k === 'v' ? 'flip-v' : null;
  return ({ r: 'rotate', h: 'flip-h', v: 'flip-v' } as Record<string, OrientationAction>)[k] ?? null;
}

/** A short text for the overlay, e.g. "Rot 90° · Flip H · Inv"; empty when upright. */
export function orientationText(o: Orientation): string {
  const parts: string[] = [];
  if (o.rotation) parts.push(`Rot ${o.rotation}°`);
  if (o.flipHorizontal) parts.push('Flip H');
  if (o.flipVertical) parts.push('Flip V');
  if (o.invert) parts.push('Inv');
  return parts.join(' · ');
}

/** Apply a state to a Cornerstone stack viewport (camera flips and rotation, invert as a property). */
export function applyOrientation(viewport: any, o: Orientation): void {
  viewport.setViewPresentation({ rotation: o.rotation, flipHorizontal: o.flipHorizontal, flipVertical: o.flipVertical });
  viewport.setProperties({ invert: o.invert });
  viewport.render();
}
