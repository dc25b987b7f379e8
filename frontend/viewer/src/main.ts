// Entry point (viewer.js). Small on purpose: while the Cornerstone3D chunk (most of the bundle)
// downloads and compiles, it fetches the series description (preloaded by the template) and
// has a worker draw a preview of the first image from its real 16-bit values (startup.ts).

import { HttpError, setCsrfToken } from './api';
import { start, startFailed } from './startup';

function fail(root: HTMLElement, err: any): void {
  console.error(err);
  root.dataset.error = '1';
  startFailed();
  const el = document.getElementById('viewer-message');
  if (el) {
    el.hidden = false;
    el.textContent =
      err instanceof HttpError && err.status === 404
        ? 'Not found, or you are not a member of its project.'
        : `The viewer failed to start: ${err?.message ?? err}`;
  }
}

// The side-panel forms save as you type; Enter must not submit them (no inline handlers:
// the Content-Security-Policy forbids them).
for (const id of ['classification', 'attributes']) {
  document.getElementById(id)?.addEventListener('submit', (event) => event.preventDefault());
}
// The right button drags (zoom); no context menu over the image.
document.getElementById('viewport')?.addEventListener('contextmenu', (event) => event.preventDefault());

const root = document.getElementById('viewer');
if (root) {
  setCsrfToken(root.dataset.csrf ?? '');
  const early = start(root);
  early.catch(() => undefined); // reported through boot()
  import('./app')
    .then(({ boot }) => boot(root, early))
    .catch((err) => fail(root, err));
}
