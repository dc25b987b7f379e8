// JSON over fetch with the session cookie and the CSRF token; errors carry the status.

export class HttpError extends Error {
  constructor(public status: number, public body: any) {
    super(`HTTP ${status}`);
  }
}

let csrfToken = '';

export function setCsrfToken(token: string): void {
  csrfToken = token;
}

export async function api(method: string, url: string, body?: unknown): Promise<any> {
  const headers: Record<string, string> = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (method !== 'GET') headers['X-CSRFToken'] = csrfToken;
  const response = await fetch(url, {
    method,
    headers,
    credentials: 'same-origin',
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  let data: any = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = { error: 'invalid_json', message: text.slice(0, 200) };
    }
  }
  if (!response.ok) throw new HttpError(response.status, data);
  return data;
}

/** A list endpoint's items, following DRF pagination when there is any. */
export async function apiList(url: string): Promise<any[]> {
  const items: any[] = [];
  let next: string | null = url;
  while (next) {
    const page: any = await api('GET', next);
    if (Array.isArray(page)) return items.concat(page);
    items.push(...(page.results ?? []));
    next = page.next ?? null;
  }
  return items;
}
