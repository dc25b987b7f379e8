// The series strip: a thumbnail of every series of the study (server-rendered PNGs of each
// series' middle slice), the current one highlighted; a click opens that series' viewer.

import type { SeriesData, StripSeries } from './types';

export function stripLabel(s: StripSeries): string {
  const name = [s.modality, s.number !== null ? `#${s.number}` : '', s.description].filter(Boolean).join(' ');
  return `${name || 'Series'} · ${s.instance_count} ${s.instance_count === 1 ? 'image' : 'images'}`;
}

/** Fill #series-strip (read-only series page only: a task is bound to its series). */
export function setupStrip(data: SeriesData): void {
  const strip = document.getElementById('series-strip');
  const series = data.study_series ?? [];
  if (!strip || series.length < 1) return;
  const items = series.map((s) => {
    const link = document.createElement('a');
    link.className = 'strip-item';
    link.href = `/series/${s.id}/view/`;
    link.dataset.series = s.id;
    link.title = stripLabel(s);
    if (s.id === data.series.id) {
      link.setAttribute('aria-current', 'page');
    }
    if (s.thumbnail_url) {
      const img = document.createElement('img');
      img.src = s.thumbnail_url;
      img.alt = '';
      img.loading = 'lazy';
      link.append(img);
    }
    const caption = document.createElement('span');
    caption.textContent = stripLabel(s);
    link.append(caption);
    return link;
  });
  strip.replaceChildren(...items);
  strip.hidden = false;
}
