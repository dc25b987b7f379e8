// Entry point (viewer.js). Small on purpose: it starts fetching the series description and
// the first image while the Cornerstone3D chunk (most of the bundle) downloads and compiles.

import { api, HttpError, setCsrfToken } from './api';
import type { Early } from './app';

async function fetchEarly(root: HTMLElement): Promise<Early> {
  const assignmentId = root.dataset.assignment ?? '';
  let assignment: any = null;
  let seriesId = root.dataset.series ?? '';
  if (assignmentId) {
    assignment = await api('GET', `/api/assignments/${assignmentId}/`);
    seriesId = assignment.series?.id ?? assignment.series;
  }
  const data = await api('GET', `/api/series/${seriesId}/viewer/`);
  const first = data.instances?.[0];
  if (first) {
    // Warms the HTTP cache (the answer is private, max-age with an ETag) for the loader's request.
    fetch(new URL(first.wado_url, window.location.href).href, { credentials: 'same-origin' }).catch(() => undefined);
  }
  return { assignment, data };
}

function fail(root: HTMLElement, err: any): void {
  console.error(err);
  root.dataset.error = '1';
  const el = document.getElementById('viewer-message');
  if (el) {
    el.hidden = false;
    el.textContent =
      err instanceof HttpError && err.status === 404
        ? 'Not found, or you are not a member of its project.'
        : `The viewer failed to start: ${err?.message ?? err}`;
  }
}

const root = document.getElementById('viewer');
if (root) {
  setCsrfToken(root.dataset.csrf ?? '');
  const early = fetchEarly(root);
  early.catch(() => undefined); // reported through boot()
  import('./app')
    .then(({ boot }) => boot(root, early))
    .catch((err) => fail(root, err));
}
