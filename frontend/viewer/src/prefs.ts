// Display preferences kept in the browser (localStorage), not on the server: they change how
// annotations are shown, never what is stored.

const OPACITY_KEY = 'workbench.viewer.annotationOpacity';

/** The saved annotation opacity (0 to 1), or null when none was saved or it is unreadable. */
export function loadOpacity(storage: Pick<Storage, 'getItem'> | null): number | null {
  let raw: string | null = null;
  try {
    raw = storage?.getItem(OPACITY_KEY) ?? null;
  } catch {
    return null; // storage refused (e.g. disabled by the browser's privacy settings)
  }
  if (raw === null || raw.trim() === '') return null;
  const value = Number(raw);
  return Number.isFinite(value) ? Math.min(1, Math.max(0, value)) : null;
}

export function saveOpacity(storage: Pick<Storage, 'setItem'> | null, value: number): void {
  try {
    storage?.setItem(OPACITY_KEY, String(value));
  } catch {
    /* a preference that cannot be kept is only lost on reload */
  }
}

/** The page's localStorage, or null where reading it throws. */
export function browserStorage(): Storage | null {
  try {
    return window.localStorage;
  } catch {
    return null;
  }
}
