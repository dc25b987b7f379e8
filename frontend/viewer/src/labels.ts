// The words people read for the server's codes ("in_progress" -> "In progress"). The page
// gets them from the models' choices (frontend/viewer_pages.py puts them in #choice-labels),
// so there is one list of labels, the server's; a code the list lacks is still made readable.

export interface ChoiceLabels {
  status: Record<string, string>;
  kind: Record<string, string>;
}

let cached: ChoiceLabels | null = null;

function fromPage(): ChoiceLabels {
  if (cached) return cached;
  const el = typeof document === 'undefined' ? null : document.getElementById('choice-labels');
  let parsed: Partial<ChoiceLabels> = {};
  try {
    parsed = el?.textContent ? JSON.parse(el.textContent) : {};
  } catch {
    parsed = {};
  }
  cached = { status: parsed.status ?? {}, kind: parsed.kind ?? {} };
  return cached;
}

/** For tests: use these labels instead of the page's. */
export function setChoiceLabels(labels: ChoiceLabels | null): void {
  cached = labels;
}

/** "classification_image" -> "Classification image": the fallback for a code without a label. */
export function humanize(code: string): string {
  const words = code.replace(/_/g, ' ').trim();
  return words ? words[0].toUpperCase() + words.slice(1) : '';
}

export function statusLabel(status: string): string {
  return fromPage().status[status] ?? humanize(status);
}

export function kindLabel(kind: string): string {
  return fromPage().kind[kind] ?? humanize(kind);
}
