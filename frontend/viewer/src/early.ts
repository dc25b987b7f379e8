// What the page needs before Cornerstone3D: the assignment (on /assignments/<id>/) and the
// series description. The template preloads the first of these requests
// (<link rel="preload" as="fetch" crossorigin>), so that it starts with the HTML, not when the
// entry runs; Chromium hands the preloaded answer only to a request that matches it, headers
// included, hence a plain fetch() for that one.

import { api, HttpError } from './api';
import type { Early } from './types';

export interface PageIds {
  assignment: string; // '' on the read-only series page
  series: string; // '' on an assignment page: the assignment names it
}

export async function fetchEarly(ids: PageIds): Promise<Early> {
  let assignment: any = null;
  let data: any;
  if (ids.assignment) {
    assignment = await preloaded(`/api/assignments/${ids.assignment}/`);
    data = await api('GET', `/api/series/${assignment.series?.id ?? assignment.series}/viewer/`);
  } else {
    data = await preloaded(`/api/series/${ids.series}/viewer/`);
  }
  return { assignment, data };
}

async function preloaded(url: string): Promise<any> {
  const response = await fetch(url, { credentials: 'same-origin' });
  const body = await response.json().catch(() => null);
  if (!response.ok) throw new HttpError(response.status, body);
  return body;
}
