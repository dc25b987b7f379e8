// Compare with prior: the same pseudonymous patient's other study beside the current one, in
// a second stack viewport, scrolled with the current one (volume.ts syncIndex: by position in
// one frame of reference, else by relative place) and, if asked, windowed with it.

import { Enums, metaData } from '@cornerstonejs/core';
import { api } from './api';
import type { SeriesData, StripSeries } from './types';
import { framesOf, type Viewer } from './viewer';
import { syncIndex, type SyncSide } from './volume';

const PRIOR_ID = 'wb-prior';

/** The prior series to show first: the same modality, then the most images. */
export function bestPrior(modality: string, candidates: StripSeries[]): StripSeries | null {
  const sorted = [...candidates].sort(
    (a, b) => Number(b.modality === modality) - Number(a.modality === modality) || b.instance_count - a.instance_count,
  );
  return sorted[0] ?? null;
}

function side(data: SeriesData, imageId: string | undefined): SyncSide {
  const positions = data.instances.flatMap((i) => Array.from({ length: Math.max(1, i.frames || 1) }, () => (i.frames > 1 ? null : i.slice_position)));
  const plane: any = imageId ? metaData.get('imagePlaneModule', imageId) : null;
  return { positions, frameOfReference: plane?.frameOfReferenceUID ?? null };
}

export function setupCompare(viewer: Viewer, root: HTMLElement): void {
  const button = document.getElementById('layout-compare') as HTMLButtonElement | null;
  const wrap = document.getElementById('prior-wrap');
  const element = document.getElementById('prior-viewport') as HTMLDivElement | null;
  if (!button || !wrap || !element) return;
  button.hidden = false;
  const priors = (viewer.data.other_studies ?? []).flatMap((s) => s.series.map((x) => ({ ...x, study: s })));
  const best = bestPrior(viewer.data.series.modality, priors);
  if (!best) {
    button.disabled = true;
    button.title = 'This patient has no other study in the project.';
    return;
  }
  const syncWl = document.getElementById('compare-wl') as HTMLInputElement | null;
  const syncWlLabel = document.getElementById('compare-wl-label');
  if (syncWlLabel) syncWlLabel.hidden = false;
  let prior: any = null;
  let priorData: SeriesData | null = null;
  let ids: string[] = [];
  const label = document.getElementById('ov-prior');
  const show = () => {
    if (label && prior) label.textContent = `Prior ${priorData?.series.modality ?? ''} · ${prior.getCurrentImageIdIndex() + 1} / ${ids.length}`;
  };
  const follow = () => {
    if (!prior || !priorData || !ids.length) return;
    const to = syncIndex(side(viewer.data, viewer.current()?.imageId), viewer.index(), side(priorData, ids[0]));
    if (to !== prior.getCurrentImageIdIndex()) void prior.setImageIdIndex(to);
  };
  const followWl = () => {
    const wl = viewer.viewport.getProperties()?.voiRange;
    if (prior && wl && syncWl?.checked) {
      prior.setProperties({ voiRange: wl });
      prior.render();
    }
  };
  viewer.onImage.push(follow);
  viewer.element.addEventListener(Enums.Events.VOI_MODIFIED, followWl);
  button.addEventListener('click', async () => {
    const on = button.getAttribute('aria-pressed') !== 'true';
    button.setAttribute('aria-pressed', String(on));
    wrap.hidden = !on;
    root.classList.toggle('compare-on', on);
    root.dataset.layout = on ? 'compare' : 'stack';
    requestAnimationFrame(() => requestAnimationFrame(() => viewer.fit())); // once resized
    if (!on || prior) return;
    priorData = (await api('GET', `/api/series/${best.id}/viewer/`)) as SeriesData;
    ids = framesOf(priorData).map((f) => f.imageId);
    const engine = viewer.viewport.getRenderingEngine();
    engine.enableElement({ viewportId: PRIOR_ID, type: Enums.ViewportType.STACK, element });
    prior = engine.getViewport(PRIOR_ID);
    element.addEventListener(Enums.Events.STACK_NEW_IMAGE, show);
    element.addEventListener(Enums.Events.IMAGE_RENDERED, show);
    await prior.setStack(ids, 0);
    follow();
    followWl();
    root.dataset.priorReady = '1';
  });
  syncWl?.addEventListener('change', followWl);
}
